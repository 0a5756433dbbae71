"""Drift reports, rule health and notifications: their vocabularies and rows."""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from dataclasses import dataclass, field
from enum import StrEnum
from uuid import UUID

from common.domain.models import BLOCKED_BY_TARGET, Rule
from common.domain.vocab import TaskStatus


class HealthState(StrEnum):
    """How a rule is doing: ``degraded`` still copies (some of it failed lately);
    ``broken`` cannot copy (credentials refused, registry unreachable, blocked)."""

    OK = "ok"
    DEGRADED = "degraded"
    BROKEN = "broken"


class DriftKind(StrEnum):
    """How one selected (or target-only) tag compares: the lists of a drift report."""

    MISSING = "missing"
    DIFFERS = "differs"
    EXTRA = "extra"
    IN_SYNC = "in_sync"


class DriftStatus(StrEnum):
    PENDING = "Pending"
    IN_PROGRESS = "InProgress"
    SUCCEEDED = "Succeeded"
    FAILED = "Failed"


class TaskNotify(StrEnum):
    """Which finished tasks a notification announces."""

    NEVER = "never"
    ALWAYS = "always"
    NOT_SUCCEEDED = "not_succeeded"
    FAILED_ONLY = "failed_only"

    def wants(self, status: TaskStatus) -> bool:
        """True when a task that ended in ``status`` is to be announced."""
        if self is TaskNotify.ALWAYS:
            return status != TaskStatus.SKIPPED
        if self is TaskNotify.NOT_SUCCEEDED:
            return status not in (TaskStatus.SUCCEEDED, TaskStatus.SKIPPED)
        if self is TaskNotify.FAILED_ONLY:
            return status == TaskStatus.FAILED
        return False


class NotifyEvent(StrEnum):
    TASK_FINISHED = "task_finished"
    HEALTH_CHANGED = "health_changed"
    DRIFT_FOUND = "drift_found"
    TEST = "test"


class DeliveryStatus(StrEnum):
    PENDING = "pending"
    SENT = "sent"
    FAILED = "failed"


@dataclass(frozen=True)
class Health:
    """A rule's health as shown: state, why, since when, and when it was last checked."""

    state: HealthState
    reason: str = ""
    since: dt.datetime | None = None
    checked_at: dt.datetime | None = None

    def __post_init__(self) -> None:
        object.__setattr__(self, "state", HealthState(self.state))


@dataclass(frozen=True)
class RuleHealth:
    """A stored health check (``rule_health``)."""

    rule_id: UUID
    state: str
    reason: str
    since: dt.datetime
    checked_at: dt.datetime


@dataclass(frozen=True)
class DriftReport:
    id: UUID
    tenant_id: UUID
    rule_id: UUID | None
    status: str
    message: str
    missing: int
    differs: int
    extra: int
    in_sync: int
    created_at: dt.datetime
    started_at: dt.datetime | None
    finished_at: dt.datetime | None

    @property
    def drifted(self) -> int:
        """Tags out of sync: missing, differing or extra."""
        return self.missing + self.differs + self.extra


@dataclass(frozen=True)
class DriftEntry:
    """One line of a drift report; source fields are None for ``extra``."""

    kind: str
    source_repository: str | None
    source_tag: str | None
    target_repository: str
    target_tag: str
    source_digest: str | None = None
    target_digest: str | None = None
    override_changes: bool | None = None


@dataclass(frozen=True)
class Notification:
    """Where to tell people; the addresses are encrypted and never shown."""

    id: UUID
    tenant_id: UUID
    rule_id: UUID | None
    name: str
    urls_enc: bytes = field(repr=False)
    schemes: Sequence[str]
    on_task: str
    on_health: bool
    on_drift: bool
    enabled: bool
    created_at: dt.datetime
    updated_at: dt.datetime


@dataclass(frozen=True)
class Delivery:
    """One message to one notification's addresses, and how sending it went."""

    id: int
    notification_id: UUID
    event: str
    event_key: str
    rule_id: UUID | None
    title: str
    body: str
    status: str
    attempts: int
    last_error: str
    created_at: dt.datetime
    updated_at: dt.datetime


def is_refusal(reason: str) -> bool:
    """True for the reasons a refused rule gives (they are read live from the rule)."""
    return reason == BLOCKED_BY_TARGET or reason.startswith("suspended")


def effective_health(rule: Rule, stored: RuleHealth | None) -> Health:
    """What a rule's health is now: a live refusal (blocked, suspended) is ``broken`` at
    once; otherwise the last check, where a refusal it recorded has since been lifted."""
    checked = stored.checked_at if stored else None
    refused = rule.health
    if refused != "ok":
        since = rule.blocked_at or (stored.since if stored and stored.reason == refused else None)
        return Health(HealthState.BROKEN, refused, since or rule.updated_at, checked)
    if stored is None or is_refusal(stored.reason):
        return Health(HealthState.OK, "", None, checked)
    return Health(HealthState(stored.state), stored.reason, stored.since, checked)


def health_label(rule: Rule, health: Health) -> str:
    """The API's one-string ``health``: the refusal's own words for a refused rule
    (``blocked by the target account``, ``suspended: ...``), else the state."""
    return rule.health if rule.health != "ok" else health.state.value
