"""The Tencent Cloud API 3.0 protocol: TC3-HMAC-SHA256 signatures and the answer envelope.

What the official SDKs send (``tencentcloud.common.abstract_client``): a POST
with a JSON body, ``X-TC-Action``, ``X-TC-Timestamp`` (Unix seconds) and
``Authorization: TC3-HMAC-SHA256 Credential=<SecretId>/<date>/<service>/tc3_request,
SignedHeaders=content-type;host, Signature=<hex>``. The signature is an HMAC
chain over the canonical request (method, path, query, the signed headers,
the SHA-256 of the body). This module parses and checks that, and shapes the
answers as ``{"Response": {..., "RequestId"}}``; it knows nothing of Ferry's
objects, of Flask or of the database.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import hmac
import re
import uuid
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

ALGORITHM = "TC3-HMAC-SHA256"
# A request signed more than this far from the server's clock is refused (replays).
MAX_CLOCK_SKEW = dt.timedelta(minutes=5)
# Headers a signature must cover: without them a signed request could be re-aimed.
REQUIRED_SIGNED = ("content-type", "host")

_CREDENTIAL = re.compile(
    r"(?P<secret_id>[^/\s]{1,128})/(?P<date>\d{4}-\d{2}-\d{2})/(?P<service>[a-z0-9]{1,32})"
    r"/tc3_request"
)
_HEADER_NAME = re.compile(r"[a-z0-9-]{1,64}")
_HEX_SIGNATURE = re.compile(r"[0-9a-f]{64}")


class ApiError(Exception):
    """An error answered in the envelope: a code the SDKs know and a message."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(f"{code}: {message}")
        self.code = code
        self.message = message


@dataclass(frozen=True)
class Credential:
    """What the Authorization header of a request claims."""

    secret_id: str
    date: str
    service: str
    signed_headers: tuple[str, ...]
    signature: str = field(repr=False)


def new_request_id() -> str:
    """A RequestId for one answer."""
    return str(uuid.uuid4())


def answer(data: Mapping[str, Any], request_id: str) -> dict[str, Any]:
    """The success envelope."""
    return {"Response": {**data, "RequestId": request_id}}


def error_answer(error: ApiError, request_id: str) -> dict[str, Any]:
    """The error envelope (sent with HTTP 200, as the SDKs expect)."""
    return {
        "Response": {
            "Error": {"Code": error.code, "Message": error.message},
            "RequestId": request_id,
        }
    }


def _invalid(message: str) -> ApiError:
    return ApiError("AuthFailure.InvalidAuthorization", message)


def parse_authorization(header: str, service: str) -> Credential:
    """The parts of ``Authorization``; AuthFailure.InvalidAuthorization when malformed."""
    if not header:
        raise ApiError("AuthFailure.InvalidAuthorization", "the Authorization header is missing")
    algorithm, _, rest = header.strip().partition(" ")
    if algorithm != ALGORITHM:
        raise _invalid(f"only {ALGORITHM} signatures are accepted")
    parts: dict[str, str] = {}
    for piece in rest.split(","):
        key, sep, value = piece.strip().partition("=")
        if not sep or key in parts:
            raise _invalid("the Authorization header is malformed")
        parts[key] = value.strip()
    if set(parts) != {"Credential", "SignedHeaders", "Signature"}:
        raise _invalid("Authorization needs Credential, SignedHeaders and Signature")
    cred = _CREDENTIAL.fullmatch(parts["Credential"])
    if cred is None:
        raise _invalid("Credential must be <SecretId>/<YYYY-MM-DD>/<service>/tc3_request")
    if cred["service"] != service:
        raise _invalid(f"the credential scope names service {cred['service']!r}, not {service!r}")
    signed = tuple(parts["SignedHeaders"].split(";"))
    if not all(_HEADER_NAME.fullmatch(h) for h in signed) or len(signed) > 32:
        raise _invalid("SignedHeaders must be lowercase header names separated by ';'")
    missing = [h for h in REQUIRED_SIGNED if h not in signed]
    if missing:
        raise _invalid(f"SignedHeaders must include {', '.join(missing)}")
    if not _HEX_SIGNATURE.fullmatch(parts["Signature"]):
        raise ApiError("AuthFailure.SignatureFailure", "the signature is not a SHA-256 hex digest")
    return Credential(cred["secret_id"], cred["date"], cred["service"], signed, parts["Signature"])


def check_timestamp(value: str, credential: Credential, now: dt.datetime) -> int:
    """The request's X-TC-Timestamp, if within :data:`MAX_CLOCK_SKEW` of ``now`` and on the
    credential's date; AuthFailure.SignatureExpire (or MissingParameter) otherwise."""
    if not value:
        raise ApiError("MissingParameter", "the X-TC-Timestamp header is missing")
    if not value.isdigit() or len(value) > 12:
        raise ApiError("InvalidParameterValue", "X-TC-Timestamp must be Unix seconds")
    signed_at = dt.datetime.fromtimestamp(int(value), dt.UTC)
    if abs(now - signed_at) > MAX_CLOCK_SKEW:
        raise ApiError(
            "AuthFailure.SignatureExpire",
            f"the request was signed at {signed_at:%Y-%m-%dT%H:%M:%SZ}, more than "
            f"{int(MAX_CLOCK_SKEW.total_seconds() // 60)} minutes from the server's time "
            f"{now:%Y-%m-%dT%H:%M:%SZ}; check the client's clock",
        )
    if signed_at.strftime("%Y-%m-%d") != credential.date:
        raise _invalid("the credential date is not the UTC date of X-TC-Timestamp")
    return int(value)


def canonical_request(
    method: str,
    path: str,
    query: str,
    headers: Mapping[str, str],
    signed_headers: tuple[str, ...],
    payload: bytes,
) -> str:
    """The canonical request, as the SDKs build it; ``headers`` keyed by lowercase name."""
    lines = "".join(f"{name}:{headers.get(name, '').strip()}\n" for name in signed_headers)
    return "\n".join(
        (
            method.upper(),
            path or "/",
            query,
            lines,
            ";".join(signed_headers),
            hashlib.sha256(payload).hexdigest(),
        )
    )


def _hmac(key: bytes, message: str) -> bytes:
    return hmac.new(key, message.encode(), hashlib.sha256).digest()


def signature(secret_key: str, credential: Credential, timestamp: int, canonical: str) -> str:
    """The hex signature of ``canonical`` under ``secret_key``."""
    scope = f"{credential.date}/{credential.service}/tc3_request"
    to_sign = "\n".join(
        (ALGORITHM, str(timestamp), scope, hashlib.sha256(canonical.encode()).hexdigest())
    )
    key = _hmac(("TC3" + secret_key).encode(), credential.date)
    key = _hmac(key, credential.service)
    key = _hmac(key, "tc3_request")
    return hmac.new(key, to_sign.encode(), hashlib.sha256).hexdigest()


def verify(secret_key: str, credential: Credential, timestamp: int, canonical: str) -> None:
    """Return when the signature is right (compared in constant time);
    AuthFailure.SignatureFailure otherwise."""
    expected = signature(secret_key, credential, timestamp, canonical)
    if not hmac.compare_digest(expected.encode(), credential.signature.encode()):
        raise ApiError(
            "AuthFailure.SignatureFailure",
            "the signature does not match: check the SecretKey and that the request was "
            "not changed on the way",
        )
