"""Authentication and permissions on every tenant route.

Use :class:`TenantBlueprint` for a resource whose every route belongs to a
tenant. Each view method names the action it performs with :func:`requires`
(a route without one refuses to register). Before the view runs, the request's
bearer key is authenticated (401 otherwise) and the user's role must include
the action (403 otherwise, naming the action). Views of objects tied to
instances then call :func:`authorize_instances` once they have found the
object, so another tenant's object is a 404 and an instance outside the
user's grants a 403. Webhook receivers use a plain Blueprint: registries
authenticate with the instance's webhook secret instead.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any, TypeVar
from uuid import UUID

from flask import Response, current_app, g, request
from flask_smorest import Api, Blueprint, abort

from api.auditing import Audit, record_change
from common.domain.models import Rule
from common.domain.permissions import Action, Principal
from common.observe import logs
from common.services import access, incoming, tenants
from common.settings import Settings

SECURITY_SCHEME = "bearerAuth"
ACTION_KEY = "x-ferry-action"
_CHALLENGE = {"WWW-Authenticate": 'Bearer realm="ferry"'}
F = TypeVar("F", bound=Callable[..., Any])


def requires(action: Action, audit: Audit | None = None) -> Callable[[F], F]:
    """Mark a view method as performing ``action`` (checked before it runs, and documented);
    with ``audit``, each success is recorded in the audit log."""

    def mark(func: F) -> F:
        func._ferry_action = action  # type: ignore[attr-defined]
        func._ferry_audit = audit  # type: ignore[attr-defined]
        apidoc = dict(getattr(func, "_apidoc", {}))
        apidoc["manual_doc"] = {**apidoc.get("manual_doc", {}), ACTION_KEY: action.value}
        func._apidoc = apidoc  # type: ignore[attr-defined]
        return func

    return mark


def require_principal() -> Principal:
    """Who holds the request's bearer key; aborts with 401 otherwise. Cached in ``g``."""
    cached = g.get("principal")
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
    principal = tenants.authenticate(app_settings(), token)
    if principal is None:
        abort(
            401,
            message="The token is not valid (unknown, revoked or expired).",
            headers=_CHALLENGE,
        )
    g.principal = principal
    logs.bind(tenant_id=principal.tenant_id)
    return principal


def require_tenant() -> UUID:
    """The tenant of the request's key (see :func:`require_principal`)."""
    return require_principal().tenant_id


def forbid(action: Action, what: str, reason: str) -> None:
    """Abort with the 403 body naming the missing ``action`` and the object ``what``."""
    abort(
        403,
        message=f"Forbidden: {action} on {what}: {reason}.",
        messages={"action": [action.value], "object": [what]},
    )


def authorize_instances(action: Action, what: str, instances: Iterable[UUID]) -> Principal:
    """The principal, if its grants cover ``instances`` for ``action``; 403 naming one otherwise."""
    principal = require_principal()
    refused = principal.refused_instance(action, instances)
    if refused is not None:
        forbid(action, what, f"instance {refused} is not granted to user {principal.user_name}")
    return principal


def _handler() -> Any:
    view = current_app.view_functions.get(request.endpoint or "")
    view_class = getattr(view, "view_class", None)
    method = request.method.lower()
    return getattr(view_class, "get" if method == "head" else method, None)


def _action_of_request() -> Action | None:
    return getattr(_handler(), "_ferry_action", None)


def _audit(response: Response) -> Response:
    spec = getattr(_handler(), "_ferry_audit", None)
    if spec is not None:
        record_change(spec, response)
    return response


def _authenticate() -> None:
    # CORS pre-flight requests never carry credentials.
    if request.method == "OPTIONS":
        return
    principal = require_principal()
    action = _action_of_request()
    if action is None:  # only for methods the route does not have: 405 follows
        return
    if not principal.can(action):
        # Another tenant's object stays a 404, whatever the caller's role.
        _ensure_objects_exist(principal.tenant_id)
        forbid(action, request.path, f"role {principal.role} does not include it")


def _ensure_objects_exist(tenant_id: UUID) -> None:
    """Raise NotFound when a URL names an object the tenant does not have."""
    settings, args = app_settings(), request.view_args or {}
    if "instance_id" in args:
        access.instance_scope(settings, tenant_id, args["instance_id"])
    if "rule_id" in args and request.path.startswith("/api/v1/incoming-rules/"):
        incoming.get_incoming(settings, tenant_id, args["rule_id"])
    elif "rule_id" in args:
        access.rule_of_tenant(settings, tenant_id, args["rule_id"])
    if "task_id" in args:
        access.task_scope(settings, tenant_id, args["task_id"])
    if "user_id" in args:
        access.user_of_tenant(settings, tenant_id, args["user_id"])
    if "notification_id" in args:
        access.notification_of_tenant(settings, tenant_id, args["notification_id"])
    if "report_id" in args:
        access.drift_report_of_tenant(settings, tenant_id, args["report_id"])


class TenantBlueprint(Blueprint):
    """A Blueprint whose every route requires a key and a declared action, documented so."""

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.before_request(_authenticate)
        self.after_request(_audit)
        self._prepare_doc_cbks.append(self._prepare_auth_doc)

    def route(self, rule: str, *, parameters=None, tags=None, **options):
        wrap = super().route(rule, parameters=parameters, tags=tags, **options)

        def check(view_class):
            for name in ("get", "post", "put", "patch", "delete"):
                handler = getattr(view_class, name, None)
                if handler is not None and not hasattr(handler, "_ferry_action"):
                    raise TypeError(f"{view_class.__name__}.{name} declares no action (@requires)")
            return wrap(view_class)

        return check

    @staticmethod
    def _prepare_auth_doc(doc: dict, doc_info: dict, **kwargs) -> dict:
        doc.setdefault("responses", {})[401] = "UNAUTHORIZED"
        doc["responses"][403] = "FORBIDDEN"
        doc["security"] = [{SECURITY_SCHEME: []}]
        return doc


def register_security_scheme(api: Api) -> None:
    """Declare the bearer-token scheme the tenant routes refer to."""
    api.spec.components.security_scheme(
        SECURITY_SCHEME,
        {
            "type": "http",
            "scheme": "bearer",
            "description": "An API token of a user of a tenant (the first one from "
            "`ferry tenant create`; more with /api/v1/users/{id}/keys).",
        },
    )


def app_settings() -> Settings:
    """The settings of the running app (``app.extensions["ferry"]``)."""
    return current_app.extensions["ferry"].settings


def on_instance(action: Action, instance_id: UUID) -> Principal:
    """Authorize ``action`` on the tenant's instance: 404 if not its own, 403 if not granted."""
    scope = access.instance_scope(app_settings(), require_tenant(), instance_id)
    return authorize_instances(action, f"instance {instance_id}", scope)


def on_rule(action: Action, rule_id: UUID) -> Rule:
    """Authorize ``action`` on the tenant's rule (source and own target); the rule."""
    rule = access.rule_of_tenant(app_settings(), require_tenant(), rule_id)
    authorize_instances(action, f"rule {rule_id}", access.rule_scope(rule))
    return rule


def on_task(action: Action, task_id: str) -> Principal:
    """Authorize ``action`` on the tenant's task (its rule's instances)."""
    scope = access.task_scope(app_settings(), require_tenant(), task_id)
    return authorize_instances(action, f"task {task_id}", scope)
