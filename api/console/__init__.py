"""The browser console: server-rendered pages over the same use cases as the JSON API.

It lives at ``/`` (sign-in when nobody is signed in) with pages under their own
paths; ``POST /`` belongs to the signed compatibility API, never to the console.
Sessions are flask-login's signed cookie; CSRF tokens (flask-wtf) are checked
on the console's own forms only, so the JSON API and webhooks are untouched.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import hmac
import logging
import secrets

from flask import Flask, request

from api.console import accounts, instances, rules, signin, tasks  # noqa: F401 (routes)
from api.console.base import blp, csrf, login_blp, login_manager
from common.settings import Settings

log = logging.getLogger(__name__)


def _session_secret(settings: Settings) -> str:
    """The key signing session cookies: derived from the first FERRY_SECRET_KEYS key, so
    every API process accepts the same sessions (a random one when there is none)."""
    if not settings.secret_keys:
        log.warning("FERRY_SECRET_KEYS is not set: console sessions last until a restart")
        return secrets.token_hex(32)
    return hmac.new(
        settings.secret_keys[0].encode(), b"ferry console session", hashlib.sha256
    ).hexdigest()


def init_console(app: Flask, settings: Settings) -> None:
    """Register the console's blueprints, its session, CSRF and sign-in rate limit."""
    app.secret_key = _session_secret(settings)
    app.config.update(
        SESSION_COOKIE_NAME="ferry_session",
        SESSION_COOKIE_HTTPONLY=True,
        SESSION_COOKIE_SAMESITE="Lax",
        PERMANENT_SESSION_LIFETIME=dt.timedelta(hours=settings.console_session_hours),
        # CSRF is checked by the console's blueprints, not on every POST of the app.
        WTF_CSRF_CHECK_DEFAULT=False,
        # The token lives as long as the session it belongs to.
        WTF_CSRF_TIME_LIMIT=None,
    )
    csrf.init_app(app)
    login_manager.init_app(app)
    limiter = app.extensions["ferry"].limiter
    if limiter is not None:
        limiter.limit(
            settings.console_login_rate_limit,
            key_func=lambda: "console-login:" + (request.remote_addr or ""),
            methods=["POST"],
        )(login_blp)
    app.register_blueprint(login_blp)
    app.register_blueprint(blp)
