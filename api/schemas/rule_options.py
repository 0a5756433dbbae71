"""The rule options that reach past tag copying: referrers and deletions."""

from __future__ import annotations

from marshmallow import fields

from api.schemas.base import Bool
from api.schemas.base import default_unless_partial as _d

DELETION_WARNING = (
    "When enabled, tags deleted at the source are deleted at the target too. Deleted "
    "images cannot be recovered; enable with care."
)


def option_fields(partial: bool) -> dict[str, fields.Field]:
    """``include_referrers`` and ``deletion``; a PATCH (``partial``) has no defaults."""
    return {
        "include_referrers": Bool(
            **_d(partial, True),
            metadata={
                "description": "Copy what refers to each copied manifest (signatures, SBOMs, "
                "attestations: OCI referrers, the `sha256-<hex>` fallback tag, cosign's "
                "`.sig`/`.att`/`.sbom` tags), whatever the tag filters say.",
                "example": True,
            },
        ),
        "deletion": Bool(
            **_d(partial, False),
            metadata={
                "description": f"Propagate deletions: {DELETION_WARNING} Only tags this rule "
                "copied and that still point to the digest it copied are deleted.",
                "example": False,
            },
        ),
    }
