"""Selection by version and age: a rule's ``semver`` constraint and its ``latest`` N.

- ``semver`` is an npm-style range (``>=1.2 <2``, ``^1.4``, ``1.x || >=3``), matched
  by ``semantic_version.NpmSpec`` against tags that parse as semantic versions
  2.0.0 (``MAJOR.MINOR.PATCH[-pre][+build]``) with an optional leading ``v``. A tag
  that does not parse is not selected while a constraint is set. As in npm, a
  pre-release (``1.3.0-rc1``) matches only a range that names a pre-release of the
  same version.
- ``latest`` keeps the N newest selected tags of each repository: by version order
  when every one of them parses, otherwise by the image's ``created`` time (newest
  first; a tag without one counts as oldest; ties go to the greater tag name).

Pure: the caller reads ``created`` times from the registry (``common.sync.ages``).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Iterable, Mapping

import semantic_version

from common.errors import ValidationError

MAX_CONSTRAINT_LENGTH = 256
MAX_LATEST = 100_000
_EPOCH = dt.datetime(1, 1, 1, tzinfo=dt.UTC)


def _fail(field: str, message: str) -> ValidationError:
    return ValidationError(f"{field}: {message}", {field: [message]})


def parse_tag(tag: str) -> semantic_version.Version | None:
    """The semantic version a tag names (``1.2.3``, ``v1.2.3-rc.1``), or None."""
    text = tag[1:] if tag[:1] in ("v", "V") else tag
    if not text[:1].isdigit():
        return None
    try:
        return semantic_version.Version(text)
    except ValueError:
        return None


def compile_constraint(text: str, field: str = "source.semver") -> semantic_version.NpmSpec | None:
    """The compiled constraint, None when ``text`` is empty; ValidationError when invalid."""
    text = text.strip()
    if not text:
        return None
    if len(text) > MAX_CONSTRAINT_LENGTH:
        raise _fail(field, f"constraint is longer than {MAX_CONSTRAINT_LENGTH} characters")
    try:
        return semantic_version.NpmSpec(text)
    except ValueError:
        raise _fail(
            field,
            f"invalid version constraint {text[:64]!r}: use comparisons such as "
            "'>=1.2 <2', '^1.4', '~2.3' or '1.x', alternatives joined with '||'",
        ) from None


def check_latest(value: int | None, field: str = "source.latest") -> int | None:
    """``value`` when it is None or 1..MAX_LATEST; ValidationError otherwise."""
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= MAX_LATEST:
        raise _fail(field, f"must be null (all tags) or an integer from 1 to {MAX_LATEST}")
    return value


def matches(spec: semantic_version.NpmSpec | None, tag: str) -> bool:
    """True when no constraint is set, or ``tag`` parses and satisfies it."""
    if spec is None:
        return True
    version = parse_tag(tag)
    return version is not None and spec.match(version)


def by_version(tags: Iterable[str]) -> list[str] | None:
    """``tags`` newest version first, or None when one of them is not a semantic version.

    Equal versions (``1.2.0`` and ``v1.2.0``, or differing only in build metadata)
    are ordered by tag name, so the order never depends on the listing's.
    """
    parsed = []
    for tag in tags:
        version = parse_tag(tag)
        if version is None:
            return None
        parsed.append((version, tag))
    parsed.sort(key=lambda vt: vt[1], reverse=True)
    parsed.sort(key=lambda vt: vt[0], reverse=True)  # stable: ties stay by name
    return [tag for _, tag in parsed]


def by_age(created: Mapping[str, dt.datetime | None]) -> list[str]:
    """Tags newest ``created`` first; unknown times last; ties by the greater name first."""
    return sorted(created, key=lambda t: (created[t] or _EPOCH, t), reverse=True)


def newest(
    tags: Iterable[str],
    n: int | None,
    created_of: Callable[[list[str]], Mapping[str, dt.datetime | None]],
) -> list[str]:
    """The ``n`` newest of ``tags`` (all of them when ``n`` is None), newest first.

    ``created_of`` is called only when some tag is not a semantic version.
    """
    tags = list(dict.fromkeys(tags))
    if n is None or len(tags) <= n:
        return tags
    ordered = by_version(tags)
    if ordered is None:
        ordered = by_age(created_of(tags))
    return ordered[:n]


def parse_created(value: object) -> dt.datetime | None:
    """An image config's ``created`` (RFC 3339) as an aware datetime, or None."""
    if not isinstance(value, str) or not value:
        return None
    text = value.strip().replace("Z", "+00:00").replace("z", "+00:00")
    # Go writes nanoseconds; Python's parser takes at most microseconds.
    if "." in text:
        head, _, rest = text.partition(".")
        digits = len(rest) - len(rest.lstrip("0123456789"))
        text = f"{head}.{rest[:digits][:6].ljust(6, '0')}{rest[digits:]}"
    try:
        stamp = dt.datetime.fromisoformat(text)
    except ValueError:
        return None
    return stamp if stamp.tzinfo else stamp.replace(tzinfo=dt.UTC)
