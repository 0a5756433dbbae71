"""The referrers tag schema: tags that stand for what refers to a manifest, not for images.

- ``sha256-<hex>``: the OCI distribution spec's fallback index of the referrers of
  ``sha256:<hex>`` on registries without the referrers API;
- ``sha256-<hex>.sig``, ``.att``, ``.sbom``: cosign's signature, attestation and SBOM
  of ``sha256:<hex>`` in the same repository.

With ``include_referrers`` on, such tags travel with their subject and are not
selected as tags of their own (a tag filter never drops them, and they never count
towards ``latest``).
"""

from __future__ import annotations

import re

COSIGN_SUFFIXES = ("sig", "att", "sbom")
_SCHEMA_TAG = re.compile(r"(sha256|sha512)-([0-9a-f]{64}|[0-9a-f]{128})(?:\.(sig|att|sbom))?")


def fallback_tag(digest: str) -> str:
    """The fallback index tag of ``digest`` (``sha256:ab..`` -> ``sha256-ab..``)."""
    algorithm, _, hex_part = digest.partition(":")
    return f"{algorithm}-{hex_part}"


def cosign_tags(digest: str) -> list[str]:
    """cosign's tags for ``digest``: its signature, attestation and SBOM."""
    base = fallback_tag(digest)
    return [f"{base}.{suffix}" for suffix in COSIGN_SUFFIXES]


def is_referrer_tag(tag: str) -> bool:
    """True when ``tag`` is a fallback index tag or a cosign tag of some digest."""
    found = _SCHEMA_TAG.fullmatch(tag)
    if found is None:
        return False
    algorithm, hex_part = found.group(1), found.group(2)
    return len(hex_part) == (64 if algorithm == "sha256" else 128)


def subject_of(tag: str) -> str | None:
    """The digest a referrer-schema tag refers to, or None for any other tag."""
    if not is_referrer_tag(tag):
        return None
    base = tag.split(".", 1)[0]
    algorithm, _, hex_part = base.partition("-")
    return f"{algorithm}:{hex_part}"


def is_digest_reference(value: str) -> bool:
    """True when ``value`` is a digest (``sha256:<hex>``) rather than a tag name."""
    algorithm, sep, hex_part = value.partition(":")
    return (
        bool(sep)
        and algorithm in ("sha256", "sha512")
        and bool(re.fullmatch(r"[0-9a-f]+", hex_part))
    )
