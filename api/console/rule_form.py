"""The rule form and the API's rule body: one to the other, and errors back to fields.

The body is validated by the API's own RuleSchema and saved by common.services.rules,
so the console holds no rule logic of its own.
"""

from __future__ import annotations

from typing import Any

from api.console.forms import RuleForm
from common.domain.models import Rule

# API field path → form field ("" puts the message at the top of the form).
FIELD_PATHS = {
    "name": "name",
    "description": "description",
    "source.namespace": "source_namespace",
    "source.filter_syntax": "filter_syntax",
    "source.repository_filter": "repository_filter",
    "source.repository_exclude": "repository_exclude",
    "source.tag_filter": "tag_filter",
    "source.tag_exclude": "tag_exclude",
    "source.semver": "semver",
    "source.latest": "latest",
    "source.instance_id": "",
    "resource_types": "resource_types",
    "target.account_id": "account_id",
    "target.username": "username",
    "target.password": "password",
    "target.namespace": "target_namespace",
    "override": "override",
    "include_referrers": "include_referrers",
    "deletion": "deletion",
    "schedule": "schedule",
    "schedule_timezone": "schedule_timezone",
    "enabled": "enabled",
    "_schema": "",
}
SOURCE_FILTERS = ("repository_filter", "repository_exclude", "tag_filter", "tag_exclude")


def paths_for(form: RuleForm) -> dict[str, str]:
    """FIELD_PATHS, with the target instance on the field the cross-tenant switch shows."""
    target = "cross_instance_id" if form.cross_tenant.data else "target_instance_id"
    return {**FIELD_PATHS, "target.instance_id": target, "target": target}


def _text(value: str | None) -> str:
    return (value or "").strip()


def _number(value: str | None) -> int | str | None:
    """A whole number as an int; other text as given, for the API's schema to refuse."""
    text = _text(value)
    return int(text) if text.isdigit() else (text or None)


def body_from(form: RuleForm, source_instance_id: str) -> dict[str, Any]:
    """The API's rule body for what the form holds."""
    cross = bool(form.cross_tenant.data)
    kinds = form.resource_types.data
    target: dict[str, Any] = {
        "instance_id": _text(form.cross_instance_id.data if cross else form.target_instance_id.data)
        or None,
        "namespace": _text(form.target_namespace.data),
        "cross_tenant": cross,
    }
    if cross:
        target["account_id"] = _text(form.account_id.data) or None
        target["username"] = _text(form.username.data) or None
        # Blank on edit: the stored password is kept (the service decides when it may be).
        if form.password.data:
            target["password"] = form.password.data
    return {
        "name": _text(form.name.data),
        "description": form.description.data or "",
        "source": {
            "instance_id": source_instance_id,
            "namespace": _text(form.source_namespace.data),
            "filter_syntax": form.filter_syntax.data,
            **{f: _text(getattr(form, f).data) for f in SOURCE_FILTERS},
            "semver": _text(form.semver.data),
            "latest": _number(form.latest.data),
        },
        "resource_types": ["image", "chart"] if kinds == "both" else [kinds],
        "target": target,
        "override": bool(form.override.data),
        "include_referrers": bool(form.include_referrers.data),
        "deletion": bool(form.deletion.data),
        "enabled": bool(form.enabled.data),
        "schedule": _text(form.schedule.data) or None,
        "schedule_timezone": _text(form.schedule_timezone.data) or "UTC",
    }


def fill(form: RuleForm, row: Rule) -> None:
    """Show a stored rule in the form (never its password)."""
    form.name.data = row.name
    form.description.data = row.description
    form.source_namespace.data = row.source_namespace
    form.filter_syntax.data = row.filter_syntax
    for f in SOURCE_FILTERS:
        getattr(form, f).data = getattr(row, f)
    kinds = set(row.resource_types)
    form.resource_types.data = "both" if len(kinds) > 1 else next(iter(kinds))
    form.cross_tenant.data = row.cross_tenant
    target = str(row.target_instance_id) if row.target_instance_id else ""
    form.target_instance_id.data = "" if row.cross_tenant else target
    form.cross_instance_id.data = target if row.cross_tenant else ""
    form.account_id.data = str(row.target_account_id or "")
    form.username.data = row.target_username or ""
    form.target_namespace.data = row.target_namespace
    form.semver.data = row.semver
    form.latest.data = "" if row.latest is None else str(row.latest)
    form.override.data = row.override
    form.include_referrers.data = row.include_referrers
    form.deletion.data = row.deletion
    form.enabled.data = row.enabled
    form.schedule.data = row.schedule or ""
    form.schedule_timezone.data = row.schedule_timezone
