"""Tenant authentication: ``Authorization: Bearer <token>`` on every tenant route.

Use :class:`TenantBlueprint` for a resource whose every route belongs to a
tenant: each request is authenticated before its view runs, and each
operation is documented with the bearer security scheme and its 401. Inside
a view, :func:`require_tenant` (or ``g.tenant_id``) is the caller's tenant.
Webhook receivers use a plain Blueprint: registries authenticate with the
instance's webhook secret instead.
"""

from __future__ import annotations

from uuid import UUID

from flask import current_app, g, request
from flask_smorest import Api, Blueprint, abort

from common.services import tenants
from common.settings import Settings

SECURITY_SCHEME = "bearerAuth"
_CHALLENGE = {"WWW-Authenticate": 'Bearer realm="ferry"'}


def require_tenant() -> UUID:
    """The tenant owning the request's bearer token; aborts with 401 otherwise.

    The token is looked up by its SHA-256 (see ``common.services.tenants``), so
    neither the token nor timing reveals stored tokens. Cached in ``g.tenant_id``.
    """
    cached = g.get("tenant_id")
    if cached is not None:
        return cached
    scheme, _, token = request.headers.get("Authorization", "").partition(" ")
    token = token.strip()
    if scheme.lower() != "bearer" or not token:
        abort(
            401,
            message="Authentication required: send 'Authorization: Bearer <token>'.",
            headers=_CHALLENGE,
        )
    tenant_id = tenants.authenticate(app_settings(), token)
    if tenant_id is None:
        abort(401, message="The token is not valid (unknown or revoked).", headers=_CHALLENGE)
    g.tenant_id = tenant_id
    return tenant_id


def _authenticate() -> None:
    # CORS pre-flight requests never carry credentials.
    if request.method != "OPTIONS":
        require_tenant()


class TenantBlueprint(Blueprint):
    """A Blueprint whose every route requires a tenant token, and is documented so."""

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.before_request(_authenticate)
        self._prepare_doc_cbks.append(self._prepare_auth_doc)

    @staticmethod
    def _prepare_auth_doc(doc: dict, doc_info: dict, **kwargs) -> dict:
        doc.setdefault("responses", {})[401] = "UNAUTHORIZED"
        doc["security"] = [{SECURITY_SCHEME: []}]
        return doc


def register_security_scheme(api: Api) -> None:
    """Declare the bearer-token scheme the tenant routes refer to."""
    api.spec.components.security_scheme(
        SECURITY_SCHEME,
        {
            "type": "http",
            "scheme": "bearer",
            "description": "An API token of a tenant, from `ferry tenant create`.",
        },
    )


def app_settings() -> Settings:
    """The settings of the running app (``app.extensions["ferry"]``)."""
    return current_app.extensions["ferry"].settings
