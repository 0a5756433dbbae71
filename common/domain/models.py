"""The rows Ferry stores, as frozen dataclasses: what ``common.db`` returns.

Field names are the column names, so a query's columns build the object
directly. Secrets (encrypted passwords, hashes of webhook secrets) are fields
like any other but never appear in a repr, so a logged object leaks nothing.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from dataclasses import dataclass, field
from decimal import Decimal
from uuid import UUID

from common.domain.vocab import OPEN_TASK_STATUSES, ItemStatus, TaskStatus, Trigger

BLOCKED_BY_TARGET = "blocked by the target account"


@dataclass(frozen=True)
class Instance:
    """One registry endpoint of a tenant."""

    id: UUID
    tenant_id: UUID
    name: str
    url: str
    region: str
    kind: str
    verify_tls: bool
    username: str | None
    password_enc: bytes | None = field(repr=False)
    webhook_secret_hash: bytes | None = field(repr=False)
    webhook_secret_prev_hash: bytes | None = field(repr=False)
    max_concurrent_copies: int
    task_seq: int
    created_at: dt.datetime
    updated_at: dt.datetime
    # The last registry check: when, and why it failed (None: it succeeded).
    checked_at: dt.datetime | None = None
    check_error: str | None = None

    @property
    def has_credentials(self) -> bool:
        """True when a username and (encrypted) password are stored."""
        return self.password_enc is not None


@dataclass(frozen=True)
class Rule:
    """What to copy from where to where."""

    id: UUID
    tenant_id: UUID
    name: str
    description: str
    source_instance_id: UUID
    source_namespace: str
    repository_filter: str
    tag_filter: str
    repository_exclude: str
    tag_exclude: str
    filter_syntax: str
    resource_types: Sequence[str]
    target_instance_id: UUID | None  # None: the target account deleted it (suspended)
    target_namespace: str
    cross_tenant: bool
    target_account_id: UUID | None
    target_username: str | None
    target_password_enc: bytes | None = field(repr=False)
    override: bool
    enabled: bool
    schedule: str | None
    schedule_timezone: str
    next_run_at: dt.datetime | None
    created_at: dt.datetime
    updated_at: dt.datetime
    # Set by the target account (cross-tenant rules only).
    blocked_at: dt.datetime | None = None
    # Why the rule cannot run until its owner acts (deleted target, changed URL or TLS).
    suspended_reason: str | None = None
    # Where a cross-tenant password was checked: it is used there and nowhere else.
    target_bound_url: str | None = None
    target_bound_verify_tls: bool | None = None
    # Per-tenant, given once at creation and never reused (the TCR-compatible API's ID).
    number: int = 0
    # Selection by version and age (common.domain.semver); '' and None: no limit.
    semver: str = ""
    latest: int | None = None
    # Copy signatures, SBOMs and attestations with their subject.
    include_referrers: bool = True
    # Propagate deletions of what this rule copied.
    deletion: bool = False

    @property
    def health(self) -> str:
        """``ok``, or why the rule does not run (what its owner reads)."""
        if self.blocked_at is not None:
            return BLOCKED_BY_TARGET
        return self.suspended_reason or "ok"

    @property
    def effective_target_namespace(self) -> str:
        """The namespace written to: the target's, or the source's name when empty."""
        return self.target_namespace or self.source_namespace


@dataclass(frozen=True)
class Task:
    """One run of a rule, with the figures of its log."""

    id: UUID
    task_id: str
    tenant_id: UUID
    rule_id: UUID | None
    source_instance_id: UUID
    trigger: Trigger
    status: TaskStatus
    message: str
    stop_requested: bool
    retry_of: UUID | None
    total: int
    copied: int
    up_to_date: int
    kept: int
    failed: int
    stopped: int
    repositories_count: int
    bytes_transferred: int
    success_rate: Decimal | None
    created_at: dt.datetime
    started_at: dt.datetime | None
    finished_at: dt.datetime | None
    time_spent_seconds: float | None
    # Target tags removed because the source deleted them (issue 14).
    deleted: int = 0
    # Not a column: the readable id of ``retry_of``, where a caller looked it up.
    retry_of_task_id: str | None = None
    # When the plan recorded that listing is complete; the task cannot finish before.
    listed_at: dt.datetime | None = None
    # How many times a plan has claimed the task (capped: a crashing plan fails the task).
    plan_attempts: int = 0

    def __post_init__(self) -> None:
        object.__setattr__(self, "status", TaskStatus(self.status))
        object.__setattr__(self, "trigger", Trigger(self.trigger))

    @property
    def is_open(self) -> bool:
        """True while the task is Pending or InProgress."""
        return self.status in OPEN_TASK_STATUSES


@dataclass(frozen=True)
class Item:
    """One repository:tag of a task and its outcome."""

    id: int
    task_id: UUID
    source_repository: str
    source_tag: str
    target_repository: str
    target_tag: str
    kind: str | None
    source_digest: str | None
    digest: str | None
    status: ItemStatus
    reason: str | None
    attempts: int
    lease_until: dt.datetime | None
    bytes_transferred: int
    blobs_skipped: int
    blobs_mounted: int
    blobs_uploaded: int
    started_at: dt.datetime | None
    finished_at: dt.datetime | None
    # The Celery hostname of the worker whose copy last claimed the item.
    worker: str | None = None
    # Not a column: the copy's duration, where a listing computed it.
    seconds: float | None = None

    def __post_init__(self) -> None:
        object.__setattr__(self, "status", ItemStatus(self.status))


@dataclass(frozen=True)
class NewItem:
    """One repository:tag a task will copy (or found already up to date)."""

    source_repository: str
    source_tag: str
    target_repository: str
    target_tag: str
    kind: str | None = None
    source_digest: str | None = None
    status: ItemStatus = ItemStatus.PENDING
    digest: str | None = None
    reason: str | None = None
    # What the plan read, for the copy to reuse: the source manifest's bytes and media
    # type, and (when ``target_checked``) the digest the target tag had (None: absent).
    manifest: bytes | None = None
    media_type: str | None = None
    target_checked: bool = False
    target_digest: str | None = None


@dataclass(frozen=True)
class PlannedCopy:
    """What the plan read for an item: the source manifest and the target tag's digest
    then (None: the tag did not exist)."""

    manifest: bytes
    media_type: str
    target_digest: str | None


@dataclass(frozen=True)
class WebhookEvent:
    """One stored push of a tag, as a registry notified it."""

    id: int
    instance_id: UUID
    repository: str
    tag: str
    digest: str | None
    processed_at: dt.datetime | None = None
    # "push" or "delete" (common.domain.webhooks); an untagged push has an empty tag.
    action: str = "push"


@dataclass(frozen=True)
class User:
    """A person or robot of a tenant, with a role and grants on instances."""

    id: UUID
    tenant_id: UUID
    name: str
    password_hash: str | None = field(repr=False)
    role: str
    grants: Sequence[str]
    created_at: dt.datetime
    updated_at: dt.datetime

    @property
    def has_password(self) -> bool:
        """True when the user can log in to the console."""
        return self.password_hash is not None


@dataclass(frozen=True)
class ApiKey:
    """An API key of a user: a bearer token (hash kept) or a SecretId/SecretKey pair."""

    id: UUID
    tenant_id: UUID
    user_id: UUID
    kind: str
    prefix: str
    description: str
    secret_id: str | None
    token_hash: bytes | None = field(repr=False)
    secret_key_enc: bytes | None = field(repr=False)
    created_at: dt.datetime
    last_used_at: dt.datetime | None
    expires_at: dt.datetime | None
    revoked_at: dt.datetime | None


@dataclass(frozen=True)
class AuditEntry:
    """One change: who, when, what, from where."""

    id: int
    tenant_id: UUID
    user_id: UUID | None
    user_name: str
    at: dt.datetime
    object_type: str
    object_id: str
    action: str
    source_ip: str
    details: dict
