"""The audit log: every change of one scripted session, exactly, and never a secret."""

from __future__ import annotations

from tests.support.api import Api, assert_error, leaks, raw_rows_text, tenant_api

IP = "127.0.0.1"  # Flask's test client


def _rows(api, **query):
    entries = api.get("/audit", query_string={"page_size": 200, **query})
    return [
        (
            e["user_name"],
            e["object_type"],
            e["object_id"],
            e["action"],
            e["source_ip"],
            e["details"],
        )
        for e in reversed(entries)
    ]


def _a_session(admin: Api, registry) -> tuple:
    """One admin's changes of every audited kind, with a refused one and reads between;
    what they made: (src, dst, rule, task, op, key, rotated, secret)."""
    src = admin.create_instance(registry, "src")
    dst = admin.instance("dst", registry)
    rule = admin.rule("sync", src["id"], dst, target_namespace="mirror")
    admin.post(f"/rules/{rule}/disable")
    admin.post(f"/rules/{rule}/enable")
    task = admin.trigger(rule)
    admin.post(f"/tasks/{task}/stop", expect=202)
    assert_error(admin.request("POST", f"/tasks/{task}/retry"), 409)  # refused: not recorded
    admin.patch(f"/rules/{rule}", {"description": "nightly", "override": True})
    op = admin.add_user("ci", "operator")
    key = admin.get(f"/users/{op.user_id}/keys")[0]
    rotated = admin.post(f"/users/{op.user_id}/keys/{key['id']}/rotate", expect=201)
    admin.delete(f"/users/{op.user_id}/keys/{rotated['id']}")
    admin.patch(
        f"/instances/{dst}", {"region": "ap-guangzhou", "password": "alice-pw", "username": "alice"}
    )
    secret = admin.post(f"/instances/{dst}/webhook-secret")["webhook_secret"]
    admin.patch(f"/users/{op.user_id}", {"role": "viewer", "password": "a-new-password"})
    admin.get(f"/rules/{rule}")  # reads are not changes
    admin.delete(f"/rules/{rule}")
    admin.delete(f"/users/{op.user_id}")
    return src, dst, rule, task, op, key, rotated, secret


def test_the_audit_rows_of_one_session(client, settings, registry):
    admin = tenant_api(client, settings, "acme")
    me = admin.get("/users")[0]["id"]
    src, dst, rule, task, op, key, rotated, secret = _a_session(admin, registry)

    a = "admin"
    assert _rows(admin) == [
        (a, "instance", src["id"], "create", IP, {"name": "src"}),
        (a, "instance", dst, "create", IP, {"name": "dst"}),
        (a, "rule", rule, "create", IP, {"name": "sync"}),
        (a, "rule", rule, "disable", IP, {}),
        (a, "rule", rule, "enable", IP, {}),
        (a, "rule", rule, "trigger", IP, {"task_id": task}),
        (a, "task", task, "stop", IP, {}),
        (a, "rule", rule, "update", IP, {"fields": ["description", "override"]}),
        (a, "user", op.user_id, "create", IP, {"name": "ci", "role": "operator"}),
        (
            a,
            "key",
            key["id"],
            "create",
            IP,
            {"kind": "bearer", "prefix": key["prefix"], "user_id": op.user_id},
        ),
        (a, "key", key["id"], "rotate", IP, {"id": rotated["id"], "user_id": op.user_id}),
        (a, "key", rotated["id"], "revoke", IP, {"user_id": op.user_id}),
        (a, "instance", dst, "update", IP, {"fields": ["password", "region", "username"]}),
        (a, "instance", dst, "rotate-webhook-secret", IP, {}),
        (a, "user", op.user_id, "update", IP, {"fields": ["password", "role"]}),
        (a, "rule", rule, "delete", IP, {}),
        (a, "user", op.user_id, "delete", IP, {}),
    ]
    assert [r[3] for r in _rows(admin, object_type="rule", object_id=rule)] == [
        "create",
        "disable",
        "enable",
        "trigger",
        "update",
        "delete",
    ]
    assert _rows(admin, user_id=op.user_id) == []
    assert len(_rows(admin, user_id=me)) == 17
    audit_text = "\n".join(str(r) for r in _rows(admin))
    for value in ("alice-pw", "a-new-password", secret, rotated["token"], admin.tenant.token):
        assert not leaks(value, audit_text)
    assert not leaks("a-new-password", raw_rows_text(settings))


def test_changes_by_other_users_name_them_and_the_log_is_for_admins(client, settings, registry):
    admin = tenant_api(client, settings, "acme")
    src, dst = admin.instance("src", registry), admin.instance("dst", registry)
    rule = admin.rule("sync", src, dst, target_namespace="mirror")
    op = admin.add_user("ci", "operator")
    task = op.trigger(rule)
    assert _rows(admin, user_id=op.user_id) == [
        ("ci", "rule", rule, "trigger", IP, {"task_id": task})
    ]
    assert_error(op.request("GET", "/audit"), 403)
    other = tenant_api(client, settings, "globex")
    assert other.get("/audit") == []
