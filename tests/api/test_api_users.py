"""Users of an account through HTTP: create, list, change, delete; passwords as argon2id."""

from __future__ import annotations

from argon2 import PasswordHasher

from common.security.passwords import verify_password
from common.services.tenants import create_tenant
from tests.support.api import Api, Tenant, assert_error, leaks, raw_rows_text, tenant_api


def test_a_new_tenant_has_an_admin_user_with_a_password_and_a_token(client, settings, db):
    new = create_tenant(settings, "acme")
    row = db.execute(
        "SELECT name, role, grants, password_hash FROM users WHERE tenant_id = %s",
        (new.tenant_id,),
    ).fetchone()
    assert (row["name"], row["role"], row["grants"]) == ("admin", "admin", ["*"])
    assert row["password_hash"].startswith("$argon2id$")
    assert verify_password(row["password_hash"], new.password)
    assert not PasswordHasher().check_needs_rehash(row["password_hash"])
    admin = Api(client, Tenant(new.tenant_id, new.token))
    users = admin.get("/users")
    assert [(u["name"], u["role"], u["has_password"]) for u in users] == [("admin", "admin", True)]
    assert not leaks(new.password, raw_rows_text(settings))
    assert not leaks(new.token, raw_rows_text(settings))


def test_users_are_created_listed_changed_and_deleted(client, settings):
    admin = tenant_api(client, settings, "acme")
    created = admin.post(
        "/users", {"name": "ci", "role": "operator", "password": "correct horse"}, expect=201
    )
    assert set(created) == {
        "id",
        "name",
        "role",
        "grants",
        "has_password",
        "created_at",
        "updated_at",
    }
    assert (created["role"], created["grants"], created["has_password"]) == (
        "operator",
        ["*"],
        True,
    )
    assert_error(admin.request("POST", "/users", json={"name": "ci", "role": "viewer"}), 409)
    assert_error(admin.request("POST", "/users", json={"name": "CI!", "role": "viewer"}), 422)
    assert_error(admin.request("POST", "/users", json={"name": "x", "role": "root"}), 422, "role")
    short = {"name": "x", "role": "viewer", "password": "short"}
    assert_error(admin.request("POST", "/users", json=short), 422, "password")

    assert [u["name"] for u in admin.get("/users")] == ["admin", "ci"]
    uid = created["id"]
    changed = admin.patch(f"/users/{uid}", {"role": "viewer", "password": None})
    assert (changed["role"], changed["has_password"]) == ("viewer", False)
    assert admin.get(f"/users/{uid}")["role"] == "viewer"
    admin.delete(f"/users/{uid}")
    assert_error(admin.request("GET", f"/users/{uid}"), 404)


def test_the_last_admin_can_be_neither_demoted_nor_deleted(client, settings):
    admin = tenant_api(client, settings, "acme")
    me = admin.get("/users")[0]["id"]
    assert_error(admin.request("PATCH", f"/users/{me}", json={"role": "viewer"}), 409)
    assert_error(admin.request("DELETE", f"/users/{me}"), 409)
    other = admin.add_user("second", "admin")
    other.patch(f"/users/{me}", {"role": "operator"})
    assert_error(other.request("DELETE", f"/users/{other.user_id}"), 409)
    # The demoted first admin can no longer manage users.
    assert_error(admin.request("GET", "/users"), 403)


def test_another_accounts_users_are_404(client, settings):
    alice, bob = tenant_api(client, settings, "alice-co"), tenant_api(client, settings, "bob-co")
    alice_admin = alice.get("/users")[0]["id"]
    for method in ("GET", "PATCH", "DELETE"):
        assert_error(bob.request(method, f"/users/{alice_admin}", json={}), 404)
    assert_error(bob.request("GET", f"/users/{alice_admin}/keys"), 404)
    assert_error(bob.request("POST", f"/users/{alice_admin}/keys", json={}), 404)
