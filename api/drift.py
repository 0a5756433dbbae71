"""/api/v1/rules/{id}/drift, /api/v1/drift/{id}, /api/v1/rules/{id}/check: drift reports
and health checks of a rule. Both run in a worker; nothing is written to a registry."""

from __future__ import annotations

import datetime as dt
from uuid import UUID

from flask.views import MethodView
from marshmallow import Schema, fields, validate

from api.auth import TenantBlueprint, app_settings, on_rule, require_tenant, requires
from api.errors import ErrorSchema
from api.schemas.rules import RuleHealthSchema
from common.domain.operations import DriftKind, DriftStatus, health_label
from common.domain.permissions import Action
from common.services import drift as service
from common.services import rule_health
from worker.dispatch import enqueue_drift, enqueue_health_check

blp = TenantBlueprint(
    "drift",
    __name__,
    url_prefix="/api/v1",
    description="Drift reports and health checks of your rules.",
)
KINDS = tuple(DriftKind)
EXAMPLE_CHECK = {
    "rule_id": "7d3c2b1a-1111-4a57-9a55-3b1f3c1d2e4f",
    "requested_at": "2026-12-03T09:00:00+00:00",
    "health": "ok",
    "health_detail": {"state": "ok", "reason": "", "since": None, "checked_at": None},
}


class DriftStartedSchema(Schema):
    id = fields.UUID(metadata={"description": "the drift report's id: GET /api/v1/drift/{id}"})
    status = fields.String(metadata={"example": "Pending"})


class DriftEntrySchema(Schema):
    """One tag of a drift list; the source fields are null for `extra`."""

    source_repository = fields.String(allow_none=True, metadata={"example": "project/app"})
    source_tag = fields.String(allow_none=True, metadata={"example": "v1"})
    target_repository = fields.String(metadata={"example": "mirror/app"})
    target_tag = fields.String(metadata={"example": "v1"})
    source_digest = fields.String(allow_none=True)
    target_digest = fields.String(allow_none=True)
    override_changes = fields.Boolean(
        allow_none=True,
        metadata={"description": "`differs` only: whether a sync would replace the target tag "
                  "(the rule's override is on)"},
    )  # fmt: skip


class DriftListSchema(Schema):
    total = fields.Integer(metadata={"example": 3})
    items = fields.List(fields.Nested(DriftEntrySchema))


class DriftCountsSchema(Schema):
    missing = fields.Integer(metadata={"example": 2})
    differs = fields.Integer(metadata={"example": 1})
    extra = fields.Integer(metadata={"example": 0})
    in_sync = fields.Integer(metadata={"example": 40})


class DriftReportSchema(Schema):
    """What the rule selects on the source compared with the target, under the mapped names."""

    id = fields.UUID()
    rule_id = fields.UUID(allow_none=True)
    status = fields.String(
        validate=validate.OneOf(tuple(DriftStatus)), metadata={"example": "Succeeded"}
    )
    message = fields.String(metadata={"description": "why a Failed report failed"})
    created_at = fields.DateTime()
    started_at = fields.DateTime(allow_none=True)
    finished_at = fields.DateTime(allow_none=True)
    counts = fields.Nested(DriftCountsSchema)
    missing = fields.Nested(DriftListSchema)
    differs = fields.Nested(DriftListSchema)
    extra = fields.Nested(DriftListSchema)
    in_sync = fields.Nested(DriftListSchema)


class DriftQuerySchema(Schema):
    page = fields.Integer(load_default=1, validate=validate.Range(1, 100_000))
    page_size = fields.Integer(load_default=50, validate=validate.Range(1, 500))
    kind = fields.String(
        load_default=None,
        validate=validate.OneOf(KINDS),
        metadata={"description": "only this list (the others are left out)"},
    )


class CheckStartedSchema(Schema):
    rule_id = fields.UUID()
    requested_at = fields.DateTime(
        metadata={"description": "the check is done once health_detail.checked_at is later"}
    )
    health = fields.String(metadata={"description": "the rule's health before this check"})
    health_detail = fields.Nested(RuleHealthSchema)


@blp.route("/rules/<uuid:rule_id>/drift")
class StartDrift(MethodView):
    @requires(Action.RULE_CHECK)
    @blp.response(
        202, DriftStartedSchema, example={"id": "0b5f7c2e-4d43-4f7e-9d55-1c2b3a4d5e6f",
                                          "status": "Pending"}
    )  # fmt: skip
    @blp.alt_response(404, schema=ErrorSchema, description="No such rule.")
    def post(self, rule_id: UUID):
        """Start a drift report of the rule (a worker lists both sides; nothing is written)."""
        on_rule(Action.RULE_CHECK, rule_id)
        report = service.start_drift(app_settings(), require_tenant(), rule_id)
        enqueue_drift(report.id)  # after the commit: the worker must find the row
        return {"id": report.id, "status": report.status}


@blp.route("/drift/<uuid:report_id>")
class Drift(MethodView):
    @requires(Action.RULE_READ)
    @blp.arguments(DriftQuerySchema, location="query")
    @blp.response(200, DriftReportSchema)
    @blp.alt_response(404, schema=ErrorSchema, description="No such drift report.")
    def get(self, query, report_id: UUID):
        """A drift report: counts, and page `page` of each list (missing, differs, extra,
        in_sync), each with its total."""
        size = query["page_size"]
        kinds = (DriftKind(query["kind"]),) if query["kind"] else KINDS
        page = service.get_drift(
            app_settings(),
            require_tenant(),
            report_id,
            limit=size,
            offset=(query["page"] - 1) * size,
            kinds=kinds,
        )
        report = page.report
        if report.rule_id is not None:
            on_rule(Action.RULE_READ, report.rule_id)
        body = {
            **{k: getattr(report, k) for k in ("id", "rule_id", "status", "message")},
            **{k: getattr(report, k) for k in ("created_at", "started_at", "finished_at")},
            "counts": {k.value: getattr(report, k.value) for k in KINDS},
        }
        for kind, (entries, total) in page.lists.items():
            body[kind.value] = {"total": total, "items": entries}
        return body


@blp.route("/rules/<uuid:rule_id>/check")
class CheckRule(MethodView):
    @requires(Action.RULE_CHECK)
    @blp.response(202, CheckStartedSchema, example=EXAMPLE_CHECK)
    @blp.alt_response(404, schema=ErrorSchema, description="No such rule.")
    def post(self, rule_id: UUID):
        """Check the rule's health now (in a worker): the source lists the namespace, the
        target accepts a login and an upload session (cancelled), and, when pushes are
        expected, the webhook was heard lately."""
        rule = on_rule(Action.RULE_CHECK, rule_id)
        settings = app_settings()
        requested = dt.datetime.now(dt.UTC)
        enqueue_health_check(rule_id)
        health = rule_health.health_of_rules(settings, [rule])[rule.id]
        return {
            "rule_id": rule_id,
            "requested_at": requested,
            "health": health_label(rule, health),
            "health_detail": health,
        }
