"""What a copy reports: its outcome, and snapshots while it runs.

:class:`CopyOutcome` is what :func:`~common.registry.copier.copy_artifact`
returns and the sync pipeline stores per item; :class:`ProgressEvent` is what
a progress callback (the CLI's progress line) receives.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

from common.domain.vocab import ItemStatus
from common.registry.media import Kind

# A copy ends in one of the item outcomes (copied, up-to-date, kept, failed, stopped);
# the pipeline stores it as the item's status unchanged.
CopyStatus = ItemStatus


@dataclass
class CopyOutcome:
    """What one copy did. ``bytes_transferred`` counts blob bytes sent to the target."""

    status: CopyStatus
    digest: str | None = None
    kind: Kind | None = None
    bytes_transferred: int = 0
    blobs_skipped: int = 0
    blobs_mounted: int = 0
    blobs_uploaded: int = 0
    manifests_pushed: int = 0
    reason: str | None = None
    retryable: bool = False
    seconds: float = 0.0
    note: str | None = None
    target_digest: str | None = None

    @property
    def ok(self) -> bool:
        """True for the statuses that count as success (copied, up-to-date, kept)."""
        return self.status in (CopyStatus.COPIED, CopyStatus.UP_TO_DATE, CopyStatus.KEPT)

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready fields (enums as strings)."""
        d = asdict(self)
        d["status"] = str(self.status)
        d["kind"] = str(self.kind) if self.kind else None
        return d


@dataclass(frozen=True)
class ProgressEvent:
    """A snapshot of a copy in progress; ``bytes_done`` counts handled blob bytes."""

    phase: str  # "blobs", "blob", "manifests", "done"
    blobs_total: int = 0
    blobs_done: int = 0
    bytes_total: int = 0
    bytes_done: int = 0
    bytes_transferred: int = 0
    digest: str | None = None
