"""DescribeReplicationExecutions, DescribeReplicationTasks and DescribeInstances.

A Ferry task is the product's execution (its ExecutionID is the task's number
in its source instance), a task's item is the product's task, an instance is a
registry. Each reads through the services the JSON API uses.
"""

from __future__ import annotations

from typing import Any
from uuid import UUID

from common import db as database
from common.db import rules as qr
from common.domain import tcr
from common.domain.permissions import Action
from common.security.tc3 import ApiError
from common.services import access
from common.services import instances as instance_service
from common.services import tasks as task_service
from common.services.tcr.context import Context
from common.services.tcr.params import Params


def describe_executions(ctx: Context, params: Params) -> dict[str, Any]:
    """The tasks of the rule numbered PolicyId on RegistryId, newest first, paged."""
    registry = params.instance_id("RegistryId")
    policy = params.integer("PolicyId", required=True, minimum=1)
    rule = database.in_transaction(ctx.settings, qr.rule_by_number, ctx.tenant_id, policy)
    if rule is None or rule.source_instance_id != registry:
        raise ApiError("ResourceNotFound", f"no policy {policy} on instance {registry}")
    ctx.authorize(Action.TASK_READ, f"policy {policy}", access.rule_scope(rule))
    limit, offset = params.page()
    rows, total = task_service.list_tasks(
        ctx.settings, ctx.tenant_id, rule.id, limit=limit, offset=offset
    )
    return {
        "ReplicationExecutionList": [tcr.execution(t, rule.number) for t in rows],
        "TotalCount": total,
    }


def describe_tasks(ctx: Context, params: Params) -> dict[str, Any]:
    """The items of execution ExecutionId of RegistryId, paged."""
    registry = params.instance_id("RegistryId")
    execution = params.integer("ExecutionId", required=True, minimum=1)
    access.instance_scope(ctx.settings, ctx.tenant_id, registry)
    task_id = tcr.task_id_of(str(registry), execution)
    scope = access.task_scope(ctx.settings, ctx.tenant_id, task_id)
    ctx.authorize(Action.TASK_READ, f"execution {execution}", scope)
    limit, offset = params.page()
    rows, total = task_service.list_items(
        ctx.settings, ctx.tenant_id, task_id, status=None, limit=limit, offset=offset
    )
    return {"ReplicationTaskList": [tcr.replication_task(i) for i in rows], "TotalCount": total}


def _wanted(values: list[Any]) -> list[UUID]:
    """The instance ids of Registryids; a value that is no id names no instance."""
    wanted = []
    for index, value in enumerate(values):
        if not isinstance(value, str):
            raise ApiError("InvalidParameter", f"Registryids.{index} must be a string")
        try:
            wanted.append(UUID(value.strip()))
        except ValueError:
            continue
    return wanted


def describe_instances(ctx: Context, params: Params) -> dict[str, Any]:
    """The caller's instances (those of Registryids when given), limited to its grants."""
    requested = params.array("Registryids")
    offset = params.integer("Offset", default=0, maximum=10_000_000)
    limit = params.integer("Limit", default=20, minimum=1, maximum=100)
    only = ctx.granted()
    if requested:
        wanted = _wanted(requested)
        only = wanted if only is None else [i for i in wanted if i in set(only)]
        if not only:
            return {"Registries": [], "TotalCount": 0}
    rows, total = instance_service.list_instances(
        ctx.settings, ctx.tenant_id, limit=limit, offset=offset, only=only
    )
    return {"Registries": [tcr.registry(i) for i in rows], "TotalCount": total}
