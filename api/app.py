"""The Flask application factory."""

from __future__ import annotations

from dataclasses import dataclass

import swagger_ui_bundle
from flask import Flask, g, request, send_from_directory
from flask_limiter import Limiter
from flask_smorest import Api

from api.errors import ErrorSchema, register_error_handlers
from common.settings import Settings, get_settings


class FerryApi(Api):
    """flask-smorest's Api documenting Ferry's one error body for every error."""

    ERROR_SCHEMA = ErrorSchema


@dataclass
class FerryState:
    """What views need from the process, kept in ``app.extensions["ferry"]``."""

    settings: Settings
    limiter: Limiter | None = None


def create_app(settings: Settings | None = None) -> Flask:
    """A configured Ferry API; the OpenAPI document is at /api/openapi.json."""
    settings = settings or get_settings()
    app = Flask("ferry")
    app.config.update(
        API_TITLE="Ferry",
        API_VERSION="v1",
        OPENAPI_VERSION="3.0.3",
        OPENAPI_URL_PREFIX="/api",
        OPENAPI_JSON_PATH="openapi.json",
        OPENAPI_SWAGGER_UI_PATH="docs",
        # Served from the swagger-ui-bundle package: the docs work offline.
        OPENAPI_SWAGGER_UI_URL="/api/docs/static/",
        MAX_CONTENT_LENGTH=1024 * 1024,
        JSON_SORT_KEYS=False,
    )
    app.extensions["ferry"] = FerryState(settings=settings)
    api = FerryApi(app, spec_kwargs={"info": {"description": "Registry replication by rules."}})
    register_error_handlers(app)

    from api import (
        drift,
        health,
        incoming,
        instances,
        notifications,
        rules,
        tasks,
        tcr,
        users,
        webhooks,
    )
    from api.auth import register_security_scheme

    register_security_scheme(api)
    api.register_blueprint(health.blp)
    api.register_blueprint(instances.blp)
    api.register_blueprint(rules.blp)
    api.register_blueprint(tasks.blp)
    api.register_blueprint(users.blp)
    api.register_blueprint(incoming.blp)
    api.register_blueprint(drift.blp)
    api.register_blueprint(notifications.blp)
    _limit_webhooks(app, settings, webhooks.blp)
    api.register_blueprint(webhooks.blp)
    # Not documented in the OpenAPI file: the product's own API reference describes it.
    app.register_blueprint(tcr.blp)
    _serve_swagger_assets(app)
    from api import metrics
    from common.observe import logs

    app.register_blueprint(metrics.blp)
    # A request's log records carry its tenant, bound once its key is checked.
    app.before_request(logs.clear)
    from api.console import init_console

    init_console(app, settings)
    return app


def _limiter_storage(redis_url: str | None) -> str:
    """flask-limiter's storage URI for Ferry's Redis (in memory when there is none)."""
    if not redis_url:
        return "memory://"
    if redis_url.startswith("unix://"):
        return "redis+unix://" + redis_url[len("unix://") :]
    return redis_url


def _limit_webhooks(app: Flask, settings: Settings, blueprint) -> None:
    """Deliveries per instance (``FERRY_WEBHOOK_RATE_LIMIT``), counted in Redis so every
    API process shares the count; a limit hit is a 429 with Retry-After.

    An accepted delivery with nothing to store (only pulls, blobs, mounts) does not
    count: Distribution notifies every pull, Ferry's own syncs pull, and a registry
    redelivers a refused envelope before any later one, so counting them would hold
    the pushes behind them back for as long as a sync runs."""
    limiter = Limiter(
        key_func=lambda: "webhook:" + str((request.view_args or {}).get("instance_id")),
        app=app,
        storage_uri=_limiter_storage(settings.redis_url),
        strategy="fixed-window",
        key_prefix="ferry-limit",
        headers_enabled=True,
        # Redis down: webhooks are still received (the events table de-duplicates).
        swallow_errors=True,
    )
    limiter.limit(settings.webhook_rate_limit, deduct_when=_stored_something)(blueprint)
    app.extensions["ferry"].limiter = limiter


def _stored_something(response) -> bool:
    """Whether a delivery counts against the limit: refused ones and those with pushes or
    deletes do (the view sets ``g.webhook_events``)."""
    return response.status_code != 202 or g.get("webhook_events", 1) > 0


def _serve_swagger_assets(app: Flask) -> None:
    @app.get("/api/docs/static/<path:filename>")
    def swagger_static(filename: str):
        return send_from_directory(swagger_ui_bundle.swagger_ui_path, filename)
