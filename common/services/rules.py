"""Rules of a tenant: create, read, change, enable and delete them.

A rule is given in the API's nested shape (``source``, ``target``); the same
validation (``common.services.rule_checks``) runs on create, on PUT and on
PATCH (a PATCH is merged over the stored rule first). Each function owns its
transactions; the registry is contacted outside them.
"""

from __future__ import annotations

import copy
import datetime as dt
from collections.abc import Mapping
from typing import Any
from uuid import UUID

from common import db as database
from common.db import rules as q
from common.db.tasks import finalize_task, stop_tasks_of_rule
from common.domain import rules
from common.domain.models import Rule
from common.errors import NotFound, found
from common.services.rule_checks import CROSS_TENANT_FIELDS, FILTER_FIELDS, prepare
from common.settings import Settings


def spec_from_row(row: Rule) -> dict[str, Any]:
    """The stored rule in the API's nested shape (never with a password)."""
    return {
        "name": row.name,
        "description": row.description,
        "source": {
            "instance_id": row.source_instance_id,
            "namespace": row.source_namespace,
            "filter_syntax": row.filter_syntax,
            **{f: getattr(row, f) for f in FILTER_FIELDS},
            "semver": row.semver,
            "latest": row.latest,
        },
        "resource_types": list(row.resource_types),
        "target": {
            "instance_id": row.target_instance_id,
            "namespace": row.target_namespace,
            "cross_tenant": row.cross_tenant,
            "account_id": row.target_account_id,
            "username": row.target_username,
            "has_credentials": row.target_password_enc is not None,
        },
        "override": row.override,
        "include_referrers": row.include_referrers,
        "deletion": row.deletion,
        "enabled": row.enabled,
        "schedule": row.schedule,
        "schedule_timezone": row.schedule_timezone,
    }


def merge_patch(current: Mapping[str, Any], patch: Mapping[str, Any]) -> dict[str, Any]:
    """``current`` with ``patch`` written over it (``source`` and ``target`` merged key by key).

    Turning ``cross_tenant`` off drops the stored account and username unless
    the patch names them, so that switching back to a same-tenant target is
    one field.
    """
    merged = copy.deepcopy(dict(current))
    for key, value in patch.items():
        if key in ("source", "target") and isinstance(value, Mapping):
            merged[key] = {**merged.get(key, {}), **value}
        else:
            merged[key] = value
    target_patch = patch.get("target") or {}
    if target_patch.get("cross_tenant") is False:
        for f in CROSS_TENANT_FIELDS:
            if f not in target_patch:
                merged["target"][f] = None
    return merged


def create_rule(settings: Settings, tenant_id: UUID, spec: Mapping[str, Any]) -> Rule:
    """Validate and store a new rule of the tenant; the stored row."""
    values = prepare(settings, tenant_id, spec)
    with database.transaction(settings) as conn:
        return q.insert_rule(conn, tenant_id, values)


def get_rule(settings: Settings, tenant_id: UUID, rule_id: UUID) -> Rule:
    """The tenant's rule; NotFound when it does not exist for this tenant."""
    return found(
        database.in_transaction(settings, q.get_rule, rule_id, tenant_id), "rule not found"
    )


def list_rules(
    settings: Settings,
    tenant_id: UUID,
    *,
    source_instance_id: UUID | None,
    limit: int,
    offset: int,
    only: list[UUID] | None = None,
) -> tuple[list[Rule], int]:
    """One page of the tenant's rules, optionally of one source instance (and with ``only``,
    only rules whose instances are all among those), and the total."""
    return database.in_transaction(
        settings,
        q.list_rules,
        tenant_id,
        source_instance_id=source_instance_id,
        limit=limit,
        offset=offset,
        only=only,
    )


def replace_rule(
    settings: Settings, tenant_id: UUID, rule_id: UUID, spec: Mapping[str, Any]
) -> Rule:
    """Replace the whole rule (PUT); an omitted cross-tenant password is kept when the target
    instance, account and username are unchanged."""
    existing = get_rule(settings, tenant_id, rule_id)
    return _store(settings, tenant_id, rule_id, prepare(settings, tenant_id, spec, existing))


def patch_rule(
    settings: Settings, tenant_id: UUID, rule_id: UUID, patch: Mapping[str, Any]
) -> Rule:
    """Change some fields (PATCH), validated as a whole rule after merging."""
    existing = get_rule(settings, tenant_id, rule_id)
    spec = merge_patch(spec_from_row(existing), patch)
    return _store(settings, tenant_id, rule_id, prepare(settings, tenant_id, spec, existing))


def _store(settings: Settings, tenant_id: UUID, rule_id: UUID, values: dict[str, Any]) -> Rule:
    with database.transaction(settings) as conn:
        row = q.update_rule(conn, rule_id, tenant_id, values)
    return found(row, "rule not found")


def set_enabled(settings: Settings, tenant_id: UUID, rule_id: UUID, enabled: bool) -> Rule:
    """Enable or disable the rule; enabling restarts its schedule from now."""
    with database.transaction(settings) as conn:
        row = found(q.get_rule(conn, rule_id, tenant_id), "rule not found")
        next_run_at = row.next_run_at
        if enabled and not row.enabled and row.schedule:
            next_run_at = rules.next_run(
                row.schedule, dt.datetime.now(dt.UTC), row.schedule_timezone
            )
        updated = q.set_rule_enabled(conn, rule_id, tenant_id, enabled, next_run_at)
    # None: deleted by a concurrent request since it was read.
    return found(updated, "rule not found")


def delete_rule(settings: Settings, tenant_id: UUID, rule_id: UUID) -> None:
    """Stop the rule's running tasks, then delete it; NotFound when not the tenant's.

    The task log stays (tasks keep their figures, with no rule).
    """
    stopped: list[UUID] = []
    with database.transaction(settings) as conn:
        if q.get_rule(conn, rule_id, tenant_id) is not None:
            stopped = stop_tasks_of_rule(conn, rule_id)
        if not q.delete_rule(conn, rule_id, tenant_id):
            raise NotFound("rule not found")
    # After the commit, so that a copy finishing meanwhile is seen (or sees us).
    with database.transaction(settings) as conn:
        for task_uuid in stopped:
            finalize_task(conn, task_uuid)
