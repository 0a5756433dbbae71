"""Names, tags and digests are validated by full matches (issue 16, #12)."""

from __future__ import annotations

import pytest

from common.errors import ManifestInvalid
from common.registry.digest import check_digest, is_digest
from common.registry.media import check_reference, check_repository

D = "sha256:" + "a" * 64


@pytest.mark.parametrize("name", ["project/app", "a/b-c/d__e", "x" * 255])
def test_valid_repository_names_pass(name):
    assert check_repository(name) == name


@pytest.mark.parametrize(
    "name",
    ["project/app\n", "project/app\r\n", "\nproject/app", "Project/app", "a//b", "a\x00b", ""],
)
def test_repository_names_with_trailing_newlines_or_bad_characters_fail(name):
    with pytest.raises(ManifestInvalid):
        check_repository(name)


@pytest.mark.parametrize("ref", ["v1", "1.0.0-rc_1", "_x", "a" * 128, D])
def test_valid_references_pass(ref):
    assert check_reference(ref) == ref


@pytest.mark.parametrize("ref", ["v1\n", D + "\n", "a" * 129, "-v1", "v1\x00", "", "v 1"])
def test_references_with_trailing_newlines_or_bad_characters_fail(ref):
    with pytest.raises(ManifestInvalid):
        check_reference(ref)


@pytest.mark.parametrize("digest", [D + "\n", "sha256:" + "a" * 63, "sha256:" + "A" * 64, None])
def test_digests_are_full_matches(digest):
    assert not is_digest(digest)
    with pytest.raises(ManifestInvalid):
        check_digest(digest)
