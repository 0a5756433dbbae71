"""/api/v1/users and their keys, and /api/v1/audit: the account's people and its log."""

from __future__ import annotations

from uuid import UUID

from flask.views import MethodView

from api.auditing import Audit
from api.auth import TenantBlueprint, app_settings, require_tenant, requires
from api.schemas.users import (
    EXAMPLE_USER,
    AuditEntrySchema,
    AuditQuerySchema,
    KeyCreateSchema,
    KeySchema,
    NewKeySchema,
    UserPatchSchema,
    UserSchema,
    present_user,
)
from api.views import answers_one, page_of
from common.domain.permissions import Action
from common.services import apikeys, audit, users

blp = TenantBlueprint(
    "users",
    __name__,
    url_prefix="/api/v1",
    description="Users of your account, their API keys, and the audit log (admins).",
)


def _present_new(new: apikeys.NewKey) -> dict:
    return {**new.key.__dict__, "token": new.token, "secret_key": new.secret_key}


@blp.route("/users")
class Users(MethodView):
    @requires(Action.USER_READ)
    @blp.response(200, UserSchema(many=True), example=[EXAMPLE_USER])
    @blp.paginate(page_size=50, max_page_size=200)
    def get(self, pagination_parameters):
        """List your account's users by name."""
        return [present_user(r) for r in page_of(users.list_users, pagination_parameters)]

    @requires(Action.USER_MANAGE, Audit("user", "create", None, ("name", "role")))
    @blp.arguments(UserSchema)
    @blp.response(201, UserSchema, example=EXAMPLE_USER)
    @blp.alt_response(409, response="CONFLICT")
    def post(self, data):
        """Create a user (no key yet: create one with POST /users/{id}/keys)."""
        return present_user(users.create_user(app_settings(), require_tenant(), data))


@blp.route("/users/<uuid:user_id>")
class User(MethodView):
    @requires(Action.USER_READ)
    @answers_one(blp, UserSchema, EXAMPLE_USER)
    def get(self, user_id: UUID):
        """Show one user."""
        return present_user(users.get_user(app_settings(), require_tenant(), user_id))

    @requires(Action.USER_MANAGE, Audit("user", "update", "user_id"))
    @blp.arguments(UserPatchSchema)
    @answers_one(blp, UserSchema, EXAMPLE_USER)
    @blp.alt_response(409, response="CONFLICT")
    def patch(self, changes, user_id: UUID):
        """Change a user's name, password, role or grants (the last admin stays admin)."""
        return present_user(users.update_user(app_settings(), require_tenant(), user_id, changes))

    @requires(Action.USER_MANAGE, Audit("user", "delete", "user_id"))
    @blp.response(204)
    @blp.alt_response(404, response="NOT_FOUND")
    @blp.alt_response(409, response="CONFLICT")
    def delete(self, user_id: UUID):
        """Delete a user and revoke its keys (not the last admin)."""
        users.delete_user(app_settings(), require_tenant(), user_id)


@blp.route("/users/<uuid:user_id>/keys")
class Keys(MethodView):
    @requires(Action.KEY_MANAGE)
    @blp.response(200, KeySchema(many=True))
    @blp.paginate(page_size=50, max_page_size=200)
    @blp.alt_response(404, response="NOT_FOUND")
    def get(self, user_id: UUID, pagination_parameters):
        """The user's keys that are not revoked: prefix, created, last used, expiry."""
        return page_of(apikeys.list_keys, pagination_parameters, user_id)

    @requires(Action.KEY_MANAGE, Audit("key", "create", None, ("kind", "prefix")))
    @blp.arguments(KeyCreateSchema)
    @blp.response(201, NewKeySchema)
    @blp.alt_response(404, response="NOT_FOUND")
    def post(self, data, user_id: UUID):
        """Create a key; its token or SecretKey is in this answer only."""
        new = apikeys.create_key(app_settings(), require_tenant(), user_id, **data)
        return _present_new(new)


@blp.route("/users/<uuid:user_id>/keys/<uuid:key_id>")
class Key(MethodView):
    @requires(Action.KEY_MANAGE, Audit("key", "revoke", "key_id"))
    @blp.response(204)
    @blp.alt_response(404, response="NOT_FOUND")
    def delete(self, user_id: UUID, key_id: UUID):
        """Revoke a key: the next request with it is refused, in every API process."""
        apikeys.revoke_key(app_settings(), require_tenant(), user_id, key_id)


@blp.route("/users/<uuid:user_id>/keys/<uuid:key_id>/rotate")
class RotateKey(MethodView):
    @requires(Action.KEY_MANAGE, Audit("key", "rotate", "key_id", ("id",)))
    @blp.response(201, NewKeySchema)
    @blp.alt_response(404, response="NOT_FOUND")
    @blp.alt_response(409, response="CONFLICT")
    def post(self, user_id: UUID, key_id: UUID):
        """Revoke a key and create its replacement (same kind, description, expiry) at once."""
        new = apikeys.rotate_key(app_settings(), require_tenant(), user_id, key_id)
        return _present_new(new)


@blp.route("/audit")
class AuditLog(MethodView):
    @requires(Action.AUDIT_READ)
    @blp.arguments(AuditQuerySchema, location="query")
    @blp.response(200, AuditEntrySchema(many=True))
    @blp.paginate(page_size=50, max_page_size=200)
    def get(self, query, pagination_parameters):
        """Changes made in your account, newest first, optionally of one object or user."""
        return page_of(
            audit.list_entries,
            pagination_parameters,
            object_type=query.get("object_type"),
            object_id=query.get("object_id"),
            user_id=query.get("user_id"),
        )
