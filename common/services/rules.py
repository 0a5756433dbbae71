"""Rules of a tenant: whole-rule validation, references, cross-tenant credentials, storage.

A rule is given in the API's nested shape (``source``, ``target``); the same
validation runs on create, on PUT and on PATCH (a PATCH is merged over the
stored rule first). Every field error is collected before anything touches
the database, then references are resolved inside the caller's tenant, and a
cross-tenant rule's credentials are proven against the target registry
(login and push on the target namespace) before the rule is stored.
"""

from __future__ import annotations

import copy
import datetime as dt
from collections.abc import Callable, Mapping
from typing import Any, TypeVar
from urllib.parse import urlsplit
from uuid import UUID

from common import db as database
from common.db import instances as instances_q
from common.db import rules as q
from common.db.tasks import finalize_task
from common.domain import rules
from common.errors import (
    AuthError,
    Conflict,
    NetworkPolicyError,
    NotFound,
    RegistryError,
    RegistryUnavailable,
    ValidationError,
)
from common.security.crypto import SecretBox
from common.services.tasks import stop_rule_tasks
from common.settings import Settings
from common.sync.credentials import PERMISSION_CHECK_REPOSITORY, check_registry

FILTER_FIELDS = ("repository_filter", "tag_filter", "repository_exclude", "tag_exclude")
CROSS_TENANT_FIELDS = ("account_id", "username", "password")
T = TypeVar("T")


def spec_from_row(row: Mapping[str, Any]) -> dict[str, Any]:
    """The stored rule in the API's nested shape (never with a password)."""
    return {
        "name": row["name"],
        "description": row["description"],
        "source": {
            "instance_id": row["source_instance_id"],
            "namespace": row["source_namespace"],
            "filter_syntax": row["filter_syntax"],
            **{f: row[f] for f in FILTER_FIELDS},
        },
        "resource_types": list(row["resource_types"]),
        "target": {
            "instance_id": row["target_instance_id"],
            "namespace": row["target_namespace"],
            "cross_tenant": row["cross_tenant"],
            "account_id": row["target_account_id"],
            "username": row["target_username"],
            "has_credentials": row["target_password_enc"] is not None,
        },
        "override": row["override"],
        "enabled": row["enabled"],
        "schedule": row["schedule"],
        "schedule_timezone": row["schedule_timezone"],
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


class _Errors:
    """Collects field errors so that one 422 reports all of them."""

    def __init__(self) -> None:
        self.errors: dict[str, list[str]] = {}

    def add(self, field: str, message: str) -> None:
        self.errors.setdefault(field, []).append(message)

    def run(self, fn: Callable[..., T], *args: Any, **kwargs: Any) -> T | None:
        try:
            return fn(*args, **kwargs)
        except ValidationError as exc:
            for field, messages in exc.errors.items():
                self.errors.setdefault(field, []).extend(messages)
            return None

    def raise_if_any(self) -> None:
        if self.errors:
            detail = "; ".join(f"{k}: {' '.join(v)}" for k, v in sorted(self.errors.items()))
            raise ValidationError(f"The rule is invalid: {detail}", self.errors)


def _check_fields(spec: Mapping[str, Any], tenant_id: UUID) -> _Errors:
    """Every check that needs neither the database nor a registry."""
    err = _Errors()
    src, tgt = spec["source"], spec["target"]
    err.run(rules.check_rule_name, spec["name"])
    err.run(rules.check_namespace, src["namespace"], "source.namespace")
    syntax = src.get("filter_syntax") or "regex"
    for f in FILTER_FIELDS:
        err.run(rules.compile_pattern, src.get(f) or "", syntax, f"source.{f}")
    err.run(rules.check_resource_types, spec["resource_types"])
    err.run(rules.check_namespace, tgt.get("namespace") or "", "target.namespace", allow_empty=True)
    if spec.get("schedule") is not None:
        err.run(rules.check_schedule, spec["schedule"])
    if tgt.get("cross_tenant"):
        for f in ("account_id", "username"):
            if tgt.get(f) is None:
                err.add(f"target.{f}", "required for a cross-tenant rule")
        if tgt.get("account_id") is not None and str(tgt["account_id"]) == str(tenant_id):
            err.add(
                "target.account_id",
                "is your own account; use cross_tenant false for your own instances",
            )
    else:
        for f in CROSS_TENANT_FIELDS:
            if tgt.get(f) is not None:
                err.add(
                    f"target.{f}",
                    "allowed only when cross_tenant is true "
                    "(same-tenant rules use the instance's credentials)",
                )
    return err


def _effective_target_namespace(spec: Mapping[str, Any]) -> str:
    return spec["target"].get("namespace") or spec["source"]["namespace"]


def _credential_failure(
    exc: Exception, target: Mapping[str, Any], cross_tenant: bool
) -> ValidationError:
    target_id = target["id"]
    if isinstance(exc, AuthError):
        reason = str(exc)
        if cross_tenant:
            # The registry's answer, but not the other account's registry address.
            reason = reason.replace(urlsplit(target["url"]).netloc, "the target registry")
        message = f"credentials rejected by target instance {target_id}: {reason}"
        field = "target.password"
    elif cross_tenant:
        # Another tenant's registry: say what failed, not where it is.
        what = (
            "refused by the network policy"
            if isinstance(exc, NetworkPolicyError)
            else "unreachable"
            if isinstance(exc, RegistryUnavailable)
            else "answered unexpectedly"
        )
        message = f"target instance {target_id} cannot be checked: the registry is {what}"
        field = "target.instance_id"
    else:
        message = f"target instance {target_id} cannot be checked: {exc}"
        field = "target.instance_id"
    return ValidationError(message, {field: [message]})


def _prepare(
    settings: Settings,
    tenant_id: UUID,
    spec: Mapping[str, Any],
    existing: Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    """Validate a whole rule and return the row values to store; raises ValidationError,
    Conflict or a 422 with the registry's answer."""
    err = _check_fields(spec, tenant_id)
    src, tgt = spec["source"], spec["target"]
    cross = bool(tgt.get("cross_tenant"))
    password = tgt.get("password")
    keep_password = None
    if cross and password is None:
        if (
            existing is not None
            and existing["cross_tenant"]
            and str(existing["target_instance_id"]) == str(tgt.get("instance_id"))
            and str(existing["target_account_id"]) == str(tgt.get("account_id"))
            and existing["target_username"] == tgt.get("username")
        ):
            keep_password = existing["target_password_enc"]
        else:
            err.add(
                "target.password",
                "required for a cross-tenant rule (and whenever its "
                "target instance, account or username changes)",
            )
    err.raise_if_any()

    tns = _effective_target_namespace(spec)
    with database.transaction(settings) as conn:
        source = instances_q.get_instance(conn, src["instance_id"], tenant_id)
        if source is None:
            err.add("source.instance_id", "no instance with this id in your account")
        owner = tgt["account_id"] if cross else tenant_id
        target = instances_q.get_instance(conn, tgt["instance_id"], owner)
        if target is None:
            err.add(
                "target.instance_id",
                "no instance with this id in that account"
                if cross
                else "no instance with this id in your account",
            )
        if (
            source is not None
            and target is not None
            and not cross
            and (target["id"] == source["id"] or target["url"] == source["url"])
            and tns == src["namespace"]
        ):
            err.add(
                "target.namespace",
                "source and target are the same repository set (same registry and namespace)",
            )
        err.raise_if_any()
        if q.rule_name_taken(
            conn, source["id"], spec["name"], except_id=existing["id"] if existing else None
        ):
            raise Conflict(f"a rule named {spec['name']!r} already exists for this source instance")

    password_enc = None
    if cross:
        box = SecretBox(settings)
        if password is None:
            password = box.decrypt(keep_password)
        changed = (
            existing is None
            or not existing["cross_tenant"]
            or any(
                (
                    str(existing["target_instance_id"]) != str(tgt["instance_id"]),
                    str(existing["target_account_id"]) != str(tgt["account_id"]),
                    existing["target_username"] != tgt["username"],
                    tgt.get("password") is not None,
                    (existing["target_namespace"] or existing["source_namespace"]) != tns,
                )
            )
        )
        if changed:
            try:
                check_registry(
                    target["url"],
                    tgt["username"],
                    password,
                    target["verify_tls"],
                    settings,
                    push_repository=f"{tns}/{PERMISSION_CHECK_REPOSITORY}",
                )
            except (NetworkPolicyError, RegistryError) as exc:
                raise _credential_failure(exc, target, cross) from None
        password_enc = box.encrypt(password) if tgt.get("password") is not None else keep_password

    schedule = rules.check_schedule(spec["schedule"]) if spec.get("schedule") else None
    timezone = rules.check_timezone(spec.get("schedule_timezone") or "UTC")
    next_run_at = None
    if schedule is not None:
        unchanged = (
            existing is not None
            and existing["schedule"] == schedule
            and existing["schedule_timezone"] == timezone
        )
        next_run_at = (
            existing["next_run_at"]
            if unchanged and existing["next_run_at"]
            else rules.next_run(schedule, dt.datetime.now(dt.UTC), timezone)
        )
    return {
        "name": spec["name"],
        "description": spec.get("description") or "",
        "source_instance_id": src["instance_id"],
        "source_namespace": src["namespace"],
        **{f: src.get(f) or "" for f in FILTER_FIELDS},
        "filter_syntax": src.get("filter_syntax") or "regex",
        "resource_types": rules.check_resource_types(spec["resource_types"]),
        "target_instance_id": tgt["instance_id"],
        "target_namespace": tgt.get("namespace") or "",
        "cross_tenant": cross,
        "target_account_id": tgt["account_id"] if cross else None,
        "target_username": tgt["username"] if cross else None,
        "target_password_enc": password_enc,
        "override": bool(spec.get("override", False)),
        "enabled": bool(spec.get("enabled", True)),
        "schedule": schedule,
        "schedule_timezone": timezone,
        "next_run_at": next_run_at,
    }


def create_rule(settings: Settings, tenant_id: UUID, spec: Mapping[str, Any]) -> dict:
    """Validate and store a new rule of the tenant; the stored row."""
    values = _prepare(settings, tenant_id, spec)
    with database.transaction(settings) as conn:
        return q.insert_rule(conn, tenant_id, values)


def get_rule(settings: Settings, tenant_id: UUID, rule_id: UUID) -> dict:
    """The tenant's rule row; NotFound when it does not exist for this tenant."""
    with database.transaction(settings) as conn:
        row = q.get_rule(conn, rule_id, tenant_id)
    if row is None:
        raise NotFound("rule not found")
    return row


def list_rules(
    settings: Settings, tenant_id: UUID, *, source_instance_id: UUID | None, limit: int, offset: int
) -> tuple[list[dict], int]:
    """One page of the tenant's rules, optionally of one source instance, and the total."""
    with database.transaction(settings) as conn:
        return q.list_rules(
            conn, tenant_id, source_instance_id=source_instance_id, limit=limit, offset=offset
        )


def replace_rule(
    settings: Settings, tenant_id: UUID, rule_id: UUID, spec: Mapping[str, Any]
) -> dict:
    """Replace the whole rule (PUT); an omitted cross-tenant password is kept when the target
    instance, account and username are unchanged."""
    existing = get_rule(settings, tenant_id, rule_id)
    return _store(settings, tenant_id, rule_id, _prepare(settings, tenant_id, spec, existing))


def patch_rule(
    settings: Settings, tenant_id: UUID, rule_id: UUID, patch: Mapping[str, Any]
) -> dict:
    """Change some fields (PATCH), validated as a whole rule after merging."""
    existing = get_rule(settings, tenant_id, rule_id)
    spec = merge_patch(spec_from_row(existing), patch)
    return _store(settings, tenant_id, rule_id, _prepare(settings, tenant_id, spec, existing))


def _store(settings: Settings, tenant_id: UUID, rule_id: UUID, values: dict[str, Any]) -> dict:
    with database.transaction(settings) as conn:
        row = q.update_rule(conn, rule_id, tenant_id, values)
    if row is None:
        raise NotFound("rule not found")
    return row


def set_enabled(settings: Settings, tenant_id: UUID, rule_id: UUID, enabled: bool) -> dict:
    """Enable or disable the rule; enabling restarts its schedule from now."""
    with database.transaction(settings) as conn:
        row = q.get_rule(conn, rule_id, tenant_id)
        if row is None:
            raise NotFound("rule not found")
        next_run_at = row["next_run_at"]
        if enabled and not row["enabled"] and row["schedule"]:
            next_run_at = rules.next_run(
                row["schedule"], dt.datetime.now(dt.UTC), row["schedule_timezone"]
            )
        return q.set_rule_enabled(conn, rule_id, tenant_id, enabled, next_run_at)


def delete_rule(settings: Settings, tenant_id: UUID, rule_id: UUID) -> None:
    """Stop the rule's running tasks, then delete it; NotFound when not the tenant's.

    The task log stays (tasks keep their figures, with no rule).
    """
    stopped: list[UUID] = []
    with database.transaction(settings) as conn:
        if q.get_rule(conn, rule_id, tenant_id) is not None:
            stopped = stop_rule_tasks(conn, rule_id)
        if not q.delete_rule(conn, rule_id, tenant_id):
            raise NotFound("rule not found")
    with database.transaction(settings) as conn:
        for task_uuid in stopped:
            finalize_task(conn, task_uuid)
