"""``GET /metrics``: Prometheus text for every Ferry process (FERRY_METRICS_TOKEN guards it)."""

from __future__ import annotations

from flask import Blueprint, Response, request

from api.auth import app_settings
from api.errors import error_response
from common.services.metrics import render, token_allows

blp = Blueprint("metrics", __name__)


@blp.get("/metrics")
def metrics() -> Response | tuple[Response, int]:
    """Prometheus exposition: process counters (all processes sharing
    PROMETHEUS_MULTIPROC_DIR) and figures read from PostgreSQL and Redis now."""
    settings = app_settings()
    if not token_allows(settings, request.headers.get("Authorization")):
        response, code = error_response(
            401, "GET /metrics needs Authorization: Bearer <FERRY_METRICS_TOKEN>"
        )
        response.headers["WWW-Authenticate"] = 'Bearer realm="ferry-metrics"'
        return response, code
    body, content_type = render(settings)
    return Response(body, content_type=content_type)
