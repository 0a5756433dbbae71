"""Every status, trigger, queue and kind Ferry speaks, defined once.

They are StrEnums: a member equals its string value, so JSON bodies, the API
and the database see exactly the strings they always did. SQL receives them as
parameters; the CHECK constraints of the migrations are the schema's copy of
the same sets.
"""

from __future__ import annotations

from enum import StrEnum


class TaskStatus(StrEnum):
    """Where a sync task is in its life."""

    PENDING = "Pending"
    IN_PROGRESS = "InProgress"
    SUCCEEDED = "Succeeded"
    PARTIALLY_SUCCEEDED = "PartiallySucceeded"
    FAILED = "Failed"
    STOPPED = "Stopped"
    # A scheduled run that did not happen because the previous task still ran.
    SKIPPED = "Skipped"


# A task in one of these may still change; every other status is final.
OPEN_TASK_STATUSES = frozenset({TaskStatus.PENDING, TaskStatus.IN_PROGRESS})
FINAL_TASK_STATUSES = frozenset(TaskStatus) - OPEN_TASK_STATUSES


class ItemStatus(StrEnum):
    """Where one repository:tag of a task is; the last five are its outcome."""

    PENDING = "pending"
    RUNNING = "running"
    COPIED = "copied"
    UP_TO_DATE = "up-to-date"
    KEPT = "kept"
    FAILED = "failed"
    STOPPED = "stopped"
    # A target tag removed because the source deleted it (the rule's ``deletion``).
    DELETED = "deleted"


# Items still to be copied; the others have their outcome.
OPEN_ITEM_STATUSES = frozenset({ItemStatus.PENDING, ItemStatus.RUNNING})
# Outcomes that count as success in a task's success rate.
SUCCESSFUL_ITEM_STATUSES = frozenset(
    {ItemStatus.COPIED, ItemStatus.UP_TO_DATE, ItemStatus.KEPT, ItemStatus.DELETED}
)


class Trigger(StrEnum):
    """What started a task. A retry is a manual run (``retry_of`` says of what)."""

    MANUAL = "manual"
    PUSH = "push"
    SCHEDULE = "schedule"


class QueueName(StrEnum):
    """The Celery queues; pushes have their own so a bulk rescan never delays them."""

    PUSH = "push"
    PLAN = "plan"
    COPY = "copy"


class ResourceType(StrEnum):
    """What a rule may copy."""

    IMAGE = "image"
    CHART = "chart"


class ArtifactKind(StrEnum):
    """What a tag points to (``common.registry.media`` classifies manifests into these)."""

    IMAGE = "image"
    INDEX = "index"
    CHART = "chart"
    ARTIFACT = "artifact"


# An item's kind when it is a referrer (signature, SBOM, attestation) copied with its
# subject: not an ArtifactKind, since what it is lies in its own manifest.
REFERRER = "referrer"

# The artifact kinds each resource type selects.
KINDS_FOR_TYPE = {
    ResourceType.IMAGE: frozenset({ArtifactKind.IMAGE, ArtifactKind.INDEX}),
    ResourceType.CHART: frozenset({ArtifactKind.CHART}),
}


class FilterSyntax(StrEnum):
    """How a rule's repository and tag filters are written."""

    REGEX = "regex"
    GLOB = "glob"


class InstanceKind(StrEnum):
    """The flavour of a registry instance (Harbor needs its projects created first)."""

    DISTRIBUTION = "distribution"
    HARBOR = "harbor"


class Role(StrEnum):
    """What a user of a tenant may do (``common.domain.permissions`` lists the actions)."""

    ADMIN = "admin"
    OPERATOR = "operator"
    VIEWER = "viewer"


class KeyKind(StrEnum):
    """The kinds of API key a user holds."""

    BEARER = "bearer"
    # SecretId/SecretKey for the signed compatibility API.
    SECRET_PAIR = "secret_pair"
