"""Schemas of /api/v1/instances."""

from __future__ import annotations

from typing import Any

from marshmallow import Schema, fields
from marshmallow.validate import Length, OneOf, Range

from api.schemas.base import Bool, ReadOnlyTolerant, Text
from common.domain.models import Instance
from common.domain.vocab import InstanceKind
from common.services.instances import KINDS, MAX_PASSWORD, MAX_USERNAME

URL_DESCRIPTION = (
    "Base URL of the registry: `http` or `https`, host and optional port, nothing else "
    "(no credentials, path or query). Link-local and cloud metadata addresses "
    "(169.254.0.0/16, fe80::/10, `metadata.*`) are always refused; other addresses must be "
    "in FERRY_REGISTRY_ALLOW_NETWORKS (default: everything, `0.0.0.0/0,::/0`, so loopback "
    "and private self-hosted registries work) and not in FERRY_REGISTRY_DENY_NETWORKS "
    "(default: empty). The registry must answer `/v2/` and accept the credentials."
)

EXAMPLE_INSTANCE = {
    "id": "6f1c1c1e-9f0a-4a57-9d0e-2f5b8d1f4a10",
    "name": "tcr-shanghai",
    "url": "https://registry.example.com",
    "region": "ap-shanghai",
    "kind": "distribution",
    "verify_tls": True,
    "max_concurrent_copies": 8,
    "username": "robot-sync",
    "has_credentials": True,
    "created_at": "2024-05-01T10:00:00+00:00",
    "updated_at": "2024-05-01T10:00:00+00:00",
}
EXAMPLE_CREATE = {
    "name": "tcr-shanghai",
    "url": "https://registry.example.com",
    "region": "ap-shanghai",
    "username": "robot-sync",
    "password": "s3cret",
    "verify_tls": True,
    "kind": "distribution",
}
EXAMPLE_SECRET = "fwh_Yk3v0tq2mJ8d1s9QhXzPp4rA7bC6eF5gH2iJ0kL1mN8"


def _name(required: bool) -> fields.Field:
    return Text(
        required=required,
        validate=Length(1, 128),
        metadata={
            "description": "Unique in your account; 1 to 128 characters.",
            "example": "tcr-shanghai",
        },
    )


def _url(required: bool) -> fields.Field:
    return Text(
        required=required,
        validate=Length(1, 2048),
        metadata={"description": URL_DESCRIPTION, "example": "https://registry.example.com"},
    )


def _username(**kwargs: Any) -> fields.Field:
    return Text(
        allow_none=True,
        validate=Length(1, MAX_USERNAME),
        **kwargs,
        metadata={
            "description": "Registry user; given together with password (both null clears them).",
            "example": "robot-sync",
        },
    )


def _password(**kwargs: Any) -> fields.Field:
    return Text(
        allow_none=True,
        load_only=True,
        validate=Length(1, MAX_PASSWORD),
        **kwargs,
        metadata={
            "description": "Registry password or token; stored encrypted, never returned.",
            "example": "s3cret",
        },
    )


class InstanceSchema(ReadOnlyTolerant):
    """A registry endpoint of your account."""

    READ_ONLY = frozenset({"id", "has_credentials", "created_at", "updated_at"})

    id = fields.UUID(dump_only=True)
    name = _name(True)
    url = _url(True)
    region = Text(
        load_default="",
        validate=Length(max=64),
        metadata={"description": "Free-form region label.", "example": "ap-shanghai"},
    )
    kind = Text(
        load_default=InstanceKind.DISTRIBUTION,
        validate=OneOf(KINDS),
        metadata={"description": "Registry flavour.", "example": "distribution"},
    )
    verify_tls = Bool(
        load_default=True,
        metadata={
            "description": "Verify the registry's TLS certificate (https only).",
            "example": True,
        },
    )
    max_concurrent_copies = fields.Integer(
        load_default=8,
        validate=Range(1, 256),
        metadata={
            "description": "Copies into this registry at once, across every Ferry worker.",
            "example": 8,
        },
    )
    username = _username(load_default=None)
    password = _password(load_default=None)
    has_credentials = fields.Boolean(
        dump_only=True, metadata={"description": "True when a username and password are stored."}
    )
    created_at = fields.DateTime(dump_only=True)
    updated_at = fields.DateTime(dump_only=True)


class InstanceCreatedSchema(InstanceSchema):
    """The new instance, with its webhook secret (shown only in this response)."""

    webhook_secret = fields.String(
        dump_only=True,
        metadata={
            "description": "Secret registries send with push webhooks; shown only once.",
            "example": EXAMPLE_SECRET,
        },
    )


class InstancePatchSchema(Schema):
    """Fields to change; absent fields are kept. Username and password change together."""

    name = _name(False)
    url = _url(False)
    region = Text(validate=Length(max=64), metadata={"example": "ap-guangzhou"})
    kind = Text(validate=OneOf(KINDS), metadata={"example": "harbor"})
    verify_tls = Bool(metadata={"example": False})
    max_concurrent_copies = fields.Integer(validate=Range(1, 256), metadata={"example": 16})
    username = _username()
    password = _password()


class WebhookSecretSchema(Schema):
    """A new webhook secret; the previous one keeps working for the grace period
    (FERRY_WEBHOOK_SECRET_GRACE, 24 h by default) unless the rotation revoked it."""

    id = fields.UUID(metadata={"description": "The instance."})
    webhook_secret = fields.String(metadata={"example": EXAMPLE_SECRET})


class RotateQuerySchema(Schema):
    revoke_previous = fields.Boolean(
        load_default=False,
        metadata={
            "description": "Stop the replaced secret at once (a leak), instead of keeping it "
            "valid for the grace period (FERRY_WEBHOOK_SECRET_GRACE, 24 h by default)."
        },
    )


def present_instance(row: Instance, webhook_secret: str | None = None) -> dict:
    """The API view of an instance row: no password, no hashes."""
    view = {
        k: getattr(row, k)
        for k in (
            "id",
            "name",
            "url",
            "region",
            "kind",
            "verify_tls",
            "max_concurrent_copies",
            "username",
            "created_at",
            "updated_at",
        )
    }
    view["has_credentials"] = row.has_credentials
    if webhook_secret is not None:
        view["webhook_secret"] = webhook_secret
    return view
