"""What every console page shares: the blueprints, the signed-in user, permissions,
form errors, the audit record of a change and the error pages."""

from __future__ import annotations

import time
from collections.abc import Iterable
from typing import Any
from uuid import UUID

from flask import Blueprint, flash, g, redirect, render_template, request, session
from flask_login import LoginManager, UserMixin, current_user
from flask_wtf import CSRFProtect
from flask_wtf.csrf import CSRFError
from werkzeug.exceptions import HTTPException

from api.auth import app_settings
from common import errors as ferr
from common.domain.permissions import Action, Principal
from common.services import audit, console

blp = Blueprint(
    "console",
    __name__,
    template_folder="templates",
    static_folder="static",
    static_url_path="/console/static",
)
# Sign-in has a blueprint of its own so that the rate limit covers it alone.
login_blp = Blueprint("console_login", __name__, template_folder="templates")
csrf = CSRFProtect()
login_manager = LoginManager()
login_manager.login_view = "console_login.login"
login_manager.login_message = "Sign in to continue."
login_manager.login_message_category = "info"
PAGE_SIZE = 50


class ConsoleUser(UserMixin):
    """The signed-in user: its principal as the database says now."""

    def __init__(self, principal: Principal, stamp: str) -> None:
        self.principal = principal
        self.stamp = stamp

    def get_id(self) -> str:
        p = self.principal
        return f"{p.tenant_id}:{p.user_id}:{self.stamp}"


@login_manager.user_loader
def _load_user(session_id: str) -> ConsoleUser | None:
    try:
        tenant, user, stamp = session_id.split(":")
        started = float(session.get("signed_in_at", 0))
        tenant_id, user_id = UUID(tenant), UUID(user)
    except (ValueError, TypeError):
        return None
    # The cookie's own lifetime is renewed on each request; this bound is absolute.
    if time.time() - started > app_settings().console_session_hours * 3600:
        return None
    principal = console.session_principal(app_settings(), tenant_id, user_id, stamp)
    return ConsoleUser(principal, stamp) if principal is not None else None


def principal() -> Principal:
    """The signed-in user's principal."""
    return current_user.principal


def tenant() -> UUID:
    return principal().tenant_id


def may(action: Action | str, *instances: Any) -> bool:
    """True when the signed-in user's role and grants allow ``action`` on ``instances``:
    what decides whether a page shows a button."""
    if not current_user.is_authenticated:
        return False
    p = principal()
    ids = [UUID(str(i)) for i in instances if i is not None]
    return p.can(Action(action)) and p.refused_instance(Action(action), ids) is None


def require(action: Action) -> None:
    """403 unless the signed-in user's role includes ``action``."""
    from api.auth import forbid

    if not principal().can(action):
        forbid(action, request.path, f"role {principal().role} does not include it")


def on_instance(action: Action, instance_id: UUID) -> None:
    """As the API checks a route: another tenant's instance is a 404, then role and grants."""
    from api import auth

    auth.on_instance(action, instance_id)
    require(action)


def on_rule(action: Action, rule_id: UUID) -> Any:
    """The tenant's rule once role and grants allow ``action`` on it (404 for another's)."""
    from api import auth

    rule = auth.on_rule(action, rule_id)
    require(action)
    return rule


def on_task(action: Action, task_id: str) -> None:
    from api import auth

    auth.on_task(action, task_id)
    require(action)


def granted() -> list[UUID] | None:
    """The instances the user's grants reach (None: all)."""
    return principal().granted_instances()


def record(object_type: str, object_id: Any, verb: str, **details: Any) -> None:
    """Record a change made through the console in the audit log (never a secret)."""
    audit.record(
        app_settings(),
        principal(),
        object_type=object_type,
        object_id=str(object_id),
        action=verb,
        source_ip=request.remote_addr or "",
        details={k: v for k, v in details.items() if v is not None},
    )


def page_number() -> int:
    try:
        return max(1, min(int(request.args.get("page", 1)), 100_000))
    except ValueError:
        return 1


def pages(total: int, size: int = PAGE_SIZE) -> int:
    return max(1, -(-total // size))


def problem(exc: ferr.FerryError) -> str:
    """A one-line message for a refused change."""
    return exc.message or type(exc).__name__


def fail(exc: ferr.FerryError, fallback: str) -> Any:
    """Flash a refused action and go back where the user was."""
    flash(problem(exc), "error")
    back = request.referrer or ""
    # Back to the page the form was on, and never to another site.
    return redirect(back if back.startswith(request.host_url) else fallback)


@blp.before_request
def _signed_in() -> Any:
    if request.endpoint in ("console.index", "console.static"):
        return None
    if request.method == "POST":
        csrf.protect()
    if not current_user.is_authenticated:
        return login_manager.unauthorized()
    g.principal = principal()  # what api.auth's checks read
    return None


@login_blp.before_request
def _login_csrf() -> None:
    if request.method == "POST":
        csrf.protect()


# Only Ferry's own files; the progress bars' widths are the one inline style.
SECURITY_HEADERS = {
    "Content-Security-Policy": "default-src 'self'; style-src 'self' 'unsafe-inline'; "
    "img-src 'self' data:; frame-ancestors 'none'; form-action 'self'; base-uri 'none'",
    "X-Frame-Options": "DENY",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "same-origin",
    "Cache-Control": "no-store",
}


@blp.after_request
@login_blp.after_request
def _security_headers(response: Any) -> Any:
    for name, value in SECURITY_HEADERS.items():
        if name != "Cache-Control" or request.endpoint != "console.static":
            response.headers.setdefault(name, value)
    return response


@blp.app_context_processor
def _template_helpers() -> dict[str, Any]:
    return {"may": may, "Action": Action, "user": current_user}


def _error_page(code: int, message: str) -> Any:
    return render_template("console/error.html", code=code, message=message), code


@blp.errorhandler(ferr.NotFound)
def _not_found(exc: ferr.NotFound) -> Any:
    return _error_page(404, problem(exc))


@blp.errorhandler(CSRFError)
@login_blp.errorhandler(CSRFError)
def _csrf(exc: CSRFError) -> Any:
    return _error_page(400, f"The form expired or was not sent by this console ({exc.description})")


@blp.errorhandler(HTTPException)
def _http(exc: HTTPException) -> Any:
    data = getattr(exc, "data", None) or {}
    return _error_page(exc.code or 500, data.get("message") or exc.description or exc.name)


@blp.errorhandler(ferr.FerryError)
def _ferry(exc: ferr.FerryError) -> Any:
    from api.errors import STATUS_FOR

    code = next((c for t, c in STATUS_FOR.items() if isinstance(exc, t)), 500)
    return _error_page(code, problem(exc))


def choices(rows: Iterable[Any]) -> list[tuple[str, str]]:
    return [(str(r.id), r.name) for r in rows]


def load(schema: Any, data: dict[str, Any]) -> tuple[dict[str, Any], dict[str, list[str]]]:
    """``data`` loaded by one of the API's schemas: (values, errors by field path)."""
    from marshmallow import ValidationError

    from api.errors import flatten

    try:
        return schema.load(data), {}
    except ValidationError as exc:
        return {}, flatten(exc.messages)


def show_errors(form: Any, errors: dict[str, list[str]], paths: dict[str, str]) -> list[str]:
    """Put each error beside the form field its API path names; the rest, for the top."""
    rest = []
    for path, messages in errors.items():
        name = paths.get(path, path)
        field = getattr(form, name, None) if name else None
        if field is not None and hasattr(field, "errors"):
            field.errors = [*list(field.errors or []), *messages]
        else:
            rest.extend(f"{path}: {m}" for m in messages)
    return rest


def refused(exc: ferr.FerryError) -> dict[str, list[str]]:
    """The field errors of a refused change (a Conflict names the ``name`` field)."""
    if isinstance(exc, ferr.ValidationError) and exc.errors:
        return dict(exc.errors)
    if isinstance(exc, ferr.Conflict):
        return {"name": [problem(exc)]}
    return {"_schema": [problem(exc)]}
