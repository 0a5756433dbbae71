"""What a permission is checked on: the instances an object is tied to.

A rule is tied to its source instance and, when the target is the tenant's
own, to its target instance. A task is tied to its rule's instances (or to its
source instance when the rule was deleted). Each lookup is scoped by tenant,
so another tenant's object is NotFound before any permission is considered.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any
from uuid import UUID

from common import db as database
from common.db import drift as qd
from common.db import instances as qi
from common.db import notifications as qn
from common.db import rules as qr
from common.db import tasks as qt
from common.db import users as qu
from common.domain.models import Rule
from common.errors import NotFound, found
from common.settings import Settings


def rule_scope(rule: Rule) -> list[UUID]:
    """The instances an action on ``rule`` needs."""
    return [rule.source_instance_id] + ([] if rule.cross_tenant else [rule.target_instance_id])


def spec_scope(spec: Mapping[str, Any]) -> list[UUID]:
    """The instances a rule body (API shape) names, as ``rule_scope`` counts them."""
    found = []
    for part in ("source", "target"):
        value = (spec.get(part) or {}).get("instance_id")
        if value is None or (part == "target" and spec["target"].get("cross_tenant")):
            continue
        try:
            found.append(UUID(str(value)))
        except ValueError:
            continue  # the rule's own validation names the field
    return found


def instance_scope(settings: Settings, tenant_id: UUID, instance_id: UUID) -> list[UUID]:
    """``[instance_id]`` when the tenant owns it; NotFound otherwise."""
    with database.transaction(settings) as conn:
        if qi.get_instance(conn, instance_id, tenant_id) is None:
            raise NotFound("instance not found")
    return [instance_id]


def rule_of_tenant(settings: Settings, tenant_id: UUID, rule_id: UUID) -> Rule:
    """The tenant's rule; NotFound otherwise."""
    return found(
        database.in_transaction(settings, qr.get_rule, rule_id, tenant_id), "rule not found"
    )


def task_scope(settings: Settings, tenant_id: UUID, task_id: str) -> list[UUID]:
    """The instances an action on the tenant's task needs; NotFound otherwise."""
    with database.transaction(settings) as conn:
        task = qt.find_task(conn, task_id, tenant_id)
        rule = qr.get_rule(conn, task.rule_id, tenant_id) if task.rule_id else None
    return rule_scope(rule) if rule is not None else [task.source_instance_id]


def user_of_tenant(settings: Settings, tenant_id: UUID, user_id: UUID) -> None:
    """Return when the tenant has the user; NotFound otherwise."""
    with database.transaction(settings) as conn:
        if qu.get_user(conn, user_id, tenant_id) is None:
            raise NotFound("user not found")


def notification_of_tenant(settings: Settings, tenant_id: UUID, notification_id: UUID) -> None:
    """Return when the tenant has the notification; NotFound otherwise."""
    row = database.in_transaction(settings, qn.get_notification, notification_id, tenant_id)
    found(row, "notification not found")


def drift_report_of_tenant(settings: Settings, tenant_id: UUID, report_id: UUID) -> None:
    """Return when the tenant has the drift report; NotFound otherwise."""
    found(
        database.in_transaction(settings, qd.get_report, report_id, tenant_id),
        "drift report not found",
    )
