"""/api/v1/instances: the registry endpoints of the caller's account."""

from __future__ import annotations

from uuid import UUID

from flask.views import MethodView

from api.auditing import Audit
from api.auth import (
    TenantBlueprint,
    app_settings,
    on_instance,
    require_tenant,
    requires,
)
from api.errors import ErrorSchema
from api.schemas.instances import (
    EXAMPLE_CREATE,
    EXAMPLE_INSTANCE,
    EXAMPLE_SECRET,
    InstanceCreatedSchema,
    InstancePatchSchema,
    InstanceSchema,
    RotateQuerySchema,
    WebhookSecretSchema,
    present_instance,
)
from api.views import answers_one, for_tenant, granted_page_of
from common.domain.permissions import Action
from common.services import instances

blp = TenantBlueprint(
    "instances",
    __name__,
    url_prefix="/api/v1/instances",
    description="Registry instances of your account. Another account's instance is a 404.",
)

REGISTRY_422 = (
    "Invalid field, URL refused by the network policy, or the registry check "
    "failed (the message quotes the registry's answer)."
)
EXAMPLE_422 = {
    "code": 422,
    "status": "Unprocessable Entity",
    "message": "registry check failed: registry answered 401 Unauthorized: "
    "UNAUTHORIZED: authentication required",
    "errors": {
        "password": [
            "registry check failed: registry answered 401 Unauthorized: "
            "UNAUTHORIZED: authentication required"
        ]
    },
}
EXAMPLE_409_DELETE = {
    "code": 409,
    "status": "Conflict",
    "message": "the instance is used by rules 'sync-prod'; delete or change them first",
    "errors": {},
}


@blp.route("")
class Instances(MethodView):
    @requires(Action.INSTANCE_READ)
    @blp.response(200, InstanceSchema(many=True), example=[EXAMPLE_INSTANCE])
    @blp.paginate(page_size=50, max_page_size=200)
    def get(self, pagination_parameters):
        """List your instances by name (page, page_size; totals in X-Pagination)."""
        rows = granted_page_of(instances.list_instances, pagination_parameters)
        return [present_instance(r) for r in rows]

    @requires(Action.INSTANCE_CREATE, Audit("instance", "create", None, ("name",)))
    @blp.arguments(InstanceSchema, example=EXAMPLE_CREATE)
    @blp.response(
        201, InstanceCreatedSchema, example={**EXAMPLE_INSTANCE, "webhook_secret": EXAMPLE_SECRET}
    )
    @blp.alt_response(409, response="CONFLICT")
    @blp.alt_response(422, schema=ErrorSchema, description=REGISTRY_422, example=EXAMPLE_422)
    def post(self, data):
        """Register an instance after checking that the registry accepts the credentials."""
        row, secret = for_tenant(instances.create_instance, data)
        return present_instance(row, webhook_secret=secret)


@blp.route("/<uuid:instance_id>")
class Instance(MethodView):
    @requires(Action.INSTANCE_READ)
    @blp.response(200, InstanceSchema, example=EXAMPLE_INSTANCE)
    @blp.alt_response(404, response="NOT_FOUND")
    def get(self, instance_id: UUID):
        """Show one of your instances."""
        on_instance(Action.INSTANCE_READ, instance_id)
        return present_instance(
            instances.get_instance(app_settings(), require_tenant(), instance_id)
        )

    @requires(Action.INSTANCE_UPDATE, Audit("instance", "update", "instance_id"))
    @blp.arguments(InstancePatchSchema, example={"region": "ap-guangzhou", "verify_tls": False})
    @answers_one(blp, InstanceSchema, EXAMPLE_INSTANCE)
    @blp.alt_response(409, response="CONFLICT")
    @blp.alt_response(422, schema=ErrorSchema, description=REGISTRY_422, example=EXAMPLE_422)
    def patch(self, changes, instance_id: UUID):
        """Change an instance; a new URL, TLS setting or credentials are checked first."""
        on_instance(Action.INSTANCE_UPDATE, instance_id)
        return present_instance(
            instances.update_instance(app_settings(), require_tenant(), instance_id, changes)
        )

    @requires(Action.INSTANCE_DELETE, Audit("instance", "delete", "instance_id"))
    @blp.response(204)
    @blp.alt_response(404, response="NOT_FOUND")
    @blp.alt_response(
        409,
        schema=ErrorSchema,
        example=EXAMPLE_409_DELETE,
        description="Rules still use the instance; the message names them.",
    )
    def delete(self, instance_id: UUID):
        """Delete an instance that no rule uses."""
        on_instance(Action.INSTANCE_DELETE, instance_id)
        instances.delete_instance(app_settings(), require_tenant(), instance_id)


@blp.route("/<uuid:instance_id>/webhook-secret")
class WebhookSecret(MethodView):
    @requires(Action.INSTANCE_UPDATE, Audit("instance", "rotate-webhook-secret", "instance_id"))
    @blp.response(
        200,
        WebhookSecretSchema,
        example={"id": EXAMPLE_INSTANCE["id"], "webhook_secret": EXAMPLE_SECRET},
    )
    @blp.alt_response(404, response="NOT_FOUND")
    @blp.arguments(RotateQuerySchema, location="query", as_kwargs=True)
    def post(self, instance_id: UUID, revoke_previous: bool = False):
        """Rotate the webhook secret; the previous one works for the grace period, or stops
        at once with `?revoke_previous=true`."""
        on_instance(Action.INSTANCE_UPDATE, instance_id)
        secret = instances.rotate_webhook_secret(
            app_settings(), require_tenant(), instance_id, revoke_previous=revoke_previous
        )
        return {"id": instance_id, "webhook_secret": secret}
