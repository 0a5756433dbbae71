"""Schemas of /api/v1/users, their keys, and /api/v1/audit."""

from __future__ import annotations

from marshmallow import Schema, fields
from marshmallow.validate import Length, OneOf

from api.schemas.base import Text
from common.domain.vocab import KeyKind, Role
from common.services.apikeys import MAX_DESCRIPTION
from common.services.users import MAX_PASSWORD, MIN_PASSWORD

EXAMPLE_USER = {
    "id": "0b6a3c1e-2f0a-4a57-9d0e-2f5b8d1f4a10",
    "name": "ci-robot",
    "role": "operator",
    "grants": ["6f1c1c1e-9f0a-4a57-9d0e-2f5b8d1f4a10"],
    "has_password": False,
    "created_at": "2024-05-01T10:00:00+00:00",
    "updated_at": "2024-05-01T10:00:00+00:00",
}

_GRANTS = fields.List(
    Text(validate=Length(1, 64)),
    validate=Length(1, 1000),
    metadata={
        "description": 'Instance ids of your account the user may act on, or `["*"]` for '
        "all (the default; an admin always has all).",
        "example": ["6f1c1c1e-9f0a-4a57-9d0e-2f5b8d1f4a10"],
    },
)


def _password(**kwargs) -> fields.Field:
    return Text(
        load_only=True,
        validate=Length(MIN_PASSWORD, MAX_PASSWORD),
        metadata={"description": "Console password (stored as an argon2id hash, never shown)."},
        **kwargs,
    )


class UserSchema(Schema):
    """A user of your account: a name, a role and grants on instances."""

    id = fields.UUID(dump_only=True)
    name = Text(
        required=True,
        validate=Length(1, 64),
        metadata={"description": "Unique in your account; a-z, 0-9, . _ @ -", "example": "ci"},
    )
    password = _password()
    role = fields.String(
        required=True, validate=OneOf(tuple(Role)), metadata={"example": "operator"}
    )
    grants = _GRANTS
    has_password = fields.Boolean(dump_only=True)
    created_at = fields.DateTime(dump_only=True)
    updated_at = fields.DateTime(dump_only=True)


class UserPatchSchema(Schema):
    """Fields to change; a null password removes console access."""

    name = Text(validate=Length(1, 64))
    password = _password(allow_none=True)
    role = fields.String(validate=OneOf(tuple(Role)))
    grants = _GRANTS


class KeyCreateSchema(Schema):
    kind = fields.String(
        load_default=KeyKind.BEARER.value,
        validate=OneOf(tuple(KeyKind)),
        metadata={"description": "`bearer` (a token) or `secret_pair` (SecretId/SecretKey)."},
    )
    description = Text(load_default="", validate=Length(0, MAX_DESCRIPTION))
    expires_at = fields.AwareDateTime(
        load_default=None,
        allow_none=True,
        metadata={"description": "When the key stops working (with a time zone); null: never."},
    )


class KeySchema(Schema):
    """An API key as listed: never its secret."""

    id = fields.UUID()
    kind = fields.String(metadata={"example": "bearer"})
    prefix = fields.String(metadata={"example": "fry_Xk3v0tq2"})
    secret_id = fields.String(allow_none=True)
    description = fields.String()
    created_at = fields.DateTime()
    last_used_at = fields.DateTime(allow_none=True)
    expires_at = fields.DateTime(allow_none=True)


class NewKeySchema(KeySchema):
    """A key just created or rotated, with its secret: shown only in this answer."""

    token = fields.String(allow_none=True, metadata={"description": "The bearer token."})
    secret_key = fields.String(allow_none=True, metadata={"description": "The SecretKey."})


class AuditQuerySchema(Schema):
    object_type = Text(
        validate=Length(1, 64),
        metadata={"description": "rule, instance, task, user, key or incoming-rule"},
    )
    object_id = Text(validate=Length(1, 200))
    user_id = fields.UUID(metadata={"description": "only changes made by this user"})


class AuditEntrySchema(Schema):
    """One change: who, when, what, from where."""

    id = fields.Integer()
    at = fields.DateTime()
    user_id = fields.UUID(allow_none=True)
    user_name = fields.String(metadata={"example": "admin"})
    object_type = fields.String(metadata={"example": "rule"})
    object_id = fields.String()
    action = fields.String(metadata={"example": "trigger"})
    source_ip = fields.String(metadata={"example": "192.0.2.10"})
    details = fields.Dict()


def present_user(row) -> dict:
    """A user row as the API shows it (never the password hash)."""
    return {
        "id": row.id,
        "name": row.name,
        "role": row.role,
        "grants": list(row.grants),
        "has_password": row.has_password,
        "created_at": row.created_at,
        "updated_at": row.updated_at,
    }
