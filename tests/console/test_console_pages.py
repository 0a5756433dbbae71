"""Each console page, as admin, operator and viewer: what it shows, which buttons it offers
(none that would be refused), and that a refused action is refused."""

from __future__ import annotations

import re

import pytest

from common.settings import Settings
from tests.support.api import Api, instance_body
from tests.support.console import Account, add_user, make_account


@pytest.fixture
def world(acme_api: Api, registry_pair) -> dict:
    """Acme's two instances on real registries and a rule between them."""
    src, dst = registry_pair
    source = acme_api.instance("source", src)
    target = acme_api.instance("target", dst)
    rule = acme_api.rule("mirror-app", source, target, tag_filter="v.*")
    return {"source": source, "target": target, "rule": rule, "registries": (src, dst)}


def buttons(page: str) -> set[str]:
    return set(
        re.findall(
            r'id="((?:add|create|trigger|configure|delete|switch|stop|retry|block)'
            r'[\w-]*)"',
            page,
        )
    )


def test_instances_page_by_role(signed_in, world):
    admin = signed_in("admin")
    page = admin.get("/instances")
    for text in ("source", "target", "distribution", "Health", "last check", "Edit", "Check"):
        assert text in page
    assert "add-instance" in buttons(page)
    viewer = signed_in("viewer")
    page = viewer.get("/instances")
    assert "source" in page and "add-instance" not in page
    assert "/edit" not in page and "Check" in page  # checking reads only
    viewer.get("/instances/new", expect=403)
    viewer.get(f"/instances/{world['source']}/edit", expect=403)


def test_adding_an_instance_shows_the_secret_once_with_its_snippet(signed_in, registry_pair):
    src, _ = registry_pair
    admin = signed_in("admin")
    r = admin.post("/instances/new", {"name": "bad", "url": "ftp://x", "kind": "distribution"})
    page = r.get_data(as_text=True)
    assert r.status_code == 422 and 'data-field="url">' in page
    body = instance_body(src, "fresh")
    r = admin.post("/instances/new", {**body, "kind": "distribution", "max_concurrent_copies": 4})
    page = r.get_data(as_text=True)
    assert r.status_code == 201
    secret = re.search(r'id="webhook-secret">([^<]+)<', page).group(1)
    assert f"Authorization: [Bearer {secret}]" in page and "/api/v1/webhooks/" in page
    assert secret not in admin.get("/instances")
    r = admin.post("/instances/new", {**instance_body(src, "harb"), "kind": "harbor"})
    assert "Auth header:" in r.get_data(as_text=True)


def test_rules_page_offers_only_what_the_role_may(signed_in, world):
    url = f"/instances/{world['source']}/rules"
    admin = buttons(signed_in("admin").get(url))
    assert {
        "create-rule",
        "trigger-mirror-app",
        "configure-mirror-app",
        "delete-mirror-app",
        "switch-mirror-app",
    } <= admin
    operator = buttons(signed_in("operator").get(url))
    assert "trigger-mirror-app" in operator and "delete-mirror-app" not in operator
    viewer = signed_in("viewer")
    page = viewer.get(url)
    assert "mirror-app" in page and "v.*" in page and "never run" in page
    assert buttons(page) == set()
    viewer.get(f"/rules/{world['rule']}/delete", expect=403)
    assert viewer.post(f"/rules/{world['rule']}/trigger").status_code == 403


def test_rule_form_shows_the_api_errors_beside_their_fields(signed_in, world, acme_api: Api):
    admin = signed_in("admin")
    page = admin.get(f"/instances/{world['source']}/rules/new")
    for hint in ("whole", "team/sub1/sub2", "advise against"):
        assert hint in page
    order = [
        page.index(f'id="field-{f}"')
        for f in (
            "name",
            "description",
            "source_namespace",
            "repository_filter",
            "tag_filter",
            "resource_types",
            "cross_tenant",
            "target_namespace",
            "override",
            "schedule",
        )
    ]
    assert order == sorted(order)
    form = {
        "name": "Bad Name",
        "source_namespace": "project",
        "tag_filter": "v(",
        "filter_syntax": "regex",
        "resource_types": "image",
        "target_instance_id": world["target"],
        "schedule_timezone": "UTC",
        "enabled": "y",
    }
    r = admin.post(f"/instances/{world['source']}/rules/new", form)
    page = r.get_data(as_text=True)
    assert r.status_code == 422
    assert re.search(r'data-field="name">[^<]*(lowercase|letters)', page, re.I)
    assert 'data-field="tag_filter">invalid regular expression' in page
    r = admin.post(
        f"/instances/{world['source']}/rules/new", {**form, "name": "fixed", "tag_filter": "v.*"}
    )
    assert r.status_code == 302
    rules = acme_api.get("/rules")
    fixed = next(r for r in rules if r["name"] == "fixed")
    assert fixed["resource_types"] == ["image"] and fixed["source"]["tag_filter"] == "v.*"
    page = admin.get(f"/rules/{fixed['id']}/edit")
    assert 'value="fixed"' in page and 'id="preview"' in page
    signed_in("viewer").get(f"/instances/{world['source']}/rules/new", expect=403)


def test_switch_trigger_log_task_and_delete(signed_in, world, acme_api: Api):
    admin = signed_in("admin")
    rule = world["rule"]
    assert admin.post(f"/rules/{rule}/disable").status_code == 302
    assert acme_api.get(f"/rules/{rule}")["enabled"] is False
    r = admin.post(f"/rules/{rule}/trigger")
    assert r.status_code == 302 and acme_api.get(f"/rules/{rule}/tasks") == []
    admin.post(f"/rules/{rule}/enable")
    r = admin.post(f"/rules/{rule}/trigger")
    assert r.headers["Location"].endswith(f"/rules/{rule}/log")
    (task,) = acme_api.get(f"/rules/{rule}/tasks")
    page = admin.get(f"/rules/{rule}/log")
    assert task["task_id"] in page and 'class="progress running"' in page and "<svg" in page
    log = admin.client.get(f"/rules/{rule}/log.json").get_json()
    assert log["tasks"][0]["task_id"] == task["task_id"] and log["tasks"][0]["open"] is True
    page = admin.get(f"/tasks/{task['task_id']}")
    assert 'id="starter">user admin' in page and 'id="stop"' in page
    viewer = signed_in("viewer")
    page = viewer.get(f"/tasks/{task['task_id']}?status=failed")
    assert 'id="stop"' not in page and "No item with outcome failed" in page
    assert viewer.post(f"/tasks/{task['task_id']}/stop").status_code == 403
    assert admin.post(f"/tasks/{task['task_id']}/stop").status_code == 302
    assert acme_api.get(f"/tasks/{task['task_id']}")["status"] == "Stopped"
    assert "Delete rule mirror-app?" in admin.get(f"/rules/{rule}/delete")
    assert admin.post(f"/rules/{rule}/delete").status_code == 302
    acme_api.get(f"/rules/{rule}", expect=404)


def test_another_accounts_objects_are_not_found(settings: Settings, signed_in, world):
    other = make_account(settings, "other")
    from tests.support.console import Console

    console = Console(signed_in("admin").client.application.test_client())
    console.sign_in(other, "admin", other.admin_password)
    page = console.get(f"/rules/{world['rule']}/log", expect=404)
    assert "Not found" in page
    console.get(f"/instances/{world['source']}/rules", expect=404)


def test_incoming_rules_can_be_blocked_by_admins_only(
    settings: Settings, signed_in, world, account: Account, client, registry_pair
):
    from tests.support.api import tenant_api

    partner = tenant_api(client, settings, "partner-co")
    source = partner.instance("theirs", registry_pair[0])
    partner.rule(
        "into-acme",
        source,
        world["target"],
        cross_tenant=True,
        account_id=str(account.id),
        username="bob",
        password="bob-pw",
    )
    viewer = signed_in("viewer")
    page = viewer.get("/incoming")
    assert "into-acme" in page and "allowed" in page and buttons(page) == set()
    admin = signed_in("admin")
    assert "block-into-acme" in buttons(admin.get("/incoming"))
    assert viewer.post(f"/incoming/{partner.get('/rules')[0]['id']}/block").status_code == 403
    admin.post(f"/incoming/{partner.get('/rules')[0]['id']}/block")
    assert "blocked" in admin.get("/incoming")
    assert partner.get("/rules")[0]["health"] == "blocked by the target account"


def test_users_and_keys_for_admins(settings: Settings, signed_in, account: Account):
    signed_in("viewer").get("/users", expect=403)
    admin = signed_in("admin")
    page = admin.get("/users")
    assert "viewer-user" in page and "Add a user" in page
    r = admin.post("/users", {"name": "ci", "role": "operator", "password": "", "grants": "*"})
    assert r.status_code == 302 and "ci" in admin.get("/users")
    r = admin.post("/users", {"name": "Bad Name", "role": "viewer", "grants": "*"})
    assert r.status_code == 422 and 'data-field="name"' in r.get_data(as_text=True)
    add_user(settings, account, "temp", "viewer")
    row = r'data-user="([^"]+)".*?/users/([0-9a-f-]{36})/keys'
    rows = re.findall(row, admin.get("/users"), re.S)
    user_id = dict(rows)["temp"]
    r = admin.post(f"/users/{user_id}/keys", {"kind": "bearer", "description": "ci"})
    token = re.search(r'id="new-secret">([^<]+)<', r.get_data(as_text=True)).group(1)
    assert token not in admin.get(f"/users/{user_id}/keys")
    r = admin.post(f"/users/{user_id}/edit", {"role": "operator", "grants": "*"})
    assert r.status_code == 302 and '<small class="tag">operator</small>' in admin.get(
        f"/users/{user_id}/keys"
    )
    r = admin.post(f"/users/{user_id}/edit", {"role": "admin", "grants": "not-an-id"})
    assert r.status_code == 302 and "neither" in admin.get(f"/users/{user_id}/keys")
    operator = signed_in("operator")
    operator.get(f"/users/{user_id}/keys", expect=403)
    assert operator.post(f"/users/{user_id}/edit", {"role": "admin"}).status_code == 403


def test_instance_health_records_the_last_check(signed_in, acme_api: Api, registry_factory):
    registry = registry_factory({"carol": "carol-pw"})
    instance = acme_api.instance("flaky", registry)
    admin = signed_in("admin")
    assert "unreachable" not in admin.get("/instances")
    registry.stop()
    r = admin.post(f"/instances/{instance}/check")
    assert r.status_code == 302
    page = admin.get("/instances")
    assert "unreachable" in page and "no OCI registry answered" in page


def test_editing_an_instance_keeps_or_replaces_its_credentials(
    signed_in, world, acme_api: Api, registry_pair
):
    admin = signed_in("admin")
    url = f"/instances/{world['target']}/edit"
    page = admin.get(url)
    assert 'value="target"' in page and "Leave empty to keep the stored one." in page
    form = {
        "name": "target",
        "url": registry_pair[1].url,
        "kind": "distribution",
        "region": "eu-west",
        "username": "bob",
        "password": "",
        "verify_tls": "y",
        "max_concurrent_copies": "8",
    }
    assert admin.post(url, form).status_code == 302
    assert acme_api.get(f"/instances/{world['target']}")["region"] == "eu-west"
    r = admin.post(url, {**form, "password": "wrong-password"})
    assert r.status_code == 422 and 'data-field="password"' in r.get_data(as_text=True)
    assert admin.post(url, {**form, "password": "bob-pw"}).status_code == 302
    signed_in("viewer").get(f"/rules/{world['rule']}/edit", expect=403)


def test_rule_form_carries_versions_age_referrers_and_deletion(signed_in, world, acme_api: Api):
    admin = signed_in("admin")
    page = admin.get(f"/instances/{world['source']}/rules/new")
    assert "Deleted images cannot be recovered" in page
    assert 'name="include_referrers" checked' in page or 'checked id="include_referrers"' in page
    form = {
        "name": "versions",
        "source_namespace": "project",
        "filter_syntax": "glob",
        "semver": ">=1.2 <2",
        "latest": "many",
        "resource_types": "image",
        "target_instance_id": world["target"],
        "schedule_timezone": "UTC",
        "deletion": "y",
        "enabled": "y",
    }
    r = admin.post(f"/instances/{world['source']}/rules/new", form)
    assert r.status_code == 422
    assert 'data-field="latest">' in r.get_data(as_text=True)
    r = admin.post(f"/instances/{world['source']}/rules/new", {**form, "latest": "3"})
    assert r.status_code == 302
    rule = next(r for r in acme_api.get("/rules") if r["name"] == "versions")
    assert (rule["source"]["semver"], rule["source"]["latest"]) == (">=1.2 <2", 3)
    # An unchecked box is absent from a browser's form: referrers off, deletion on.
    assert (rule["include_referrers"], rule["deletion"]) == (False, True)
    page = admin.get(f"/rules/{rule['id']}/edit")
    assert 'value="&gt;=1.2 &lt;2"' in page and 'value="3"' in page
    listing = admin.get(f"/instances/{world['source']}/rules")
    assert f'data-label="No.">{rule["number"]}<' in listing


def test_an_empty_preview_says_which_filter_excluded_what(signed_in, world, acme_api: Api):
    from tests.support.oci import push_image

    registry = world["registries"][0]  # the source instance's
    push_image(registry.session(), registry.url, "why/app", "v1.0")
    rule = acme_api.rule(
        "why-empty", world["source"], world["target"], namespace="why", tag_filter="^v",
        filter_syntax="regex",
    )  # fmt: skip
    page = signed_in("viewer").get(f"/rules/{rule}/preview?fragment=1")
    assert "Nothing matches now." in page
    why = re.search(r'id="preview-why">([^<]*)<', page)
    assert why and "tag_filter" in why.group(1) and "v1.0" in why.group(1)
