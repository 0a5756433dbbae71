"""One JSON error body for the whole API: ``{code, status, message, errors}``.

``errors`` maps field paths (``source.namespace``) to lists of messages; it is
empty when the error is not about particular fields.
"""

from __future__ import annotations

import logging
from typing import Any

from flask import Flask, Response, jsonify
from marshmallow import Schema, fields
from werkzeug.exceptions import HTTPException

from common import errors as ferr

log = logging.getLogger(__name__)

# FerryError subclasses that reach a view unhandled, and their HTTP status.
STATUS_FOR = {
    ferr.NotFound: 404,
    ferr.Conflict: 409,
    ferr.ValidationError: 422,
    ferr.NetworkPolicyError: 422,
    ferr.AuthError: 422,
    ferr.RegistryError: 502,
    ferr.DatabaseError: 503,
}


class ErrorSchema(Schema):
    """The error body of every non-2xx response."""

    code = fields.Integer(metadata={"example": 422})
    status = fields.String(metadata={"example": "Unprocessable Entity"})
    message = fields.String(metadata={"example": "The request is invalid."})
    errors = fields.Dict(
        keys=fields.String(),
        values=fields.List(fields.String()),
        metadata={"example": {"source.namespace": ["Missing data for required field."]}},
    )


def flatten(messages: Any, prefix: str = "") -> dict[str, list[str]]:
    """Turn marshmallow's nested messages into ``{"a.b": [..]}``."""
    out: dict[str, list[str]] = {}
    if isinstance(messages, dict):
        for key, value in messages.items():
            # flask-smorest nests by location ("json", "query"); drop that level.
            if not prefix and key in ("json", "query", "path", "form", "headers"):
                sub = flatten(value, "")
            else:
                sub = flatten(value, f"{prefix}.{key}" if prefix else str(key))
            for k, v in sub.items():
                out.setdefault(k, []).extend(v)
    elif isinstance(messages, list) and all(isinstance(m, str) for m in messages):
        out[prefix or "_schema"] = list(messages)
    elif isinstance(messages, list):
        for i, m in enumerate(messages):
            out.update(flatten(m, f"{prefix}.{i}" if prefix else str(i)))
    else:
        out[prefix or "_schema"] = [str(messages)]
    return out


def error_response(
    code: int, message: str, errors: dict[str, list[str]] | None = None, status: str | None = None
) -> tuple[Response, int]:
    """The one error body, as a Flask response."""
    from http import HTTPStatus

    body = {
        "code": code,
        "status": status or HTTPStatus(code).phrase,
        "message": message,
        "errors": errors or {},
    }
    return jsonify(body), code


def register_error_handlers(app: Flask) -> None:
    """Route every error, expected or not, to the one body."""

    @app.errorhandler(HTTPException)
    def _http(exc: HTTPException):
        data = getattr(exc, "data", None) or {}
        errors = flatten(data.get("messages", {})) if data.get("messages") else {}
        message = data.get("message") or exc.description or exc.name
        if exc.code == 422 and errors and message == exc.description:
            message = "The request is invalid: " + "; ".join(
                f"{k}: {' '.join(v)}" for k, v in sorted(errors.items())
            )
        resp, code = error_response(exc.code or 500, message, errors)
        # webargs sets "headers": None when it has none to add.
        for name, value in (data.get("headers") or {}).items():
            resp.headers[name] = value
        if exc.code == 405 and hasattr(exc, "valid_methods") and exc.valid_methods:
            resp.headers["Allow"] = ", ".join(exc.valid_methods)
        return resp, code

    @app.errorhandler(ferr.FerryError)
    def _ferry(exc: ferr.FerryError):
        code = next((c for t, c in STATUS_FOR.items() if isinstance(exc, t)), 500)
        errors = exc.errors if isinstance(exc, ferr.ValidationError) else None
        return error_response(code, exc.message or type(exc).__name__, errors)

    @app.errorhandler(Exception)
    def _unexpected(exc: Exception):
        log.exception("unhandled error")
        return error_response(500, "Internal error; the server log has the details.")
