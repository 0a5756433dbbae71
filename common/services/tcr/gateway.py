"""One signed call of the TCR-compatible API: authenticate, authorize, run, answer.

The view hands over the raw request (:class:`Call`); this module checks the
TC3 signature with the caller's SecretKey, the role's permission for the
action (the same :class:`Action` the JSON API route needs), runs the action
and returns the envelope. Every failure is an envelope with a code the SDKs
know; nothing here raises.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from common import db as database
from common import errors as ferr
from common.db import keys as qk
from common.domain import tcr
from common.domain.permissions import Action, Principal
from common.security import tc3
from common.security.crypto import SecretBox
from common.security.tc3 import ApiError
from common.services.tcr import records, replication
from common.services.tcr.context import Context
from common.services.tcr.params import Params
from common.services.tenants import principal_from_row
from common.settings import Settings

log = logging.getLogger(__name__)

Handler = Callable[[Context, Params], dict[str, Any]]
# Each action, the permission it needs (as the matching JSON API route), and its use case.
ACTIONS: dict[str, tuple[Action, Handler]] = {
    "ManageReplication": (Action.RULE_CREATE, replication.manage),
    "ModifyReplication": (Action.RULE_UPDATE, replication.modify),
    "DeleteReplicationRule": (Action.RULE_DELETE, replication.delete),
    "DescribeReplicationPolicies": (Action.RULE_READ, replication.describe_policies),
    "DescribeReplicationExecutions": (Action.TASK_READ, records.describe_executions),
    "DescribeReplicationTasks": (Action.TASK_READ, records.describe_tasks),
    "DescribeInstances": (Action.INSTANCE_READ, records.describe_instances),
}


@dataclass(frozen=True)
class Call:
    """A request as received: ``headers`` keyed by lowercase name, ``body`` as sent."""

    method: str
    path: str
    query: str
    headers: Mapping[str, str]
    body: bytes = field(repr=False)
    source_ip: str = ""


def _signer(settings: Settings, secret_id: str) -> tuple[dict[str, Any], str]:
    """The key row and SecretKey of a live SecretId; AuthFailure.SecretIdNotFound otherwise."""
    with database.transaction(settings) as conn:
        found = qk.principal_for_secret_id(conn, secret_id)
    if found is None:
        raise ApiError(
            "AuthFailure.SecretIdNotFound",
            "the SecretId is unknown, revoked or expired",
        )
    return found, SecretBox(settings).decrypt(found["secret_key_enc"])


def authenticate(settings: Settings, call: Call, now: dt.datetime) -> Principal:
    """Who signed ``call``: parse, check the clock, find the key, check the signature."""
    if call.headers.get("x-tc-token"):
        raise ApiError("AuthFailure.TokenFailure", "Ferry has no temporary credentials")
    if call.headers.get("x-tc-content-sha256", "").upper() == "UNSIGNED-PAYLOAD":
        raise ApiError("AuthFailure.InvalidAuthorization", "the body must be signed")
    credential = tc3.parse_authorization(call.headers.get("authorization", ""), tcr.SERVICE)
    timestamp = tc3.check_timestamp(call.headers.get("x-tc-timestamp", ""), credential, now)
    found, secret_key = _signer(settings, credential.secret_id)
    canonical = tc3.canonical_request(
        call.method, call.path, call.query, call.headers, credential.signed_headers, call.body
    )
    tc3.verify(secret_key, credential, timestamp, canonical)
    if found["use_stale"]:
        # Only a verified request counts as a use of the key.
        database.in_transaction(settings, qk.touch_key, found["key_id"])
    return principal_from_row(found)


def _action(call: Call) -> tuple[Action, Handler]:
    name = call.headers.get("x-tc-action", "")
    if not name:
        raise ApiError("MissingParameter", "the X-TC-Action header is missing")
    version = call.headers.get("x-tc-version", "")
    if version and version != tcr.API_VERSION:
        raise ApiError("NoSuchVersion", f"tcr speaks version {tcr.API_VERSION}, not {version!r}")
    if name not in ACTIONS:
        raise ApiError("InvalidAction", f"unknown action {name!r} (or not offered by Ferry)")
    return ACTIONS[name]


def _params(call: Call) -> Params:
    content_type = call.headers.get("content-type", "").split(";")[0].strip().lower()
    if content_type != "application/json":
        raise ApiError("InvalidParameter", "send the parameters as a JSON body")
    try:
        values = json.loads(call.body or b"{}")
    except ValueError:
        raise ApiError("InvalidParameter", "the body is not valid JSON") from None
    if not isinstance(values, dict):
        raise ApiError("InvalidParameter", "the body must be a JSON object")
    return Params(values)


def _translated(exc: ferr.FerryError) -> ApiError:
    """A Ferry error in the product's codes, fields named as the product's parameters."""
    if isinstance(exc, ferr.ValidationError) and exc.errors:
        if all(f.endswith("instance_id") for f in exc.errors):
            code = "ResourceNotFound"
        else:
            code = "InvalidParameterValue"
        detail = "; ".join(
            f"{tcr.PARAMETER_OF_FIELD.get(f, f)}: {' '.join(m)}"
            for f, m in sorted(exc.errors.items())
        )
        return ApiError(code, detail)
    for kind, code in (
        (ferr.NotFound, "ResourceNotFound"),
        (ferr.Conflict, "ResourceInUse"),
        (ferr.ValidationError, "InvalidParameterValue"),
        (ferr.DatabaseError, "InternalError"),
    ):
        if isinstance(exc, kind):
            return ApiError(code, exc.message or type(exc).__name__)
    return ApiError("FailedOperation", exc.message or type(exc).__name__)


def handle(settings: Settings, call: Call, now: dt.datetime | None = None) -> dict[str, Any]:
    """The envelope answering ``call``."""
    request_id = tc3.new_request_id()
    try:
        principal = authenticate(settings, call, now or dt.datetime.now(dt.UTC))
        action, handler = _action(call)
        if not principal.can(action):
            raise ApiError(
                "UnauthorizedOperation",
                f"user {principal.user_name} (role {principal.role}) may not {action}",
            )
        data = handler(Context(settings, principal, call.source_ip), _params(call))
        return tc3.answer(data, request_id)
    except ApiError as exc:
        return tc3.error_answer(exc, request_id)
    except ferr.FerryError as exc:
        return tc3.error_answer(_translated(exc), request_id)
    except Exception:
        log.exception("TCR-compatible call failed (RequestId %s)", request_id)
        error = ApiError(
            "InternalError", f"internal error; the server log has RequestId {request_id}"
        )
        return tc3.error_answer(error, request_id)
