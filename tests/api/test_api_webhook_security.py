"""Webhook receivers: secrets expire after rotation, NULs are a 400, deliveries are
rate-limited per instance (issue 16, #11)."""

from __future__ import annotations

from dataclasses import replace

from tests.support.api import assert_error, post_webhook


def _event(tag: str = "v1") -> dict:
    return {
        "events": [
            {
                "id": f"ev-{tag}",
                "action": "push",
                "target": {
                    "mediaType": "application/vnd.oci.image.manifest.v1+json",
                    "repository": "project/app",
                    "tag": tag,
                    "digest": "sha256:" + "a" * 64,
                },
            }
        ]
    }


def _pull(name: str) -> dict:
    event = _event(name)
    event["events"][0]["action"] = "pull"
    return event


def test_the_previous_secret_works_during_the_grace_period_only(alice, client, registry, db):
    inst = alice.create_instance(registry)
    first = inst["webhook_secret"]
    second = alice.post(f"/instances/{inst['id']}/webhook-secret", expect=200)["webhook_secret"]
    assert post_webhook(client, inst["id"], _event("a"), first).status_code == 202
    # The grace period (24 h by default) ends.
    db.execute(
        "UPDATE instances SET webhook_secret_prev_expires_at = now() - interval '1 second' "
        "WHERE id = %s",
        (inst["id"],),
    )
    assert_error(post_webhook(client, inst["id"], _event("b"), first), 401)
    assert post_webhook(client, inst["id"], _event("c"), second).status_code == 202


def test_rotation_can_revoke_the_previous_secret_at_once(alice, client, registry):
    inst = alice.create_instance(registry)
    leaked = inst["webhook_secret"]
    path = f"/instances/{inst['id']}/webhook-secret?revoke_previous=true"
    fresh = alice.post(path, expect=200)["webhook_secret"]
    assert_error(post_webhook(client, inst["id"], _event("a"), leaked), 401)
    assert post_webhook(client, inst["id"], _event("b"), fresh).status_code == 202
    assert_error(
        alice.request("POST", f"/instances/{inst['id']}/webhook-secret?revoke_previous=x"), 422
    )


def test_a_zero_grace_setting_revokes_on_every_rotation(settings, registry):
    from api.app import create_app
    from tests.support.api import tenant_api

    app = create_app(replace(settings, webhook_secret_grace=0))
    client = app.test_client()
    api = tenant_api(client, settings, "zero-grace")
    inst = api.create_instance(registry)
    api.post(f"/instances/{inst['id']}/webhook-secret", expect=200)
    assert_error(post_webhook(client, inst["id"], _event(), inst["webhook_secret"]), 401)


def test_a_nul_in_the_payload_is_a_400(alice, client, registry):
    inst = alice.create_instance(registry)
    secret = inst["webhook_secret"]
    body = assert_error(post_webhook(client, inst["id"], _event("v1\x00"), secret), 400)
    assert "NUL" in body["message"]
    nul_key = {"events": [], "x\x00": 1}
    assert_error(post_webhook(client, inst["id"], nul_key, secret), 400)
    deep = b'{"events": ' + b"[" * 100_000 + b"]" * 100_000 + b"}"
    assert_error(post_webhook(client, inst["id"], deep, secret), 400)


def test_deliveries_are_rate_limited_per_instance(settings, registry):
    from api.app import create_app
    from tests.support.api import tenant_api

    app = create_app(replace(settings, webhook_rate_limit="3/minute"))
    client = app.test_client()
    api = tenant_api(client, settings, "limited")
    busy, calm = api.create_instance(registry, "busy"), api.create_instance(registry, "calm")
    # Pulls (Distribution reports every one, Ferry's own syncs included) are not counted.
    for i in range(5):
        r = post_webhook(client, busy["id"], _pull(f"p{i}"), busy["webhook_secret"])
        assert r.status_code == 202 and r.get_json()["ignored"] == 1, r.get_json()
    for i in range(3):
        r = post_webhook(client, busy["id"], _event(f"t{i}"), busy["webhook_secret"])
        assert r.status_code == 202, r.get_json()
    r = post_webhook(client, busy["id"], _event("t9"), busy["webhook_secret"])
    assert_error(r, 429)
    assert int(r.headers["Retry-After"]) > 0
    assert post_webhook(client, calm["id"], _event("t0"), calm["webhook_secret"]).status_code == 202
    # Counted in Redis: a second API process shares the count.
    other = create_app(replace(settings, webhook_rate_limit="3/minute")).test_client()
    assert_error(post_webhook(other, busy["id"], _event("t8"), busy["webhook_secret"]), 429)
