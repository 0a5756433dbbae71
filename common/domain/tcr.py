"""How the TCR product's words map onto Ferry's: filters, statuses, times, resources.

Pure functions: the use cases of ``common.services.tcr`` call them to turn a
``ManageReplication`` body into a rule in Ferry's nested shape and Ferry's rows
back into the product's answers. The README's "TCR-compatible API" section is
the table of the same mapping.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

from common.domain.models import Instance, Item, Rule, Task
from common.domain.vocab import (
    REFERRER,
    ArtifactKind,
    FilterSyntax,
    ItemStatus,
    ResourceType,
    TaskStatus,
)
from common.security.tc3 import ApiError

API_VERSION = "2019-09-24"
SERVICE = "tcr"
FILTER_TYPES = ("name", "tag", "resource")
# Ferry's field paths (in its validation errors) as the product's parameters.
PARAMETER_OF_FIELD = {
    "name": "Rule.Name",
    "description": "Description",
    "source.instance_id": "SourceRegistryId",
    "source.namespace": "Rule.Filters name (its first segment)",
    "source.repository_filter": "Rule.Filters name",
    "source.tag_filter": "Rule.Filters tag",
    "resource_types": "Rule.Filters resource",
    "target.instance_id": "DestinationRegistryId",
    "target.namespace": "Rule.DestNamespace",
    "target.account_id": "PeerReplicationOption.PeerRegistryUin",
    "target.username": "PeerReplicationOption.PeerRegistryUin",
    "target.password": "PeerReplicationOption.PeerRegistryToken",
}

# A Ferry task (an execution in the product) in the product's words.
EXECUTION_STATUS = {
    TaskStatus.PENDING: "InProgress",
    TaskStatus.IN_PROGRESS: "InProgress",
    TaskStatus.SUCCEEDED: "Succeed",
    TaskStatus.PARTIALLY_SUCCEEDED: "Failed",
    TaskStatus.FAILED: "Failed",
    TaskStatus.STOPPED: "Stopped",
    TaskStatus.SKIPPED: "Stopped",
}
# An item (a task in the product) in the product's words.
TASK_STATUS = {
    ItemStatus.PENDING: "Pending",
    ItemStatus.RUNNING: "InProgress",
    ItemStatus.COPIED: "Succeed",
    ItemStatus.UP_TO_DATE: "Succeed",
    ItemStatus.KEPT: "Succeed",
    ItemStatus.DELETED: "Succeed",
    ItemStatus.FAILED: "Failed",
    ItemStatus.STOPPED: "Stopped",
}
_RESOURCE_OF_KIND = {
    ArtifactKind.IMAGE: "image",
    ArtifactKind.INDEX: "image",
    ArtifactKind.CHART: "chart",
    ArtifactKind.ARTIFACT: "artifact",
    # Signatures, SBOMs and attestations copied with their subject.
    REFERRER: "artifact",
}


def product_time(value: dt.datetime | None) -> str:
    """A time as the product writes it (RFC 3339, seconds, UTC offset); "" for none."""
    if value is None:
        return ""
    return value.astimezone(dt.UTC).strftime("%Y-%m-%dT%H:%M:%S+00:00")


@dataclass(frozen=True)
class Filters:
    """A product filter list in Ferry's terms."""

    namespace: str | None
    repository_filter: str
    tag_filter: str
    resource_types: list[str]


def _filter_value(index: int, entry: Any) -> tuple[str, str]:
    where = f"Rule.Filters.{index}"
    if not isinstance(entry, Mapping):
        raise ApiError("InvalidParameter", f"{where} must be an object with Type and Value")
    kind, value = entry.get("Type"), entry.get("Value", "")
    if kind not in FILTER_TYPES:
        raise ApiError(
            "InvalidParameterValue", f"{where}.Type must be one of {', '.join(FILTER_TYPES)}"
        )
    if not isinstance(value, str):
        raise ApiError("InvalidParameter", f"{where}.Value must be a string")
    return kind, value.strip()


def parse_filters(entries: Iterable[Any]) -> Filters:
    """Ferry's namespace, repository and tag globs and resource types from product filters.

    ``name`` is ``<namespace>[/<glob below it>]``: its first segment is the source
    namespace and must be literal, as the product has no "all namespaces".
    """
    found: dict[str, str] = {}
    for index, entry in enumerate(entries):
        kind, value = _filter_value(index, entry)
        if kind in found:
            raise ApiError("InvalidParameterValue", f"Rule.Filters: one {kind!r} filter at most")
        found[kind] = value
    namespace, repository = None, ""
    if "name" in found:
        namespace, _, repository = found["name"].partition("/")
        if not namespace or any(c in namespace for c in "*?[]{}"):
            raise ApiError(
                "InvalidParameterValue",
                "Rule.Filters name: the first segment is the source namespace and must be "
                "literal (e.g. 'project/**'); Ferry never copies all namespaces",
            )
    if repository == "**":
        repository = ""  # every repository below the namespace, as an empty filter says
    resource = found.get("resource", "")
    if resource not in ("", *tuple(ResourceType)):
        raise ApiError("InvalidParameterValue", "Rule.Filters resource must be image or chart")
    types = [resource] if resource else list(ResourceType)
    return Filters(namespace, repository, found.get("tag", ""), types)


def format_filters(rule: Rule) -> list[dict[str, str]]:
    """The rule's filters as product filters; what the product cannot say gets Ferry's own
    types (``-regex`` for regex patterns, ``name-exclude``/``tag-exclude``)."""
    suffix = "-regex" if rule.filter_syntax == FilterSyntax.REGEX else ""
    out = [{"Type": "name", "Value": f"{rule.source_namespace}/**"}]
    if rule.repository_filter:
        value = f"{rule.source_namespace}/{rule.repository_filter}"
        out = [{"Type": "name" + suffix, "Value": value}]
    if rule.tag_filter:
        out.append({"Type": "tag" + suffix, "Value": rule.tag_filter})
    if len(rule.resource_types) == 1:
        out.append({"Type": "resource", "Value": rule.resource_types[0]})
    for kind, pattern in (("name", rule.repository_exclude), ("tag", rule.tag_exclude)):
        if pattern:
            out.append({"Type": f"{kind}-exclude{suffix}", "Value": pattern})
    return out


def policy_info(rule: Rule) -> dict[str, Any]:
    """A rule as a ``ReplicationPolicyInfo``."""
    target = str(rule.target_instance_id) if rule.target_instance_id else ""
    return {
        "ID": rule.number,
        "Name": rule.name,
        "Description": rule.description,
        "Filters": format_filters(rule),
        "Override": rule.override,
        "Enabled": rule.enabled,
        "SrcResource": f"{rule.source_instance_id}/{rule.source_namespace}",
        "DestResource": f"{target}/{rule.effective_target_namespace}",
        "CreationTime": product_time(rule.created_at),
        "UpdateTime": product_time(rule.updated_at),
    }


def execution_id(task: Task) -> int:
    """A task's integer id in the product: its sequence number in the source instance."""
    return int(task.task_id.rsplit("-", 1)[1])


def task_id_of(registry_id: str, execution: int) -> str:
    """The readable task id of execution ``execution`` of the source instance."""
    return f"{registry_id[:8]}-{execution:06d}"


def execution(task: Task, policy_id: int) -> dict[str, Any]:
    """A task as a ``ReplicationExecution``."""
    return {
        "ExecutionID": execution_id(task),
        "PolicyID": policy_id,
        "Status": EXECUTION_STATUS[task.status],
        "Total": task.total,
        "Succeed": task.copied + task.up_to_date + task.kept,
        "StartTime": product_time(task.started_at or task.created_at),
        "EndTime": product_time(task.finished_at),
    }


def replication_task(item: Item) -> dict[str, Any]:
    """An item as a ``ReplicationTask``."""
    return {
        "ResourceType": _RESOURCE_OF_KIND.get(item.kind or "", ""),
        "SrcResource": f"{item.source_repository}:{item.source_tag}",
        "DstResource": f"{item.target_repository}:{item.target_tag}",
        "JobID": str(item.id),
        "Status": TASK_STATUS[item.status],
        "StartTime": product_time(item.started_at),
        "EndTime": product_time(item.finished_at),
    }


def registry(instance: Instance) -> dict[str, Any]:
    """An instance as a ``Registry`` of ``DescribeInstances``."""
    return {
        "RegistryId": str(instance.id),
        "RegistryName": instance.name,
        "RegistryType": instance.kind,
        "Status": instance_status(instance),
        "PublicDomain": urlsplit(instance.url).netloc,
        "RegionName": instance.region,
        "CreatedAt": product_time(instance.created_at),
    }


def instance_status(instance: Instance) -> str:
    """``Running`` when the instance's last check (its /v2/ with the stored credentials, on
    save or from the console) passed, ``Unhealthy`` when it failed."""
    return "Unhealthy" if instance.check_error else "Running"
