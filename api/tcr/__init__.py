"""The TCR-compatible API: ``POST /`` with ``X-TC-Action``, signed with TC3-HMAC-SHA256.

Only POST is registered on ``/`` (the console owns ``GET /``). The view hands
the raw request to ``common.services.tcr`` and answers its envelope, always
with HTTP 200 and ``application/json``, as the product does: the SDKs read the
error from the body, and treat any other status as a network failure.
"""

from __future__ import annotations

from flask import Blueprint, jsonify, request

from api.auth import app_settings
from common.services import tcr

blp = Blueprint("tcr", __name__)


@blp.post("/")
def call():
    """One action of the product's API (see the README's TCR-compatible API section)."""
    answer = tcr.handle(
        app_settings(),
        tcr.Call(
            method=request.method,
            path=request.path,
            query=request.query_string.decode("latin-1"),
            headers={k.lower(): v for k, v in request.headers.items()},
            body=request.get_data(cache=False),
            source_ip=request.remote_addr or "",
        ),
    )
    return jsonify(answer)
