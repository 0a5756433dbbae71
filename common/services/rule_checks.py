"""Whole-rule validation: from the API's nested shape to the row values to store.

Every field error is collected before anything touches the database, then
references are resolved inside the caller's tenant, and a cross-tenant rule's
credentials are proven against the target registry (login and push on the
target namespace). The order of these checks is the order of the messages a
client sees, so it is kept as it is.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Mapping
from typing import Any, TypeVar
from urllib.parse import urlsplit
from uuid import UUID

from common import db as database
from common.db import instances as instances_q
from common.db import rules as q
from common.domain import rules
from common.domain import semver as versions
from common.domain.models import Instance, Rule
from common.domain.vocab import FilterSyntax
from common.errors import (
    AuthError,
    Conflict,
    NetworkPolicyError,
    RegistryError,
    RegistryUnavailable,
    ValidationError,
)
from common.security.crypto import SecretBox
from common.settings import Settings
from common.sync.credentials import PERMISSION_CHECK_REPOSITORY, check_registry

FILTER_FIELDS = ("repository_filter", "tag_filter", "repository_exclude", "tag_exclude")
CROSS_TENANT_FIELDS = ("account_id", "username", "password")
T = TypeVar("T")


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
    syntax = src.get("filter_syntax") or FilterSyntax.REGEX
    for f in FILTER_FIELDS:
        err.run(rules.compile_pattern, src.get(f) or "", syntax, f"source.{f}")
    err.run(versions.compile_constraint, src.get("semver") or "", "source.semver")
    err.run(versions.check_latest, src.get("latest"), "source.latest")
    err.run(rules.check_resource_types, spec["resource_types"])
    err.run(rules.check_namespace, tgt.get("namespace") or "", "target.namespace", allow_empty=True)
    if spec.get("schedule") is not None:
        err.run(rules.check_schedule, spec["schedule"])
    if tgt.get("cross_tenant"):
        for f in ("account_id", "username"):
            if tgt.get(f) is None:
                err.add(f"target.{f}", "required for a cross-tenant rule")
        if tgt.get("account_id") is not None and tgt["account_id"] == tenant_id:
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


def _same_credentials(existing: Rule | None, tgt: Mapping[str, Any]) -> bool:
    """True when a stored cross-tenant rule has this target instance, account and username."""
    return (
        existing is not None
        and existing.cross_tenant
        and existing.target_instance_id == tgt.get("instance_id")
        and existing.target_account_id == tgt.get("account_id")
        and existing.target_username == tgt.get("username")
    )


def _kept_password(err: _Errors, spec: Mapping[str, Any], existing: Rule | None) -> bytes | None:
    """The stored password a cross-tenant rule given without one keeps; an error if none may."""
    tgt = spec["target"]
    if not tgt.get("cross_tenant") or tgt.get("password") is not None:
        return None
    if existing is not None and _same_credentials(existing, tgt):
        return existing.target_password_enc
    err.add(
        "target.password",
        "required for a cross-tenant rule (and whenever its "
        "target instance, account or username changes)",
    )
    return None


def _resolve_instances(
    settings: Settings,
    tenant_id: UUID,
    spec: Mapping[str, Any],
    existing: Rule | None,
    err: _Errors,
) -> Instance:
    """The target instance, once the source is the tenant's, the target is its owner's,
    they are not the same repository set, and the rule's name is free on the source."""
    src, tgt = spec["source"], spec["target"]
    cross = bool(tgt.get("cross_tenant"))
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
            and (target.id == source.id or target.url == source.url)
            and _effective_target_namespace(spec) == src["namespace"]
        ):
            err.add(
                "target.namespace",
                "source and target are the same repository set (same registry and namespace)",
            )
        err.raise_if_any()
        assert source is not None and target is not None
        if q.rule_name_taken(
            conn, source.id, spec["name"], except_id=existing.id if existing else None
        ):
            raise Conflict(f"a rule named {spec['name']!r} already exists for this source instance")
    return target


def _credential_failure(exc: Exception, target: Instance, cross_tenant: bool) -> ValidationError:
    target_id = target.id
    if isinstance(exc, AuthError):
        reason = str(exc)
        if cross_tenant:
            # The registry's answer, but not the other account's registry address.
            reason = reason.replace(urlsplit(target.url).netloc, "the target registry")
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


def _cross_tenant_password(
    settings: Settings,
    spec: Mapping[str, Any],
    existing: Rule | None,
    target: Instance,
    keep_password: bytes | None,
) -> tuple[bytes, bool]:
    """The encrypted password of a cross-tenant rule, proven against the target registry
    whenever the target, account, username, password or namespace changes; and whether it
    was checked now."""
    tgt = spec["target"]
    tns = _effective_target_namespace(spec)
    box = SecretBox(settings)
    password = tgt.get("password")
    if password is None:
        assert keep_password is not None
        password = box.decrypt(keep_password)
    changed = (
        existing is None
        or not existing.cross_tenant
        or not _same_credentials(existing, tgt)
        or tgt.get("password") is not None
        or existing.effective_target_namespace != tns
    )
    if changed:
        try:
            check_registry(
                target.url,
                tgt["username"],
                password,
                target.verify_tls,
                settings,
                push_repository=f"{tns}/{PERMISSION_CHECK_REPOSITORY}",
            )
        except (NetworkPolicyError, RegistryError) as exc:
            raise _credential_failure(exc, target, True) from None
    if tgt.get("password") is not None:
        return box.encrypt(password), changed
    assert keep_password is not None
    return keep_password, changed


def _binding(cross: bool, checked: bool, target: Instance, existing: Rule | None) -> dict[str, Any]:
    """Where a cross-tenant password may be used: the URL and TLS setting it was checked
    against. A check lifts a suspension; otherwise binding and suspension stay."""
    if not cross:
        return {"target_bound_url": None, "target_bound_verify_tls": None, "suspended_reason": None}
    if checked or existing is None:
        return {
            "target_bound_url": target.url,
            "target_bound_verify_tls": target.verify_tls,
            "suspended_reason": None,
        }
    return {
        "target_bound_url": existing.target_bound_url,
        "target_bound_verify_tls": existing.target_bound_verify_tls,
        "suspended_reason": existing.suspended_reason,
    }


def _schedule(
    spec: Mapping[str, Any], existing: Rule | None
) -> tuple[str | None, str, dt.datetime | None]:
    """(schedule, time zone, next run): an unchanged schedule keeps its next run."""
    schedule = rules.check_schedule(spec["schedule"]) if spec.get("schedule") else None
    timezone = rules.check_timezone(spec.get("schedule_timezone") or "UTC")
    if schedule is None:
        return None, timezone, None
    if (
        existing is not None
        and existing.schedule == schedule
        and existing.schedule_timezone == timezone
        and existing.next_run_at
    ):
        return schedule, timezone, existing.next_run_at
    return schedule, timezone, rules.next_run(schedule, dt.datetime.now(dt.UTC), timezone)


def prepare(
    settings: Settings,
    tenant_id: UUID,
    spec: Mapping[str, Any],
    existing: Rule | None = None,
) -> dict[str, Any]:
    """Validate a whole rule and return the row values to store; raises ValidationError,
    Conflict or a 422 with the registry's answer."""
    err = _check_fields(spec, tenant_id)
    keep_password = _kept_password(err, spec, existing)
    err.raise_if_any()
    target = _resolve_instances(settings, tenant_id, spec, existing, err)
    src, tgt = spec["source"], spec["target"]
    cross = bool(tgt.get("cross_tenant"))
    password_enc, checked = (
        _cross_tenant_password(settings, spec, existing, target, keep_password)
        if cross
        else (None, False)
    )
    schedule, timezone, next_run_at = _schedule(spec, existing)
    return {
        "name": spec["name"],
        "description": spec.get("description") or "",
        "source_instance_id": src["instance_id"],
        "source_namespace": src["namespace"],
        **{f: src.get(f) or "" for f in FILTER_FIELDS},
        "filter_syntax": src.get("filter_syntax") or FilterSyntax.REGEX,
        "semver": (src.get("semver") or "").strip(),
        "latest": src.get("latest"),
        "include_referrers": bool(spec.get("include_referrers", True)),
        "deletion": bool(spec.get("deletion", False)),
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
        **_binding(cross, checked, target, existing),
    }
