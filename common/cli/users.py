"""``ferry users`` and ``ferry audit``: the account's users, their keys and the audit log,
through the API (FERRY_URL, FERRY_TOKEN of an admin)."""

from __future__ import annotations

import json
import uuid
from collections.abc import Sequence
from typing import Any

import click

from common.cli.apiclient import FerryApi
from common.domain.vocab import KeyKind, Role
from common.errors import NotFound
from common.settings import load_settings


def _table(header: Sequence[str], rows: list[Sequence[Any]]) -> None:
    table = [tuple(header), *(tuple("-" if v is None else str(v) for v in r) for r in rows)]
    widths = [max(len(r[i]) for r in table) for i in range(len(header))]
    for r in table:
        click.echo("  ".join(v.ljust(w) for v, w in zip(r, widths, strict=True)).rstrip())


def _all(api: FerryApi, path: str, **params: Any) -> list[dict]:
    """Every item of a paginated list."""
    found, page = [], 1
    while True:
        rows = api.call("GET", path, params={**params, "page": page, "page_size": 200})
        found += rows
        if len(rows) < 200:
            return found
        page += 1


def resolve_user(api: FerryApi, user: str) -> dict:
    """A user by id, or by name."""
    try:
        uuid.UUID(user)
        return api.call("GET", f"/users/{user}")
    except ValueError:
        pass
    for row in _all(api, "/users"):
        if row["name"] == user:
            return row
    raise NotFound(f"no user named {user!r}")


def _grants(values: tuple[str, ...]) -> list[str] | None:
    return list(values) if values else None


@click.group("users")
def users_command() -> None:
    """Users of your account and their API keys (needs an admin's FERRY_TOKEN)."""


@users_command.command("list")
def users_list() -> None:
    """List the users: name, role, grants."""
    rows = _all(FerryApi(load_settings()), "/users")
    _table(
        ("ID", "NAME", "ROLE", "GRANTS", "PASSWORD"),
        [
            (
                u["id"],
                u["name"],
                u["role"],
                ",".join(u["grants"]),
                "yes" if u["has_password"] else "no",
            )
            for u in rows
        ],
    )


@users_command.command("create")
@click.argument("name")
@click.option("--role", type=click.Choice([r.value for r in Role]), required=True)
@click.option("--grant", "grants", multiple=True, help="An instance id (repeat), or '*' (default).")
@click.option("--password", "ask_password", is_flag=True, help="Prompt for a console password.")
@click.option("--key/--no-key", default=True, show_default=True, help="Also create a bearer key.")
def users_create(
    name: str, role: str, grants: tuple[str, ...], ask_password: bool, key: bool
) -> None:
    """Create user NAME; prints its id and, with --key, its API token once."""
    api = FerryApi(load_settings())
    body: dict[str, Any] = {"name": name, "role": role}
    if grants:
        body["grants"] = list(grants)
    if ask_password:
        body["password"] = click.prompt("password", hide_input=True, confirmation_prompt=True)
    user = api.call("POST", "/users", json=body)
    click.echo(f"user id:   {user['id']}")
    if key:
        new = api.call("POST", f"/users/{user['id']}/keys", json={})
        click.echo(f"API token: {new['token']}")
        click.echo("The token is shown only now.", err=True)


@users_command.command("update")
@click.argument("user")
@click.option("--role", type=click.Choice([r.value for r in Role]))
@click.option("--grant", "grants", multiple=True, help="Replace the grants (repeat; '*' for all).")
@click.option("--rename", help="A new name.")
@click.option("--password", "ask_password", is_flag=True, help="Prompt for a new password.")
def users_update(
    user: str, role: str | None, grants: tuple[str, ...], rename: str | None, ask_password: bool
) -> None:
    """Change USER (id or name)."""
    api = FerryApi(load_settings())
    found = resolve_user(api, user)
    body: dict[str, Any] = {}
    if role:
        body["role"] = role
    if grants:
        body["grants"] = list(grants)
    if rename:
        body["name"] = rename
    if ask_password:
        body["password"] = click.prompt("password", hide_input=True, confirmation_prompt=True)
    if not body:
        raise click.UsageError("nothing to change: give --role, --grant, --rename or --password")
    changed = api.call("PATCH", f"/users/{found['id']}", json=body)
    click.echo(f"{changed['name']}: {changed['role']}, grants {','.join(changed['grants'])}")


@users_command.command("delete")
@click.argument("user")
def users_delete(user: str) -> None:
    """Delete USER (id or name) and revoke its keys."""
    api = FerryApi(load_settings())
    found = resolve_user(api, user)
    api.call("DELETE", f"/users/{found['id']}")
    click.echo(f"deleted user {found['name']}")


@users_command.group("keys")
def keys_group() -> None:
    """API keys of a user."""


@keys_group.command("list")
@click.argument("user")
def keys_list(user: str) -> None:
    """The unrevoked keys of USER: prefix, created, last used, expiry."""
    api = FerryApi(load_settings())
    found = resolve_user(api, user)
    rows = _all(api, f"/users/{found['id']}/keys")
    _table(
        ("ID", "KIND", "PREFIX", "CREATED", "LAST USED", "EXPIRES", "DESCRIPTION"),
        [
            (
                k["id"],
                k["kind"],
                k["prefix"] or "(from before keys had prefixes)",
                (k["created_at"] or "")[:19],
                (k["last_used_at"] or "-")[:19],
                (k["expires_at"] or "never")[:19],
                k["description"],
            )
            for k in rows
        ],
    )


def _print_new(new: dict, as_json: bool) -> None:
    if as_json:
        keep = ("id", "kind", "prefix", "token", "secret_id", "secret_key", "expires_at")
        click.echo(json.dumps({k: new.get(k) for k in keep}))
        return
    click.echo(f"key id:    {new['id']}")
    if new.get("token"):
        click.echo(f"API token: {new['token']}")
    else:
        click.echo(f"SecretId:  {new['secret_id']}")
        click.echo(f"SecretKey: {new['secret_key']}")
    click.echo("The secret is shown only now.", err=True)


@keys_group.command("create")
@click.argument("user")
@click.option("--kind", type=click.Choice([k.value for k in KeyKind]), default=KeyKind.BEARER.value)
@click.option("--description", default="")
@click.option("--expires-at", help="ISO 8601 time with a zone, e.g. 2027-01-31T00:00:00Z.")
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object for scripts.")
def keys_create(
    user: str, kind: str, description: str, expires_at: str | None, as_json: bool
) -> None:
    """Create a key of USER; its secret is printed once."""
    api = FerryApi(load_settings())
    found = resolve_user(api, user)
    body = {"kind": kind, "description": description, "expires_at": expires_at}
    _print_new(api.call("POST", f"/users/{found['id']}/keys", json=body), as_json)


@keys_group.command("revoke")
@click.argument("user")
@click.argument("key_id")
def keys_revoke(user: str, key_id: str) -> None:
    """Revoke KEY_ID of USER: its next request is refused."""
    api = FerryApi(load_settings())
    found = resolve_user(api, user)
    api.call("DELETE", f"/users/{found['id']}/keys/{key_id}")
    click.echo(f"revoked key {key_id}")


@keys_group.command("rotate")
@click.argument("user")
@click.argument("key_id")
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object for scripts.")
def keys_rotate(user: str, key_id: str, as_json: bool) -> None:
    """Revoke KEY_ID of USER and print its replacement once."""
    api = FerryApi(load_settings())
    found = resolve_user(api, user)
    _print_new(api.call("POST", f"/users/{found['id']}/keys/{key_id}/rotate"), as_json)


@click.command("audit")
@click.option("--object-type", help="rule, instance, task, user or key")
@click.option("--object-id")
@click.option("--user", help="Only changes by this user (id or name).")
@click.option("--limit", default=50, show_default=True, type=click.IntRange(1, 200))
def audit_command(
    object_type: str | None, object_id: str | None, user: str | None, limit: int
) -> None:
    """The audit log of your account, newest first."""
    api = FerryApi(load_settings())
    params: dict[str, Any] = {"page_size": limit}
    if object_type:
        params["object_type"] = object_type
    if object_id:
        params["object_id"] = object_id
    if user:
        params["user_id"] = resolve_user(api, user)["id"]
    rows = api.call("GET", "/audit", params=params)
    _table(
        ("AT", "USER", "ACTION", "OBJECT", "ID", "FROM"),
        [
            (
                e["at"][:19],
                e["user_name"],
                e["action"],
                e["object_type"],
                e["object_id"],
                e["source_ip"],
            )
            for e in rows
        ],
    )
