"""Liveness and readiness."""

from __future__ import annotations

from flask import current_app
from flask.views import MethodView
from flask_smorest import Blueprint
from marshmallow import Schema, fields

from api.errors import ErrorSchema
from common.services.health import readiness

blp = Blueprint("health", __name__, description="Process liveness and readiness.")


class HealthSchema(Schema):
    status = fields.String(metadata={"example": "ok"})
    checks = fields.Dict(
        keys=fields.String(),
        values=fields.String(),
        metadata={"example": {"postgresql": "ok", "redis": "ok", "migrations": "ok"}},
    )


@blp.route("/healthz")
class Healthz(MethodView):
    @blp.response(200, HealthSchema)
    def get(self):
        """The process is alive (it answers; nothing else is checked)."""
        return {"status": "ok", "checks": {}}


@blp.route("/readyz")
class Readyz(MethodView):
    @blp.response(200, HealthSchema)
    @blp.alt_response(503, schema=ErrorSchema, description="A dependency is not ready.")
    def get(self):
        """PostgreSQL and Redis answer and the database schema is current."""
        checks = readiness(current_app.extensions["ferry"].settings)
        failed = {k: v for k, v in checks.items() if v != "ok"}
        if failed:
            from api.errors import error_response

            message = "not ready: " + "; ".join(f"{k}: {v}" for k, v in failed.items())
            return error_response(503, message, {k: [v] for k, v in failed.items()})
        return {"status": "ok", "checks": checks}
