"""Selection by version and age: tags as semantic versions, constraints, latest N."""

from __future__ import annotations

import datetime as dt

import pytest

from common.domain import semver
from common.domain.referrers import cosign_tags, fallback_tag, is_referrer_tag, subject_of
from common.errors import ValidationError

DIGEST = "sha256:" + "ab" * 32


@pytest.mark.parametrize(
    ("tag", "parsed"),
    [
        ("1.2.3", "1.2.3"),
        ("v1.2.3", "1.2.3"),
        ("V2.0.0-rc.1", "2.0.0-rc.1"),
        ("1.2.3-alpine", "1.2.3-alpine"),
        ("1.2", None),
        ("latest", None),
        ("v", None),
        ("", None),
        ("01.2.3", None),
        ("vv1.2.3", None),
        ("1.2.3.4", None),
    ],
)
def test_parse_tag(tag, parsed):
    got = semver.parse_tag(tag)
    assert (str(got) if got else None) == parsed


@pytest.mark.parametrize(
    ("constraint", "tag", "selected"),
    [
        (">=1.2 <2", "1.2.0", True),
        (">=1.2 <2", "v1.9.9", True),
        (">=1.2 <2", "1.1.9", False),
        (">=1.2 <2", "2.0.0", False),
        (">=1.2 <2", "1.5.0-rc1", False),  # npm: pre-releases only when named
        (">=1.2 <2", "latest", False),
        (">=1.2 <2", "1.5", False),  # not a semantic version
        ("^1.4", "1.9.0", True),
        ("^1.4", "2.0.0", False),
        ("~2.3", "2.3.7", True),
        ("~2.3", "2.4.0", False),
        ("1.x || >=3", "3.1.0", True),
        ("1.x || >=3", "2.0.0", False),
        ("", "anything", True),
    ],
)
def test_constraint_table(constraint, tag, selected):
    assert semver.matches(semver.compile_constraint(constraint), tag) is selected


@pytest.mark.parametrize("bad", ["abc", ">=1.2 <", ">>1", "1.2.3 - ", "x" * 300])
def test_invalid_constraint_names_the_field(bad):
    with pytest.raises(ValidationError) as exc:
        semver.compile_constraint(bad)
    assert "source.semver" in exc.value.errors


@pytest.mark.parametrize("bad", [0, -1, 100_001, True, "3", 2.5])
def test_invalid_latest(bad):
    with pytest.raises(ValidationError):
        semver.check_latest(bad)


T0 = dt.datetime(2024, 1, 1, tzinfo=dt.UTC)


def _never(tags):
    raise AssertionError("created times read although every tag is a version")


@pytest.mark.parametrize(
    ("tags", "n", "created", "expected"),
    [
        # All semantic versions: version order, never the created times.
        (["1.2.0", "1.10.0", "1.9.0", "v2.0.0-rc.1"], 2, None, ["v2.0.0-rc.1", "1.10.0"]),
        (["1.0.0", "2.0.0", "3.0.0"], 1, None, ["3.0.0"]),
        (["1.0.0", "1.0.0-rc.1"], 1, None, ["1.0.0"]),
        # Fewer tags than N: all of them, as listed.
        (["b", "a"], 5, None, ["b", "a"]),
        (["b", "a"], None, None, ["b", "a"]),
        # One tag is not a version: by created time, newest first; unknown last.
        (
            ["1.0.0", "latest", "2.0.0"],
            2,
            {"1.0.0": T0 + dt.timedelta(days=2), "latest": T0 + dt.timedelta(days=3), "2.0.0": T0},
            ["latest", "1.0.0"],
        ),
        (
            ["old", "unknown", "new"],
            2,
            {"old": T0, "unknown": None, "new": T0 + dt.timedelta(hours=1)},
            ["new", "old"],
        ),
        # Same time: the greater name first, whatever the listing order.
        (["a", "c", "b"], 2, {"a": T0, "b": T0, "c": T0}, ["c", "b"]),
    ],
)
def test_latest_table(tags, n, created, expected):
    reader = _never if created is None else (lambda ts: {t: created[t] for t in ts})
    assert semver.newest(tags, n, reader) == expected


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("2024-05-01T10:00:00Z", dt.datetime(2024, 5, 1, 10, tzinfo=dt.UTC)),
        (
            "2024-05-01T10:00:00.123456789Z",
            dt.datetime(2024, 5, 1, 10, 0, 0, 123456, tzinfo=dt.UTC),
        ),
        ("2024-05-01T12:00:00+02:00", dt.datetime(2024, 5, 1, 10, tzinfo=dt.UTC)),
        ("not a time", None),
        (None, None),
        (12, None),
    ],
)
def test_parse_created(text, expected):
    assert semver.parse_created(text) == expected


def test_referrer_schema_tags():
    base = "sha256-" + "ab" * 32
    assert fallback_tag(DIGEST) == base
    assert cosign_tags(DIGEST) == [f"{base}.sig", f"{base}.att", f"{base}.sbom"]
    for tag in (base, *cosign_tags(DIGEST)):
        assert is_referrer_tag(tag) and subject_of(tag) == DIGEST
    for tag in ("sha256-abc", f"{base}.foo", "v1", "sha512-" + "ab" * 32, base.upper()):
        assert not is_referrer_tag(tag) and subject_of(tag) is None
