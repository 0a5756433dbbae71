"""TC3-HMAC-SHA256 as the official SDK signs it: verified, tampering and skew refused."""

from __future__ import annotations

import datetime as dt
from typing import Any

import pytest
from tencentcloud.common import credential
from tencentcloud.common.http.request import RequestInternal
from tencentcloud.common.profile.client_profile import ClientProfile
from tencentcloud.common.profile.http_profile import HttpProfile
from tencentcloud.tcr.v20190924 import tcr_client

from common.security import tc3
from common.security.tc3 import ApiError

SECRET_ID, SECRET_KEY = "AKIDtest", "not-a-real-secret-key"


def sdk_signed(params: dict[str, Any], endpoint: str = "127.0.0.1:8000") -> RequestInternal:
    """The request the SDK's own code builds and signs for DescribeInstances."""
    profile = ClientProfile(httpProfile=HttpProfile(protocol="http", endpoint=endpoint))
    client = tcr_client.TcrClient(credential.Credential(SECRET_ID, SECRET_KEY), "ap-x", profile)
    req = RequestInternal(endpoint, "POST", "/", header={})
    client._build_req_with_tc3_signature("DescribeInstances", params, req)
    return req


def check(req: RequestInternal, secret_key: str = SECRET_KEY, body: str | None = None) -> str:
    """Verify ``req`` as Ferry does; the SecretId it was signed with."""
    headers = {k.lower(): v for k, v in req.header.items()}
    cred = tc3.parse_authorization(headers["authorization"], "tcr")
    ts = tc3.check_timestamp(headers["x-tc-timestamp"], cred, dt.datetime.now(dt.UTC))
    payload = (req.data if body is None else body).encode()
    canonical = tc3.canonical_request("POST", "/", "", headers, cred.signed_headers, payload)
    tc3.verify(secret_key, cred, ts, canonical)
    return cred.secret_id


def test_a_request_the_sdk_signed_verifies():
    assert check(sdk_signed({"Registryids": ["a"], "Limit": 5})) == SECRET_ID


@pytest.mark.parametrize(
    ("change", "code"),
    [
        ({"secret_key": SECRET_KEY + "x"}, "AuthFailure.SignatureFailure"),
        ({"body": '{"Registryids": ["b"], "Limit": 5}'}, "AuthFailure.SignatureFailure"),
    ],
)
def test_another_key_or_a_changed_body_fails(change, code):
    with pytest.raises(ApiError) as caught:
        check(sdk_signed({"Registryids": ["a"], "Limit": 5}), **change)
    assert caught.value.code == code


def test_another_host_fails():
    req = sdk_signed({})
    req.header["Host"] = "ferry.example.com"
    with pytest.raises(ApiError, match="SignatureFailure"):
        check(req)


@pytest.mark.parametrize(("skew", "ok"), [(-299, True), (299, True), (-301, False), (301, False)])
def test_the_clock_window_is_five_minutes(skew, ok):
    now = dt.datetime(2026, 5, 1, 12, 0, tzinfo=dt.UTC)
    signed = int(now.timestamp()) + skew
    cred = tc3.Credential(SECRET_ID, "2026-05-01", "tcr", ("content-type", "host"), "0" * 64)
    if ok:
        assert tc3.check_timestamp(str(signed), cred, now) == signed
    else:
        with pytest.raises(ApiError) as caught:
            tc3.check_timestamp(str(signed), cred, now)
        assert caught.value.code == "AuthFailure.SignatureExpire"


@pytest.mark.parametrize(
    "header",
    [
        "",
        "Bearer abc",
        "TC3-HMAC-SHA256 Credential=AKID/2026-05-01/cvm/tc3_request, "
        "SignedHeaders=content-type;host, Signature=" + "0" * 64,
        "TC3-HMAC-SHA256 Credential=AKID/2026-05-01/tcr/tc3_request, SignedHeaders=content-type, "
        "Signature=" + "0" * 64,
        "TC3-HMAC-SHA256 Credential=AKID/2026-05-01/tcr/tc3_request, Signature=" + "0" * 64,
    ],
)
def test_malformed_authorization_is_invalid(header):
    with pytest.raises(ApiError) as caught:
        tc3.parse_authorization(header, "tcr")
    assert caught.value.code == "AuthFailure.InvalidAuthorization"


def test_the_envelopes():
    error = tc3.error_answer(ApiError("InvalidAction", "no"), "r-1")
    assert error == {
        "Response": {"Error": {"Code": "InvalidAction", "Message": "no"}, "RequestId": "r-1"}
    }
    assert tc3.answer({"TotalCount": 0}, "r-2") == {
        "Response": {"TotalCount": 0, "RequestId": "r-2"}
    }
