"""Push notifications from registries: ``POST /api/v1/webhooks/{instance_id}``.

Authenticated by the instance's webhook secret (current or previous), not by a
tenant token. The receiver only stores the events and answers; matching rules
and creating tasks happen in the worker after the commit.
"""

from __future__ import annotations

import time

from flask import g, request
from flask.views import MethodView
from flask_smorest import Blueprint
from marshmallow import Schema, fields

from api.auth import app_settings
from api.errors import ErrorSchema, error_response
from common.domain import webhooks
from common.errors import ValidationError
from common.observe import metrics
from common.services.webhooks import RECENT_SECONDS, secret_matches, store_pushes
from worker.dispatch import enqueue_push_event

blp = Blueprint(
    "webhooks",
    __name__,
    url_prefix="/api/v1",
    description="Push notifications from registries (Distribution, Harbor, TCR).",
)

CONTENT_TYPES = (
    "application/json",
    "application/vnd.docker.distribution.events.v1+json",
    "application/vnd.docker.distribution.events.v2+json",
)


class WebhookResultSchema(Schema):
    format = fields.String(metadata={"example": "distribution"})
    accepted = fields.Integer(
        metadata={"description": "new tagged-manifest pushes stored", "example": 1}
    )
    duplicates = fields.Integer(metadata={"description": "pushes already received", "example": 0})
    ignored = fields.Integer(
        metadata={"description": "blob, pull, mount and untagged events", "example": 3}
    )


def _bearer_secret() -> str | None:
    scheme, _, secret = request.headers.get("Authorization", "").partition(" ")
    if scheme.lower() != "bearer" or not secret.strip():
        return None
    return secret.strip()


@blp.after_request
def _count_refusals(response):
    """A refused delivery (secret, content type, body, size, rate limit) counts once."""
    if 400 <= response.status_code < 500:
        metrics.webhook_events("refused")
    return response


@blp.route("/webhooks/<uuid:instance_id>")
class Webhook(MethodView):
    @blp.response(202, WebhookResultSchema)
    @blp.alt_response(400, schema=ErrorSchema, description="Malformed JSON or unknown shape.")
    @blp.alt_response(401, schema=ErrorSchema, description="Missing or wrong webhook secret.")
    @blp.alt_response(413, schema=ErrorSchema, description="Body over 1 MiB.")
    @blp.alt_response(415, schema=ErrorSchema, description="Not a JSON content type.")
    def post(self, instance_id):
        """Receive a registry's push notification (Bearer webhook secret of the instance)."""
        settings = app_settings()
        # An unknown instance and a wrong secret look the same to the caller.
        secret, started = _bearer_secret(), time.monotonic()
        # Checked against recently read secrets first: most deliveries are pulls.
        recently = started - RECENT_SECONDS
        if not secret_matches(settings, instance_id, secret, since=recently):
            return error_response(401, "missing or wrong webhook secret for this instance")
        mimetype = request.mimetype or ""
        if mimetype not in CONTENT_TYPES:
            return error_response(
                415,
                f"content type {mimetype or '(none)'} is not accepted; "
                f"send one of {', '.join(CONTENT_TYPES)}",
            )
        raw = request.get_data(cache=False)  # MAX_CONTENT_LENGTH (1 MiB) makes this a 413
        try:
            parsed = webhooks.parse(raw, str(instance_id))
        except ValidationError as exc:
            return error_response(400, exc.message, exc.errors)
        g.webhook_events = len(parsed.pushes)  # none: not counted by the rate limit
        # What is stored must pass a check read in this request (not a secret rotated out
        # seconds ago).
        if parsed.pushes and not secret_matches(settings, instance_id, secret, since=started):
            return error_response(401, "missing or wrong webhook secret for this instance")
        new_ids = store_pushes(settings, instance_id, parsed.pushes)
        # Only after the commit: the worker must find the rows.
        for event_id in new_ids:
            enqueue_push_event(event_id)
        metrics.webhook_events("received", len(new_ids))
        metrics.webhook_events("duplicate", len(parsed.pushes) - len(new_ids))
        return {
            "format": parsed.format,
            "accepted": len(new_ids),
            "duplicates": len(parsed.pushes) - len(new_ids),
            "ignored": parsed.ignored,
        }
