"""/api/v1/rules: replication rules of the caller's account."""

from __future__ import annotations

from uuid import UUID

from flask.views import MethodView

from api.auditing import Audit
from api.auth import (
    TenantBlueprint,
    app_settings,
    authorize_instances,
    on_rule,
    require_tenant,
    requires,
)
from api.errors import ErrorSchema
from api.schemas.rules import (
    EXAMPLE_CROSS_TENANT_TARGET,
    EXAMPLE_RULE,
    EXAMPLE_RULE_INPUT,
    RulePatchSchema,
    RuleQuerySchema,
    RuleSchema,
    present_rule,
)
from api.views import answers_one, for_tenant, granted_page_of
from common.domain.permissions import Action
from common.services import rules as rule_service
from common.services.access import spec_scope
from common.services.rule_health import health_of_rules

blp = TenantBlueprint(
    "rules",
    __name__,
    url_prefix="/api/v1/rules",
    description="Replication rules of your account. Another account's rule is a 404.",
)

RULE_422 = (
    "A field is invalid (errors maps each field path, e.g. `source.tag_filter`, to its "
    "messages; pattern errors give the position), a referenced instance is not yours "
    "(or not the named account's), source and target are the same repository set, "
    "or the target registry refused the cross-tenant credentials."
)
EXAMPLE_422 = {
    "code": 422,
    "status": "Unprocessable Entity",
    "message": "The rule is invalid: source.tag_filter: invalid regular expression: "
    "missing ), unterminated subpattern at position 0",
    "errors": {
        "source.tag_filter": [
            "invalid regular expression: missing ), unterminated subpattern at position 0"
        ]
    },
}
EXAMPLE_409 = {
    "code": 409,
    "status": "Conflict",
    "message": "a rule named 'sync-prod' already exists for this source instance",
    "errors": {},
}
EXAMPLES_IN = {
    "same-tenant": {
        "summary": "Copy tags v* of project/* to another instance of yours",
        "value": EXAMPLE_RULE_INPUT,
    },
    "cross-tenant": {
        "summary": "Copy Helm charts into another account's namespace 'team'",
        "value": {
            **EXAMPLE_RULE_INPUT,
            "name": "charts-to-partner",
            "resource_types": ["chart"],
            "target": EXAMPLE_CROSS_TENANT_TARGET,
        },
    },
}


def _errors(func):
    func = blp.alt_response(422, schema=ErrorSchema, description=RULE_422, example=EXAMPLE_422)(
        func
    )
    return blp.alt_response(
        409,
        schema=ErrorSchema,
        example=EXAMPLE_409,
        description="Another rule on the source instance has this name.",
    )(func)


def _one_rule(example: dict = EXAMPLE_RULE):
    """Documents a view that answers one rule, or 404."""
    return answers_one(blp, RuleSchema, example)


def _rule(use_case, *args) -> dict:
    """The API view of the rule a use case returns for the caller."""
    return present_rule(for_tenant(use_case, *args))


@blp.route("")
class Rules(MethodView):
    @requires(Action.RULE_READ)
    @blp.arguments(RuleQuerySchema, location="query")
    @blp.response(200, RuleSchema(many=True), example=[EXAMPLE_RULE])
    @blp.paginate(page_size=50, max_page_size=200)
    def get(self, query, pagination_parameters):
        """List your rules by name, optionally of one source instance (paginated)."""
        rows = granted_page_of(
            rule_service.list_rules,
            pagination_parameters,
            source_instance_id=query["source_instance_id"],
        )
        health = health_of_rules(app_settings(), rows)
        return [present_rule(r, health[r.id]) for r in rows]

    @requires(Action.RULE_CREATE, Audit("rule", "create", None, ("name",)))
    @blp.arguments(RuleSchema, examples=EXAMPLES_IN)
    @blp.response(201, RuleSchema, example=EXAMPLE_RULE)
    @_errors
    def post(self, spec):
        """Create a rule; cross-tenant credentials are checked against the target first."""
        authorize_instances(Action.RULE_CREATE, "the new rule", spec_scope(spec))
        return present_rule(rule_service.create_rule(app_settings(), require_tenant(), spec))


@blp.route("/<uuid:rule_id>")
class Rule(MethodView):
    @requires(Action.RULE_READ)
    @_one_rule()
    def get(self, rule_id: UUID):
        """Show one of your rules."""
        return present_rule(on_rule(Action.RULE_READ, rule_id))

    @requires(Action.RULE_UPDATE, Audit("rule", "update", "rule_id"))
    @blp.arguments(RuleSchema, examples=EXAMPLES_IN)
    @_one_rule()
    @_errors
    def put(self, spec, rule_id: UUID):
        """Replace a rule (same validation as create; an omitted password is kept)."""
        on_rule(Action.RULE_UPDATE, rule_id)
        authorize_instances(Action.RULE_UPDATE, f"rule {rule_id}", spec_scope(spec))
        return present_rule(
            rule_service.replace_rule(app_settings(), require_tenant(), rule_id, spec)
        )

    @requires(Action.RULE_UPDATE, Audit("rule", "update", "rule_id"))
    @blp.arguments(RulePatchSchema, example={"enabled": False, "source": {"tag_filter": "v2.*"}})
    @_one_rule()
    @_errors
    def patch(self, patch, rule_id: UUID):
        """Change some fields; the merged rule is validated as a whole."""
        current = on_rule(Action.RULE_UPDATE, rule_id)
        merged = rule_service.merge_patch(rule_service.spec_from_row(current), patch)
        authorize_instances(Action.RULE_UPDATE, f"rule {rule_id}", spec_scope(merged))
        return present_rule(
            rule_service.patch_rule(app_settings(), require_tenant(), rule_id, patch)
        )

    @requires(Action.RULE_DELETE, Audit("rule", "delete", "rule_id"))
    @blp.response(204)
    @blp.alt_response(404, response="NOT_FOUND")
    def delete(self, rule_id: UUID):
        """Delete a rule (its sync tasks stay in the history)."""
        on_rule(Action.RULE_DELETE, rule_id)
        rule_service.delete_rule(app_settings(), require_tenant(), rule_id)


@blp.route("/<uuid:rule_id>/enable")
class EnableRule(MethodView):
    @requires(Action.RULE_UPDATE, Audit("rule", "enable", "rule_id"))
    @_one_rule()
    def post(self, rule_id: UUID):
        """Enable a rule (its schedule restarts from now)."""
        on_rule(Action.RULE_UPDATE, rule_id)
        return _rule(rule_service.set_enabled, rule_id, True)


@blp.route("/<uuid:rule_id>/disable")
class DisableRule(MethodView):
    @requires(Action.RULE_UPDATE, Audit("rule", "disable", "rule_id"))
    @_one_rule({**EXAMPLE_RULE, "enabled": False})
    def post(self, rule_id: UUID):
        """Disable a rule until it is enabled again."""
        on_rule(Action.RULE_UPDATE, rule_id)
        return _rule(rule_service.set_enabled, rule_id, False)
