"""/api/v1/notifications: where Ferry tells people about tasks, health and drift."""

from __future__ import annotations

from uuid import UUID

from flask.views import MethodView
from marshmallow import Schema, fields, validate

from api.auditing import Audit
from api.auth import TenantBlueprint, on_rule, requires
from api.errors import ErrorSchema
from api.views import answers_one, for_tenant, page_of
from common.domain.operations import TaskNotify
from common.domain.permissions import Action
from common.services import notifications as service
from worker.dispatch import enqueue_notify

blp = TenantBlueprint(
    "notifications",
    __name__,
    url_prefix="/api/v1/notifications",
    description="Notifications (apprise URLs) of your account or of one rule. The addresses "
    "are secrets: stored encrypted, never returned (only their schemes).",
)
ON_TASK = tuple(TaskNotify)
EXAMPLE = {
    "id": "6f1c0a52-7d1e-4a57-9a55-3b1f3c1d2e4f",
    "rule_id": None,
    "name": "ops-slack",
    "schemes": ["slack"],
    "on_task": "not_succeeded",
    "on_health": True,
    "on_drift": True,
    "enabled": True,
}


def _fields(partial: bool) -> dict:
    required = not partial
    return {
        "name": fields.String(required=required, validate=validate.Length(1, 100)),
        "rule_id": fields.UUID(
            allow_none=True,
            metadata={"description": "only this rule's events (null: every rule of the account)"},
        ),
        "urls": fields.List(
            fields.String(),
            required=required,
            load_only=True,
            metadata={
                "description": "apprise URLs, e.g. `slack://...`, `msteams://...`, "
                "`mailtos://...`, `json://host/path`; never returned",
                "example": ["json://hooks.example.com/ferry"],
            },
        ),
        "on_task": fields.String(
            validate=validate.OneOf(ON_TASK),
            metadata={"description": "which finished tasks to announce", "example": "failed_only"},
        ),
        "on_health": fields.Boolean(metadata={"description": "announce health changes"}),
        "on_drift": fields.Boolean(metadata={"description": "announce drift found"}),
        "enabled": fields.Boolean(),
    }


class NotificationSchema(Schema):
    id = fields.UUID(dump_only=True)
    schemes = fields.List(
        fields.String(), dump_only=True, metadata={"description": "what the addresses are"}
    )
    created_at = fields.DateTime(dump_only=True)
    updated_at = fields.DateTime(dump_only=True)
    locals().update(_fields(partial=False))


class NotificationPatchSchema(Schema):
    locals().update(_fields(partial=True))


class NotificationQuerySchema(Schema):
    rule_id = fields.UUID(load_default=None, metadata={"description": "only this rule's"})


class DeliverySchema(Schema):
    id = fields.Integer()
    event = fields.String(metadata={"example": "task_finished"})
    rule_id = fields.UUID(allow_none=True)
    title = fields.String()
    body = fields.String()
    status = fields.String(metadata={"example": "sent"})
    attempts = fields.Integer()
    last_error = fields.String()
    created_at = fields.DateTime()
    updated_at = fields.DateTime()


class TestSentSchema(Schema):
    delivery_id = fields.Integer()


def _on_rule(rule_id: UUID | None) -> None:
    """A rule's notification is also an action on the rule: the caller's grants must reach it."""
    if rule_id is not None:
        on_rule(Action.RULE_UPDATE, rule_id)


@blp.route("")
class Notifications(MethodView):
    @requires(Action.NOTIFICATION_READ)
    @blp.arguments(NotificationQuerySchema, location="query")
    @blp.response(200, NotificationSchema(many=True), example=[EXAMPLE])
    @blp.paginate(page_size=50, max_page_size=200)
    def get(self, query, pagination_parameters):
        """List your notifications (optionally one rule's) by name."""
        return page_of(service.list_notifications, pagination_parameters, **query)

    @requires(Action.NOTIFICATION_MANAGE, Audit("notification", "create", None, ("name",)))
    @blp.arguments(NotificationSchema)
    @blp.response(201, NotificationSchema, example=EXAMPLE)
    @blp.alt_response(422, schema=ErrorSchema, description="An address apprise cannot use.")
    @blp.alt_response(409, schema=ErrorSchema, description="The name is taken.")
    def post(self, spec):
        """Create a notification for the account, or for one rule with `rule_id`."""
        _on_rule(spec.get("rule_id"))
        return for_tenant(service.create_notification, spec)


@blp.route("/<uuid:notification_id>")
class Notification(MethodView):
    @requires(Action.NOTIFICATION_READ)
    @answers_one(blp, NotificationSchema, EXAMPLE)
    def get(self, notification_id: UUID):
        """Show one notification (its addresses' schemes only)."""
        return for_tenant(service.get_notification, notification_id)

    @requires(Action.NOTIFICATION_MANAGE, Audit("notification", "update", "notification_id"))
    @blp.arguments(NotificationPatchSchema, example={"on_task": "failed_only"})
    @answers_one(blp, NotificationSchema, EXAMPLE)
    def patch(self, patch, notification_id: UUID):
        """Change some fields; `urls` replaces every address."""
        current = for_tenant(service.get_notification, notification_id)
        _on_rule(current.rule_id)
        _on_rule(patch.get("rule_id"))
        return for_tenant(service.update_notification, notification_id, patch)

    @requires(Action.NOTIFICATION_MANAGE, Audit("notification", "delete", "notification_id"))
    @blp.response(204)
    @blp.alt_response(404, response="NOT_FOUND")
    def delete(self, notification_id: UUID):
        """Delete a notification and its delivery log."""
        _on_rule(for_tenant(service.get_notification, notification_id).rule_id)
        for_tenant(service.delete_notification, notification_id)


@blp.route("/<uuid:notification_id>/deliveries")
class Deliveries(MethodView):
    @requires(Action.NOTIFICATION_READ)
    @blp.response(200, DeliverySchema(many=True))
    @blp.alt_response(404, response="NOT_FOUND")
    @blp.paginate(page_size=50, max_page_size=200)
    def get(self, pagination_parameters, notification_id: UUID):
        """What was sent, newest first: event, attempts, and the last error (addresses
        masked)."""
        return page_of(service.list_deliveries, pagination_parameters, notification_id)


@blp.route("/<uuid:notification_id>/test")
class TestNotification(MethodView):
    @requires(Action.NOTIFICATION_MANAGE)
    @blp.response(202, TestSentSchema)
    @blp.alt_response(404, response="NOT_FOUND")
    def post(self, notification_id: UUID):
        """Send a test message; its outcome shows in the delivery log."""
        delivery = for_tenant(service.send_test, notification_id)
        enqueue_notify(delivery)
        return {"delivery_id": delivery}
