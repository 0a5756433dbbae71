"""``ferry instances list|add|edit|rm``: the account's registries, through the API.

Passwords never go on the command line (shell history, ``ps``): they are read
from an environment variable (``--password-env NAME``) or prompted for.
"""

from __future__ import annotations

from typing import Any

import click

from common.cli.apiclient import FerryApi
from common.cli.output import json_option, print_fields, print_json, print_table
from common.domain.vocab import InstanceKind
from common.errors import ConfigError
from common.settings import load_settings, variable

KINDS = tuple(InstanceKind)
COLUMNS = ("ID", "NAME", "URL", "KIND", "REGION", "TLS", "MAX-COPIES", "USER")


def secret_from(env_name: str | None, ask: bool, what: str) -> str | None:
    """A password from the variable ``env_name`` or a prompt; None when neither is asked."""
    if env_name:
        value = variable(env_name)
        if not value:
            raise ConfigError(f"{env_name}: not set or empty (it should hold the {what})")
        return value
    if ask:
        return click.prompt(what, hide_input=True)
    return None


def _row(i: dict[str, Any]) -> tuple[Any, ...]:
    return (
        i["id"],
        i["name"],
        i["url"],
        i["kind"],
        i.get("region"),
        i["verify_tls"],
        i["max_concurrent_copies"],
        i.get("username"),
    )


def _show(instance: dict[str, Any], as_json: bool) -> None:
    if as_json:
        print_json(instance)
        return
    print_fields([(k.lower(), v) for k, v in zip(COLUMNS, _row(instance), strict=True)])


def _credentials(username: str | None, password_env: str | None, ask: bool) -> dict[str, Any]:
    password = secret_from(password_env, ask, "registry password")
    if (username is None) != (password is None):
        raise click.UsageError(
            "give --username with --password-env NAME or --ask-password (they change together)"
        )
    return {} if username is None else {"username": username, "password": password}


def _options(func):
    for option in reversed(
        (
            click.option("--url", help="Registry base URL, e.g. https://registry.example.com."),
            click.option("--region", help="Free-form region label."),
            click.option("--kind", type=click.Choice(KINDS), help="Registry flavour."),
            click.option("--verify-tls/--no-verify-tls", default=None, help="Check TLS."),
            click.option(
                "--max-copies",
                "max_concurrent_copies",
                type=click.IntRange(1, 256),
                help="Copies into this registry at once, across all workers.",
            ),
            click.option("--username", help="Registry user."),
            click.option(
                "--password-env",
                metavar="NAME",
                help="Read the registry password from environment variable NAME.",
            ),
            click.option("--ask-password", is_flag=True, help="Prompt for the password."),
            json_option,
        )
    ):
        func = option(func)
    return func


def _body(options: dict[str, Any]) -> dict[str, Any]:
    body = {
        k: options[k]
        for k in ("url", "region", "kind", "verify_tls", "max_concurrent_copies")
        if options.get(k) is not None
    }
    body.update(_credentials(options["username"], options["password_env"], options["ask_password"]))
    return body


@click.group("instances")
def instances_command() -> None:
    """Registries of your account (FERRY_URL, FERRY_TOKEN)."""


@instances_command.command("list")
@json_option
def instances_list(as_json: bool) -> None:
    """List the instances."""
    rows = FerryApi(load_settings()).all_pages("/instances")
    if as_json:
        print_json(rows)
    else:
        print_table(COLUMNS, [_row(i) for i in rows])


@instances_command.command("show")
@click.argument("instance")
@json_option
def instances_show(instance: str, as_json: bool) -> None:
    """Show INSTANCE (id or name)."""
    _show(FerryApi(load_settings()).resolve_instance(instance), as_json)


@instances_command.command("add")
@click.argument("name")
@_options
def instances_add(name: str, as_json: bool, **options: Any) -> None:
    """Register registry NAME (checked against its /v2/ with the credentials first).

    Prints the webhook secret once: registries send it with push notifications.
    """
    if not options.get("url"):
        raise click.UsageError("--url is required")
    body = {"name": name, **_body(options)}
    made = FerryApi(load_settings()).call("POST", "/instances", json=body)
    if as_json:
        print_json(made)
        return
    _show(made, False)
    click.echo(f"webhook secret: {made['webhook_secret']}")
    click.echo("The webhook secret is shown only now.", err=True)


@instances_command.command("edit")
@click.argument("instance")
@click.option("--rename", help="A new name.")
@_options
def instances_edit(instance: str, rename: str | None, as_json: bool, **options: Any) -> None:
    """Change INSTANCE (id or name); options not given are kept."""
    api = FerryApi(load_settings())
    found = api.resolve_instance(instance)
    body = _body(options)
    if rename:
        body["name"] = rename
    if not body:
        raise click.UsageError("nothing to change: give at least one option")
    _show(api.call("PATCH", f"/instances/{found['id']}", json=body), as_json)


@instances_command.command("rm")
@click.argument("instance")
def instances_rm(instance: str) -> None:
    """Delete INSTANCE (id or name); rules using it must be deleted first."""
    api = FerryApi(load_settings())
    found = api.resolve_instance(instance)
    api.call("DELETE", f"/instances/{found['id']}")
    click.echo(f"deleted instance {found['name']}")
