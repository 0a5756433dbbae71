"""Schemas of /api/v1/rules.

One schema serves POST, PUT and every response (read-only fields are ignored
in requests, so a GET body can be edited and sent back); PATCH has its own
classes where nothing is required and nothing defaults.
"""

from __future__ import annotations

from typing import Any

from marshmallow import EXCLUDE, Schema, fields
from marshmallow.validate import Length, OneOf, Range

from api.schemas.base import Bool, ReadOnlyTolerant, Text
from api.schemas.base import default_unless_partial as _d
from api.schemas.rule_options import option_fields
from common.domain.models import Rule
from common.domain.operations import Health, health_label
from common.domain.rules import MAX_NAMESPACE_LENGTH, MAX_PATTERN_LENGTH, RESOURCE_TYPES, SYNTAXES
from common.domain.semver import MAX_CONSTRAINT_LENGTH, MAX_LATEST
from common.domain.vocab import FilterSyntax
from common.services.instances import MAX_PASSWORD, MAX_USERNAME

FILTER_HELP = (
    "Matches the WHOLE name (like Python's re.fullmatch, anchored at both ends): `v.*` "
    "selects `v1.0`, while `^v` or `v` match no tag `v1.0`. Empty selects everything. "
    "When a preview selects nothing, its X-Ferry-Preview-Explanation header names the "
    "filter that excluded what. In `filter_syntax` (regex: RE2 syntax, matched "
    "in linear time, so no backreferences or lookarounds; glob: `*` within a level, `**` "
    "across levels, `?`, `[abc]`, `{a,b}`). An invalid pattern is refused with the "
    "position of the error (counted from 0)."
)
# The product's warning on its Deletion switch, shown with the option.

# The same-tenant target of the examples, as sent and as shown.
_EXAMPLE_TARGET = {
    "instance_id": "0b6f8e52-3c1d-4f3e-8a55-7f0e2d9c6b21",
    "namespace": "",
    "cross_tenant": False,
    "account_id": None,
    "username": None,
}
EXAMPLE_RULE_INPUT = {
    "name": "sync-prod",
    "description": "Production images to the Guangzhou registry",
    "source": {
        "instance_id": "6f1c1c1e-9f0a-4a57-9d0e-2f5b8d1f4a10",
        "namespace": "project",
        "repository_filter": "",
        "tag_filter": "v[0-9]+\\..*",
        "repository_exclude": "",
        "tag_exclude": "",
        "filter_syntax": "regex",
        "semver": "",
        "latest": None,
    },
    "resource_types": ["image", "chart"],
    "target": {**_EXAMPLE_TARGET, "password": None},
    "override": False,
    "include_referrers": True,
    "deletion": False,
    "enabled": True,
    "schedule": None,
    "schedule_timezone": "UTC",
}
EXAMPLE_RULE = {
    "id": "c3d5e1a4-1b2c-4d5e-8f90-123456789abc",
    "number": 7,
    **EXAMPLE_RULE_INPUT,
    "target": {**_EXAMPLE_TARGET, "has_credentials": False},
    "next_run_at": None,
    "created_at": "2024-05-01T10:00:00+00:00",
    "updated_at": "2024-05-01T10:00:00+00:00",
}
EXAMPLE_CROSS_TENANT_TARGET = {
    "instance_id": "0b6f8e52-3c1d-4f3e-8a55-7f0e2d9c6b21",
    "namespace": "team",
    "cross_tenant": True,
    "account_id": "9a8b7c6d-5e4f-4a3b-2c1d-0e9f8a7b6c5d",
    "username": "robot-push",
    "password": "t0ken",
}


def _instance_id(partial: bool, description: str, example: str) -> fields.Field:
    """The instance a rule's source or target names; required unless patching."""
    return fields.UUID(
        required=not partial, metadata={"description": description, "example": example}
    )


def _source_fields(partial: bool) -> dict[str, fields.Field]:
    def pattern(example: str, what: str) -> fields.Field:
        return Text(
            validate=Length(max=MAX_PATTERN_LENGTH),
            **_d(partial, ""),
            metadata={"description": f"{what}. {FILTER_HELP}", "example": example},
        )

    return {
        "instance_id": _instance_id(
            partial, "An instance of your account.", "6f1c1c1e-9f0a-4a57-9d0e-2f5b8d1f4a10"
        ),
        "namespace": Text(
            required=not partial,
            validate=Length(1, MAX_NAMESPACE_LENGTH),
            metadata={
                "description": "The namespace (first path level) to copy "
                "from; required, never 'all'.",
                "example": "project",
            },
        ),
        "repository_filter": pattern(
            "sub1/.*", "Repository path below the namespace (`sub1/sub2` for `project/sub1/sub2`)"
        ),
        "tag_filter": pattern("v[0-9]+\\..*", "Tag"),
        "repository_exclude": pattern("tmp/.*", "Repositories to leave out, same syntax"),
        "tag_exclude": pattern(".*-rc[0-9]*", "Tags to leave out, same syntax"),
        "filter_syntax": Text(
            validate=OneOf(SYNTAXES),
            **_d(partial, FilterSyntax.REGEX),
            metadata={"example": "regex"},
        ),
        "semver": Text(
            validate=Length(max=MAX_CONSTRAINT_LENGTH),
            **_d(partial, ""),
            metadata={
                "description": "Version constraint (npm ranges: `>=1.2 <2`, `^1.4`, `1.x`, "
                "`||` for alternatives) on tags that are semantic versions, with an optional "
                "leading `v`; other tags are then not selected. Empty: no constraint.",
                "example": ">=1.2 <2",
            },
        ),
        "latest": fields.Integer(
            strict=True,
            allow_none=True,
            validate=Range(1, MAX_LATEST),
            **_d(partial, None),
            metadata={
                "description": "Keep only the N newest selected tags of each repository: by "
                "version when all of them are semantic versions, otherwise by the image's "
                "`created` time. Null: all. With `deletion`, tags that fall out of the "
                "newest N are not deleted unless the source deleted them.",
                "example": None,
            },
        ),
    }


def _target_fields(partial: bool) -> dict[str, fields.Field]:
    return {
        "instance_id": _instance_id(
            partial,
            "Your instance, or with cross_tenant the other account's instance.",
            "0b6f8e52-3c1d-4f3e-8a55-7f0e2d9c6b21",
        ),
        "namespace": Text(
            validate=Length(max=MAX_NAMESPACE_LENGTH),
            **_d(partial, ""),
            metadata={
                "description": "Empty: the source namespace's name. "
                "project/sub1/sub2 → <namespace>/sub1/sub2.",
                "example": "team",
            },
        ),
        "cross_tenant": Bool(
            **_d(partial, False),
            metadata={
                "description": "The target belongs to another account; account_id, username and "
                "password are then required and checked against it (login and "
                "push on the target namespace).",
                "example": False,
            },
        ),
        "account_id": fields.UUID(
            allow_none=True,
            **_d(partial, None),
            metadata={
                "description": "The other account's id (cross_tenant only).",
                "example": None,
            },
        ),
        "username": Text(
            allow_none=True,
            validate=Length(1, MAX_USERNAME),
            **_d(partial, None),
            metadata={"description": "Target registry user (cross_tenant only).", "example": None},
        ),
        "password": Text(
            allow_none=True,
            load_only=True,
            validate=Length(1, MAX_PASSWORD),
            **_d(partial, None),
            metadata={
                "description": "Target registry password (cross_tenant only); "
                "stored encrypted, never returned. Omitted on "
                "PUT/PATCH: the stored one is kept while target "
                "instance, account and username are unchanged.",
                "example": None,
            },
        ),
        "has_credentials": fields.Boolean(
            dump_only=True,
            metadata={"description": "True when the rule stores its own target credentials."},
        ),
    }


def _rule_fields(
    partial: bool, source: type[Schema], target: type[Schema]
) -> dict[str, fields.Field]:
    return {
        "name": Text(
            required=not partial,
            validate=Length(1, 64),
            metadata={
                "description": "Lowercase letters, digits and -._, starting with a letter or "
                "digit, at most 64 characters; unique per source instance.",
                "example": "sync-prod",
            },
        ),
        "description": Text(
            validate=Length(max=1024), **_d(partial, ""), metadata={"example": "Production images"}
        ),
        "source": fields.Nested(source, required=not partial),
        "resource_types": fields.List(
            Text(validate=OneOf(RESOURCE_TYPES)),
            validate=Length(min=1),
            **_d(partial, lambda: list(RESOURCE_TYPES)),
            metadata={
                "description": "Non-empty subset of image (images and multi-arch "
                "indexes) and chart (Helm charts).",
                "example": ["image", "chart"],
            },
        ),
        "target": fields.Nested(target, required=not partial),
        "override": Bool(
            **_d(partial, False),
            metadata={
                "description": "Overwrite a target tag that points elsewhere.",
                "example": False,
            },
        ),
        **option_fields(partial),
        "enabled": Bool(**_d(partial, True), metadata={"example": True}),
        "schedule": Text(
            allow_none=True,
            validate=Length(max=256),
            **_d(partial, None),
            metadata={
                "description": "5-field cron expression, or null; evaluated in schedule_timezone.",
                "example": "0 3 * * *",
            },
        ),
        "schedule_timezone": Text(
            validate=Length(1, 64),
            **_d(partial, "UTC"),
            metadata={"description": "IANA time zone of the schedule.", "example": "Europe/Paris"},
        ),
    }


def _schema(
    name: str, doc: str, declared: dict[str, Any], read_only: frozenset[str] = frozenset()
) -> type[ReadOnlyTolerant]:
    """A schema class built from field factories, so full and PATCH variants share them."""
    attrs = {"__doc__": doc, "__module__": __name__, "READ_ONLY": read_only, **declared}
    return type(name, (ReadOnlyTolerant,), attrs)


_RULE_READ_ONLY = frozenset(
    {"id", "number", "next_run_at", "created_at", "updated_at", "health", "health_detail"}
)


class RuleHealthSchema(Schema):
    """A rule's health: `ok`; `degraded` (the last task failed or partly succeeded, or the
    webhook went silent: it still copies); `broken` (credentials refused, registry
    unreachable, blocked or suspended: it cannot copy)."""

    state = fields.String(validate=OneOf(("ok", "degraded", "broken")), metadata={"example": "ok"})
    reason = fields.String(metadata={"example": ""})
    since = fields.DateTime(
        allow_none=True, metadata={"description": "since when the state holds (null: never "
                                   "checked and ok)"}
    )  # fmt: skip
    checked_at = fields.DateTime(
        allow_none=True, metadata={"description": "the last check (null: never checked)"}
    )


_TARGET_READ_ONLY = frozenset({"has_credentials"})

RuleSourceSchema = _schema(
    "RuleSourceSchema",
    "Where a rule copies from, and which repositories and tags.",
    _source_fields(partial=False),
)
RuleTargetSchema = _schema(
    "RuleTargetSchema", "Where a rule copies to.", _target_fields(partial=False), _TARGET_READ_ONLY
)
RuleSchema = _schema(
    "RuleSchema",
    "A replication rule.",
    {
        "id": fields.UUID(dump_only=True),
        "number": fields.Integer(
            dump_only=True,
            metadata={
                "description": "Per-account number, given at creation and never reused "
                "(the policy ID of the TCR-compatible API).",
                "example": 7,
            },
        ),
        **_rule_fields(False, RuleSourceSchema, RuleTargetSchema),
        "next_run_at": fields.DateTime(
            dump_only=True,
            allow_none=True,
            metadata={"description": "When the schedule fires next (null without a schedule)."},
        ),
        "created_at": fields.DateTime(dump_only=True),
        "updated_at": fields.DateTime(dump_only=True),
        "health": fields.String(
            dump_only=True,
            metadata={
                "description": "`ok`, `degraded` or `broken` (see health_detail), or, for a "
                "rule that does not run, `blocked by the target account` or why it is "
                "suspended (target instance deleted, or its URL or TLS setting changed: "
                "re-enter the credentials).",
                "example": "ok",
            },
        ),
        "health_detail": fields.Nested(RuleHealthSchema, dump_only=True),
    },
    _RULE_READ_ONLY,
)

RuleSourcePatchSchema = _schema(
    "RuleSourcePatchSchema", "Source fields to change.", _source_fields(partial=True)
)
RuleTargetPatchSchema = _schema(
    "RuleTargetPatchSchema",
    "Target fields to change.",
    _target_fields(partial=True),
    _TARGET_READ_ONLY,
)
RulePatchSchema = _schema(
    "RulePatchSchema",
    "Fields to change; absent fields are kept, then the whole rule is validated again.",
    _rule_fields(True, RuleSourcePatchSchema, RuleTargetPatchSchema),
    _RULE_READ_ONLY,
)


class RuleQuerySchema(Schema):
    """Filters of the rule list."""

    class Meta:
        unknown = EXCLUDE  # page and page_size belong to the pagination parameters

    source_instance_id = fields.UUID(
        load_default=None, metadata={"description": "Only rules whose source is this instance."}
    )


def present_rule(row: Rule, health: Health | None = None) -> dict:
    """The API view of a rule row: nested, and without the password. Without ``health``
    it is read (lists pass each rule's, read at once)."""
    from api.auth import app_settings
    from common.services.rule_health import health_of_rules
    from common.services.rules import spec_from_row

    if health is None:
        health = health_of_rules(app_settings(), [row])[row.id]
    view = spec_from_row(row)
    keys = ("id", "number", "next_run_at", "created_at", "updated_at")
    view.update({k: getattr(row, k) for k in keys})
    view["health"] = health_label(row, health)
    view["health_detail"] = health
    return view
