"""/api/v1/incoming-rules: other accounts' rules that write into your instances."""

from __future__ import annotations

from uuid import UUID

from flask.views import MethodView
from marshmallow import Schema, fields

from api.auditing import Audit
from api.auth import (
    TenantBlueprint,
    app_settings,
    authorize_instances,
    require_tenant,
    requires,
)
from api.views import answers_one, granted_page_of
from common.domain.permissions import Action
from common.services import incoming

blp = TenantBlueprint(
    "incoming-rules",
    __name__,
    url_prefix="/api/v1/incoming-rules",
    description="Rules of other accounts writing into your instances; block them.",
)


class IncomingRuleSchema(Schema):
    """A rule of another account targeting one of your instances (no source address or
    credentials)."""

    id = fields.UUID()
    source_account_id = fields.UUID()
    name = fields.String(metadata={"example": "charts-to-partner"})
    target_instance_id = fields.UUID()
    target_namespace = fields.String(metadata={"example": "team"})
    enabled = fields.Boolean()
    blocked = fields.Boolean()
    last_task_status = fields.String(allow_none=True, metadata={"example": "Succeeded"})
    last_task_at = fields.DateTime(allow_none=True)


def _on(action: Action, rule_id: UUID) -> dict:
    row = incoming.get_incoming(app_settings(), require_tenant(), rule_id)
    authorize_instances(action, f"incoming rule {rule_id}", [row["target_instance_id"]])
    return row


def _set_blocked(rule_id: UUID, blocked: bool) -> dict:
    """The rule after blocking or unblocking it, once the caller may."""
    _on(Action.INCOMING_BLOCK, rule_id)
    return incoming.set_blocked(app_settings(), require_tenant(), rule_id, blocked)


@blp.route("")
class IncomingRules(MethodView):
    @requires(Action.INCOMING_READ)
    @blp.response(200, IncomingRuleSchema(many=True))
    @blp.paginate(page_size=50, max_page_size=200)
    def get(self, pagination_parameters):
        """Other accounts' rules writing into your instances, by name."""
        return granted_page_of(incoming.list_incoming, pagination_parameters)


@blp.route("/<uuid:rule_id>/block")
class Block(MethodView):
    @requires(Action.INCOMING_BLOCK, Audit("incoming-rule", "block", "rule_id"))
    @answers_one(blp, IncomingRuleSchema, None)
    def post(self, rule_id: UUID):
        """Block the rule: its tasks end Failed with "blocked by the target account"."""
        return _set_blocked(rule_id, True)


@blp.route("/<uuid:rule_id>/unblock")
class Unblock(MethodView):
    @requires(Action.INCOMING_BLOCK, Audit("incoming-rule", "unblock", "rule_id"))
    @answers_one(blp, IncomingRuleSchema, None)
    def post(self, rule_id: UUID):
        """Let the rule run again."""
        return _set_blocked(rule_id, False)
