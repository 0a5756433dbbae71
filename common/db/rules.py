"""Rules: rows, tenant scoping, encrypted cross-tenant passwords and the schedule claims."""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from typing import Any
from uuid import UUID

import psycopg

from common.db.rows import (
    Table,
    fetch_all,
    fetch_dict,
    fetch_dicts,
    fetch_one,
    fetch_value,
    insert_sql,
    update_sql,
)
from common.domain.models import Rule
from common.errors import Conflict

COLUMNS = (
    "id, tenant_id, name, description, source_instance_id, source_namespace, "
    "repository_filter, tag_filter, repository_exclude, tag_exclude, filter_syntax, "
    "resource_types, target_instance_id, target_namespace, cross_tenant, target_account_id, "
    "target_username, target_password_enc, override, enabled, schedule, schedule_timezone, "
    "next_run_at, created_at, updated_at, blocked_at, suspended_reason, target_bound_url, "
    "target_bound_verify_tls, number, semver, latest, include_referrers, deletion"
)
RULES = Table(Rule, COLUMNS, "rules", order_by="name, id")
# Columns the API may write; tenant_id, ids and timestamps are Ferry's.
WRITABLE = (
    "name",
    "description",
    "source_instance_id",
    "source_namespace",
    "repository_filter",
    "tag_filter",
    "repository_exclude",
    "tag_exclude",
    "filter_syntax",
    "resource_types",
    "target_instance_id",
    "target_namespace",
    "cross_tenant",
    "target_account_id",
    "target_username",
    "target_password_enc",
    "override",
    "enabled",
    "schedule",
    "schedule_timezone",
    "next_run_at",
    "suspended_reason",
    "target_bound_url",
    "target_bound_verify_tls",
    "semver",
    "latest",
    "include_referrers",
    "deletion",
)


def _translate(exc: psycopg.Error, values: Mapping[str, Any]) -> Exception:
    """A FerryError for constraint violations a concurrent request can cause."""
    if isinstance(exc, psycopg.errors.UniqueViolation):
        return Conflict(
            f"a rule named {values.get('name')!r} already exists for this source instance"
        )
    if isinstance(exc, psycopg.errors.ForeignKeyViolation):
        return Conflict("an instance the rule refers to was deleted meanwhile")
    return exc


def insert_rule(conn: psycopg.Connection, tenant_id: UUID, values: Mapping[str, Any]) -> Rule:
    """Insert a rule of ``tenant_id``; Conflict when its name is taken on the source."""
    cols = [c for c in WRITABLE if c in values]
    query = insert_sql("rules", ["tenant_id", *cols], COLUMNS)
    try:
        with conn.transaction():
            row = fetch_one(conn, Rule, query, (tenant_id, *(values[c] for c in cols)))
    except (psycopg.errors.UniqueViolation, psycopg.errors.ForeignKeyViolation) as exc:
        raise _translate(exc, values) from None
    assert row is not None
    return row


def get_rule(conn: psycopg.Connection, rule_id: UUID, tenant_id: UUID | None = None) -> Rule | None:
    """The rule, or None; with ``tenant_id``, only if that tenant owns it."""
    if tenant_id is None:
        return RULES.one(conn, "id = %s", (rule_id,))
    return RULES.one(conn, "id = %s AND tenant_id = %s", (rule_id, tenant_id))


def rule_by_name(
    conn: psycopg.Connection, tenant_id: UUID, source_instance_id: UUID, name: str
) -> Rule | None:
    """The tenant's rule named ``name`` on the source instance, or None."""
    return RULES.one(
        conn,
        "tenant_id = %s AND source_instance_id = %s AND name = %s",
        (tenant_id, source_instance_id, name),
    )


def rule_by_number(conn: psycopg.Connection, tenant_id: UUID, number: int) -> Rule | None:
    """The tenant's rule with this per-tenant number, or None."""
    return RULES.one(conn, "tenant_id = %s AND number = %s", (tenant_id, number))


def rule_name_taken(
    conn: psycopg.Connection, source_instance_id: UUID, name: str, except_id: UUID | None = None
) -> bool:
    """True when another rule on the source instance has ``name``."""
    found = fetch_value(
        conn,
        "SELECT 1 FROM rules WHERE source_instance_id = %s AND name = %s "
        "AND id IS DISTINCT FROM %s",
        (source_instance_id, name, except_id),
    )
    return found is not None


def list_rules(
    conn: psycopg.Connection,
    tenant_id: UUID,
    *,
    source_instance_id: UUID | None = None,
    limit: int,
    offset: int,
    only: list[UUID] | None = None,
) -> tuple[list[Rule], int]:
    """One page of the tenant's rules (optionally of one source instance; with ``only``, the
    rules whose source and own target are among those instances), and the total."""
    return RULES.page(
        conn,
        "tenant_id = %s AND (%s::uuid IS NULL OR source_instance_id = %s) "
        "AND (%s::uuid[] IS NULL OR (source_instance_id = ANY(%s::uuid[]) "
        "AND (cross_tenant OR target_instance_id = ANY(%s::uuid[]))))",
        (tenant_id, source_instance_id, source_instance_id, only, only, only),
        limit=limit,
        offset=offset,
    )


def update_rule(
    conn: psycopg.Connection, rule_id: UUID, tenant_id: UUID, values: Mapping[str, Any]
) -> Rule | None:
    """Write ``values`` over the tenant's rule; the new row, or None if not found."""
    unknown = set(values) - set(WRITABLE)
    if unknown:
        raise ValueError(f"not writable: {sorted(unknown)}")
    if not values:
        return get_rule(conn, rule_id, tenant_id)
    query = update_sql("rules", list(values), "id = %s AND tenant_id = %s", COLUMNS)
    try:
        with conn.transaction():
            return fetch_one(conn, Rule, query, (*values.values(), rule_id, tenant_id))
    except (psycopg.errors.UniqueViolation, psycopg.errors.ForeignKeyViolation) as exc:
        raise _translate(exc, values) from None


def set_rule_enabled(
    conn: psycopg.Connection,
    rule_id: UUID,
    tenant_id: UUID,
    enabled: bool,
    next_run_at: dt.datetime | None,
) -> Rule | None:
    """Enable or disable the tenant's rule; the new row, or None if not found."""
    return update_rule(conn, rule_id, tenant_id, {"enabled": enabled, "next_run_at": next_run_at})


def delete_rule(conn: psycopg.Connection, rule_id: UUID, tenant_id: UUID) -> bool:
    """Delete the tenant's rule (its tasks keep their history); False if not found."""
    deleted = fetch_value(
        conn,
        "DELETE FROM rules WHERE id = %s AND tenant_id = %s RETURNING id",
        (rule_id, tenant_id),
    )
    return deleted is not None


def enabled_rules(conn: psycopg.Connection) -> list[Rule]:
    """Every enabled rule."""
    return RULES.all(conn, "enabled")


def enabled_rules_on_source(conn: psycopg.Connection, instance_id: UUID) -> list[Rule]:
    """Every enabled rule whose source is ``instance_id``."""
    return RULES.all(conn, "source_instance_id = %s AND enabled", (instance_id,))


def unscheduled_rules(conn: psycopg.Connection) -> list[Rule]:
    """Enabled rules with a schedule but no next run yet (new, or the schedule was just set)."""
    return RULES.all(conn, "enabled AND schedule IS NOT NULL AND next_run_at IS NULL")


def set_first_run(conn: psycopg.Connection, rule_id: UUID, at: dt.datetime) -> None:
    """Give an unscheduled rule its first run time, unless another dispatcher already did."""
    conn.execute(
        "UPDATE rules SET next_run_at = %s WHERE id = %s AND next_run_at IS NULL", (at, rule_id)
    )


def due_rules(conn: psycopg.Connection, now: dt.datetime) -> list[Rule]:
    """Enabled rules whose scheduled run is due at ``now``."""
    return RULES.all(conn, "enabled AND schedule IS NOT NULL AND next_run_at <= %s", (now,))


def claim_scheduled_run(
    conn: psycopg.Connection, rule: Rule, following: dt.datetime | None
) -> bool:
    """Move a due rule's next run from the time it was read with to ``following``.

    False when another dispatcher moved it first (or the rule was disabled).
    """
    claimed = fetch_value(
        conn,
        "UPDATE rules SET next_run_at = %s WHERE id = %s AND next_run_at = %s "
        "AND enabled RETURNING id",
        (following, rule.id, rule.next_run_at),
    )
    return claimed is not None


def claim_rescan(
    conn: psycopg.Connection, rule_id: UUID, now: dt.datetime, min_interval_seconds: float
) -> bool:
    """Record a full rescan of the rule at ``now``, unless one ran within the interval."""
    claimed = fetch_value(
        conn,
        """UPDATE rules SET last_rescan_at = %(now)s
           WHERE id = %(id)s AND enabled
             AND (last_rescan_at IS NULL
                  OR last_rescan_at <= %(now)s - make_interval(secs => %(s)s))
           RETURNING id""",
        {"now": now, "id": rule_id, "s": min_interval_seconds},
    )
    return claimed is not None


def encrypted_passwords(conn: psycopg.Connection) -> list[Rule]:
    """Every rule holding a password, locked for update."""
    return RULES.all(conn, "target_password_enc IS NOT NULL ORDER BY id FOR UPDATE")


def set_encrypted_password(conn: psycopg.Connection, rule_id: UUID, password_enc: bytes) -> None:
    """Replace a rule's encrypted target password (same plaintext, new ciphertext)."""
    conn.execute("UPDATE rules SET target_password_enc = %s WHERE id = %s", (password_enc, rule_id))


def suspend_incoming(conn: psycopg.Connection, instance_id: UUID, reason: str) -> list[UUID]:
    """Suspend other tenants' rules that write into the instance; their ids."""
    rows = fetch_all(
        conn,
        Rule,
        f"UPDATE rules SET suspended_reason = %s, updated_at = now() "
        f"WHERE target_instance_id = %s AND cross_tenant "
        f"AND tenant_id <> (SELECT tenant_id FROM instances WHERE id = %s) RETURNING {COLUMNS}",
        (reason, instance_id, instance_id),
    )
    return [r.id for r in rows]


def set_blocked(
    conn: psycopg.Connection, rule_id: UUID, target_tenant_id: UUID, blocked: bool
) -> bool:
    """Block or unblock a rule writing into the target tenant's instances; False if no such
    rule."""
    done = fetch_value(
        conn,
        "UPDATE rules SET blocked_at = CASE WHEN %s THEN coalesce(blocked_at, now()) END "
        "WHERE id = %s AND cross_tenant AND target_account_id = %s "
        "AND target_instance_id IN (SELECT id FROM instances WHERE tenant_id = %s) RETURNING id",
        (blocked, rule_id, target_tenant_id, target_tenant_id),
    )
    return done is not None


INCOMING_COLUMNS = (
    "r.id, r.tenant_id AS source_account_id, r.name, r.target_instance_id, "
    "coalesce(nullif(r.target_namespace, ''), r.source_namespace) AS target_namespace, "
    "r.blocked_at IS NOT NULL AS blocked, r.enabled, t.status AS last_task_status, "
    "coalesce(t.finished_at, t.started_at, t.created_at) AS last_task_at"
)
_INCOMING_SOURCE = (
    "rules r JOIN instances i ON i.id = r.target_instance_id AND i.tenant_id = r.target_account_id "
    "LEFT JOIN LATERAL (SELECT status, created_at, started_at, finished_at FROM sync_tasks "
    "WHERE rule_id = r.id ORDER BY created_at DESC LIMIT 1) t ON true"
)


def list_incoming(
    conn: psycopg.Connection,
    tenant_id: UUID,
    *,
    limit: int,
    offset: int,
    only: list[UUID] | None = None,
) -> tuple[list[dict[str, Any]], int]:
    """One page of other tenants' rules writing into the tenant's instances, and the total.

    Only what the target account may see: no source address, no credentials.
    """
    where = (
        "r.cross_tenant AND r.target_account_id = %s AND r.tenant_id <> %s "
        "AND (%s::uuid[] IS NULL OR r.target_instance_id = ANY(%s::uuid[]))"
    )
    params = (tenant_id, tenant_id, only, only)
    total = fetch_value(conn, f"SELECT count(*) FROM {_INCOMING_SOURCE} WHERE {where}", params) or 0
    if offset >= total:
        return [], total  # also keeps a huge page number from overflowing OFFSET
    rows = fetch_dicts(
        conn,
        f"SELECT {INCOMING_COLUMNS} FROM {_INCOMING_SOURCE} WHERE {where} "
        "ORDER BY r.name, r.id LIMIT %s OFFSET %s",
        (*params, limit, offset),
    )
    return rows, total


def get_incoming(conn: psycopg.Connection, rule_id: UUID, tenant_id: UUID) -> dict[str, Any] | None:
    """One incoming rule of the tenant (as :func:`list_incoming` shows it), or None."""
    return fetch_dict(
        conn,
        f"SELECT {INCOMING_COLUMNS} FROM {_INCOMING_SOURCE} "
        "WHERE r.id = %s AND r.cross_tenant AND r.target_account_id = %s AND r.tenant_id <> %s",
        (rule_id, tenant_id, tenant_id),
    )
