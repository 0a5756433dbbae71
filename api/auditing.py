"""Recording each successful change in the audit log, from what its view declares.

A view marked ``@requires(action, audit=Audit(...))`` is recorded after it
answered 2xx: who (the key's user), the object type and id (a URL argument,
or the ``id`` of the created object), the verb, the client's address and
details that are never secrets (the names of the fields a change sent, the
name or task id the answer carries).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

from flask import Response, current_app, g, request

from common.services import audit

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Audit:
    """How a view's change is recorded."""

    object_type: str
    verb: str
    # URL argument holding the object id; None: the ``id`` of the answer (creations).
    id_arg: str | None = None
    # Keys of the answer copied into the details (never secrets).
    answer_keys: tuple[str, ...] = ()


def _details(spec: Audit, answer: dict) -> dict:
    details: dict = {k: answer[k] for k in spec.answer_keys if k in answer}
    if request.method in ("PUT", "PATCH"):
        body = request.get_json(silent=True)
        if isinstance(body, dict):
            details["fields"] = sorted(body)
    for arg, value in (request.view_args or {}).items():
        if arg != spec.id_arg:
            details[arg] = str(value)
    return details


def record_change(spec: Audit, response: Response) -> None:
    """Record the change ``response`` answered, if it succeeded."""
    principal = g.get("principal")
    if principal is None or not 200 <= response.status_code < 300:
        return
    answer = response.get_json(silent=True) if response.is_json else None
    answer = answer if isinstance(answer, dict) else {}
    object_id = (request.view_args or {}).get(spec.id_arg) if spec.id_arg else answer.get("id")
    try:
        audit.record(
            current_app.extensions["ferry"].settings,
            principal,
            object_type=spec.object_type,
            object_id=str(object_id),
            action=spec.verb,
            source_ip=request.remote_addr or "",
            details=_details(spec, answer),
        )
    except Exception:
        # The change is committed; a lost entry is logged loudly rather than hidden.
        log.exception("audit entry not written: %s %s %s", spec.object_type, object_id, spec.verb)
