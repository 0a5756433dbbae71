"""The ``ferry`` command. Errors are one line on stderr and a non-zero exit, never a traceback."""

from __future__ import annotations

import json
import sys
from typing import Any

import click

from common.errors import FerryError
from common.settings import Settings, load_settings


class FerryGroup(click.Group):
    """A click group that turns FerryError into ``error: ...`` and exit code 1."""

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except FerryError as exc:
            click.echo(f"error: {exc}", err=True)
            sys.exit(1)


def say(message: str) -> None:
    click.echo(f"ferry: {message}", err=True)


def current_settings() -> Settings:
    """Settings read fresh from the environment (raises ConfigError naming the variable)."""
    return load_settings()


@click.group(cls=FerryGroup)
@click.version_option(package_name="ferry")
def main() -> None:
    """Ferry replicates images and Helm charts between OCI registries."""


@main.command()
def up() -> None:
    """Run Ferry: API, worker, beat and Flower (embedded PostgreSQL/Redis by default)."""
    import time

    from common.db.migrate import upgrade
    from common.embedded import servers_for
    from common.supervisor import Supervisor, ensure_flower_auth, ensure_secret_key

    started = time.monotonic()
    settings = current_settings()
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    settings = ensure_secret_key(settings, say)
    if settings.embedded:
        say(f"starting embedded PostgreSQL and Redis in {settings.data_dir}")
    with servers_for(settings) as live:
        applied = upgrade(live.require_database_url())
        if applied:
            say("applied migrations: " + ", ".join(f"{m.version:04d}_{m.name}" for m in applied))
        flower_auth = ensure_flower_auth(live, say)
        supervisor = Supervisor(live, flower_auth, say)
        user = flower_auth.split(":", 1)[0]
        click.echo(f"Ferry API     {live.api_url}/api/v1  (docs: {live.api_url}/api/docs)")
        click.echo(f"Flower        {live.flower_url}  (user {user}, password in "
                   f"FERRY_FLOWER_BASIC_AUTH or {live.data_dir / 'flower.auth'})")
        click.echo(f"Logs          {live.data_dir / 'logs'}")
        click.echo(f"Ready check   {live.api_url}/readyz  (set-up took "
                   f"{time.monotonic() - started:.1f}s; Ctrl-C stops everything)")
        code = supervisor.run()
    say("stopped")
    sys.exit(code)


@main.group()
def db() -> None:
    """Database maintenance."""


@db.command("upgrade")
def db_upgrade() -> None:
    """Apply pending database migrations (safe to run twice or concurrently)."""
    from common.db.migrate import upgrade
    from common.embedded import servers_for

    with servers_for(current_settings()) as live:
        applied = upgrade(live.require_database_url())
    if applied:
        for m in applied:
            click.echo(f"applied {m.version:04d}_{m.name}")
    else:
        click.echo("database is up to date")


@main.group()
def tenant() -> None:
    """Tenants (accounts) and their API tokens."""


@tenant.command("create")
@click.argument("name")
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object for scripts.")
def tenant_create(name: str, as_json: bool) -> None:
    """Create tenant NAME and print its id and an API token (shown once)."""
    from common.db import connect
    from common.db.migrate import upgrade
    from common.db.tenants import create_tenant
    from common.embedded import servers_for

    name = name.strip()
    if not name or len(name) > 128:
        raise click.BadParameter("must be 1 to 128 characters", param_hint="NAME")
    with servers_for(current_settings()) as live:
        url = live.require_database_url()
        upgrade(url)
        with connect(url) as conn:
            tenant_id, token = create_tenant(conn, name)
    if as_json:
        click.echo(json.dumps({"tenant_id": str(tenant_id), "token": token}))
    else:
        click.echo(f"tenant id: {tenant_id}")
        click.echo(f"API token: {token}")
        click.echo("The token is shown only now; Ferry stores only its hash.", err=True)


def _register_optional_commands() -> None:
    """Commands owned by other modules, registered when present."""
    try:
        from common.registry.cli import copy_command
    except ImportError:
        return
    main.add_command(copy_command)


_register_optional_commands()


if __name__ == "__main__":
    main()
