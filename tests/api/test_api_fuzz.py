"""A property-based pass over the whole management API, generated from its OpenAPI document.

Schemathesis generates requests for every operation (bodies, query strings,
path parameters) and the API must never answer 5xx; every answer must also
match what the document says. Path parameters are pointed at real rows half of
the time, so the generated bodies reach the validation behind the 404s.
"""

from __future__ import annotations

import ipaddress
import socket
import zlib
from collections.abc import Iterator
from dataclasses import replace
from ipaddress import ip_network

import pytest
import schemathesis
from hypothesis import HealthCheck
from hypothesis import settings as hypothesis_settings
from openapi_spec_validator import validate
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from api.app import create_app
from common.settings import load_settings
from tests.support.api import rule_body, tenant_api
from tests.support.registry import RegistryServer

MAX_EXAMPLES = 40


@pytest.fixture
def offline_resolver(monkeypatch):
    """Public names fail to resolve at once, as offline; this machine's resolver takes 5 s.

    The document's examples (registry.example.com) are generated often; waiting for a
    resolver timeout on each would only slow the pass down.
    """
    real = socket.getaddrinfo

    def resolve(host, *args, **kwargs):
        try:
            ipaddress.ip_address(str(host).strip("[]"))
        except ValueError:
            if host != "localhost":
                raise socket.gaierror(socket.EAI_NONAME, "Name or service not known") from None
        return real(host, *args, **kwargs)

    monkeypatch.setattr(socket, "getaddrinfo", resolve)


@pytest.fixture(scope="module")
def registry() -> Iterator[RegistryServer]:
    """One registry for the whole pass (each operation gets fresh rows, not a new server)."""
    server = RegistryServer(users={"alice": "alice-pw"}).start()
    yield server
    server.cleanup()


@pytest.fixture
def fuzz_world(settings, registry, offline_resolver):
    """An app limited to loopback registries, a tenant with two instances and a rule."""
    # Generated URLs must fail fast: only loopback may be contacted, and it refuses quickly.
    limited = replace(
        settings, registry_allow_networks=(ip_network("127.0.0.0/8"), ip_network("::1/128"))
    )
    app = create_app(limited)
    app.config["TESTING"] = True
    api = tenant_api(app.test_client(), settings, "fuzz-co")
    src = api.create_instance(registry, "src")
    dst = api.create_instance(registry, "dst")
    rule = api.request(
        "POST",
        "/rules",
        json=rule_body(src["id"], dst["id"], "fuzz-rule", target_namespace="mirror"),
    ).get_json()
    return {
        "app": app,
        "tenant": api.tenant,
        "ids": {"instance_id": src["id"], "rule_id": rule["id"]},
        "instance_ids": (src["id"], dst["id"]),
    }


# The document does not depend on the database, so it is read at collection time from an
# app on default settings; each case is then sent to the test's own app. (schemathesis'
# from_fixture loader does not run under pytest 9.)
schema = schemathesis.openapi.from_wsgi("/api/openapi.json", create_app(load_settings({}))).include(
    path_regex=r"^/api/v1/"
)


def _point_at_real_rows(case, world) -> None:
    """Half of the cases use real ids, chosen by the generated data itself (reproducible)."""
    if zlib.crc32(repr(case.body).encode()) % 2:
        return
    for name, value in world["ids"].items():
        if name in (case.path_parameters or {}):
            case.path_parameters[name] = value
    body = case.body if isinstance(case.body, dict) else {}
    for part, instance_id in zip(("source", "target"), world["instance_ids"], strict=True):
        if isinstance(body.get(part), dict) and "instance_id" in body[part]:
            body[part]["instance_id"] = instance_id


@schema.parametrize()
@hypothesis_settings(
    max_examples=MAX_EXAMPLES, deadline=None, suppress_health_check=list(HealthCheck)
)
def test_no_server_errors_and_answers_match_the_document(case, fuzz_world):
    _point_at_real_rows(case, fuzz_world)
    response = case.call(app=fuzz_world["app"], headers=fuzz_world["tenant"].headers)
    assert response.status_code < 500, (
        case.method,
        case.formatted_path,
        case.body,
        response.text[:500],
    )
    case.validate_response(
        response,
        checks=[status_code_conformance, content_type_conformance, response_schema_conformance],
    )


MINE = ("/api/v1/instances", "/api/v1/rules")
NOT_MINE = ("/trigger", "/tasks", "/preview")


def test_the_document_is_openapi_3_with_examples_and_error_responses(client):
    spec = client.get("/api/openapi.json").get_json()
    validate(spec)
    assert spec["openapi"].startswith("3.")
    checked = 0
    for path, item in spec["paths"].items():
        if not path.startswith(MINE) or path.endswith(NOT_MINE):
            continue
        for method, op in item.items():
            if method not in ("get", "post", "put", "patch", "delete"):
                continue
            checked += 1
            where = (method, path)
            assert op.get("summary"), where
            responses = op["responses"]
            success = next(code for code in responses if code.startswith("2"))
            if success != "204":
                assert "example" in responses[success]["content"]["application/json"], where
            if "requestBody" in op:
                body = op["requestBody"]["content"]["application/json"]
                assert "example" in body or "examples" in body, where
                assert "422" in responses, where
            if "{" in path:
                assert "404" in responses, where
            assert {"401", "default"} <= set(responses), where
    assert checked == 16  # issue 15: /rules/{id}/drift and /rules/{id}/check
    error = spec["components"]["schemas"]["Error"]
    assert set(error["properties"]) == {"code", "status", "message", "errors"}
