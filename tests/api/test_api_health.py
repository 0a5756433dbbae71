"""The API skeleton: health, readiness, one error body, the OpenAPI document."""

from __future__ import annotations

from openapi_spec_validator import validate


def test_healthz(client):
    r = client.get("/healthz")
    assert r.status_code == 200
    assert r.get_json()["status"] == "ok"


def test_readyz_ok_with_database_and_redis(client):
    r = client.get("/readyz")
    assert r.status_code == 200, r.get_json()
    assert r.get_json()["checks"] == {"postgresql": "ok", "migrations": "ok", "redis": "ok"}


def test_readyz_503_when_database_unreachable(unreachable_settings):
    from api.app import create_app

    r = create_app(unreachable_settings).test_client().get("/readyz")
    assert r.status_code == 503
    body = r.get_json()
    assert set(body) == {"code", "status", "message", "errors"}
    assert body["code"] == 503
    assert "PostgreSQL is unreachable" in body["message"]
    assert "postgresql" in body["errors"]


def test_readyz_503_when_migrations_pending(settings, db):
    from api.app import create_app

    db.execute("DELETE FROM ferry_migrations WHERE version = 1")
    try:
        r = create_app(settings).test_client().get("/readyz")
        assert r.status_code == 503
        assert "pending" in r.get_json()["errors"]["migrations"][0]
    finally:
        db.execute("INSERT INTO ferry_migrations (version, name) VALUES (1, 'initial')")


def test_errors_share_one_body(client):
    for r, code in ((client.get("/no/such/path"), 404), (client.delete("/healthz"), 405)):
        assert r.status_code == code
        body = r.get_json()
        assert set(body) == {"code", "status", "message", "errors"}
        assert body["code"] == code


def test_unexpected_error_is_500_with_the_body_and_no_traceback(app):
    @app.get("/boom")
    def boom():
        raise RuntimeError("secret internals")

    r = app.test_client().get("/boom")
    assert r.status_code == 500
    body = r.get_json()
    assert body["code"] == 500
    assert "secret internals" not in r.get_data(as_text=True)
    assert "Traceback" not in r.get_data(as_text=True)


def test_openapi_document_is_valid_and_docs_are_served(client):
    r = client.get("/api/openapi.json")
    assert r.status_code == 200
    spec = r.get_json()
    validate(spec)
    assert "/readyz" in spec["paths"]
    docs = client.get("/api/docs")
    assert docs.status_code == 200
    assert b"swagger-ui" in docs.data
    assert client.get("/api/docs/static/swagger-ui-bundle.js").status_code == 200
