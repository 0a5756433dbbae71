"""The ``ferry`` command. Errors are one line on stderr and a non-zero exit, never a traceback."""

from __future__ import annotations

import json
import os
import sys
from typing import Any

import click

from common.domain.vocab import QueueName
from common.errors import FerryError
from common.runtime.supervisor import DEFAULT_CONCURRENCY, DEFAULT_POOL, POOLS
from common.settings import Settings, load_settings


class FerryGroup(click.Group):
    """A click group that turns FerryError into ``error: ...`` and exit code 1."""

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except FerryError as exc:
            click.echo(f"error: {exc}", err=True)
            sys.exit(1)
        except (click.ClickException, click.exceptions.Exit, click.Abort):
            raise
        except Exception as exc:
            # Never a traceback; the type is enough to report it (its text may hold data).
            click.echo(f"error: unexpected {type(exc).__name__}; please report it", err=True)
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

    from common.runtime.embedded import prepare_data_dir, servers_for
    from common.runtime.supervisor import (
        Supervisor,
        api_tls_argv,
        ensure_flower_auth,
        ensure_secret_key,
    )
    from common.services.database import upgrade_database

    started = time.monotonic()
    settings = current_settings()
    api_tls_argv(settings)  # an unreadable certificate or key stops Ferry before anything starts
    # Whatever Ferry and its children create (state, logs, Flower's and beat's files)
    # is readable by this user only.
    os.umask(0o077)
    prepare_data_dir(settings.data_dir)
    settings = ensure_secret_key(settings, say)
    if settings.embedded:
        say(f"starting embedded PostgreSQL and Redis in {settings.data_dir}")
    with servers_for(settings) as live:
        applied = upgrade_database(live)
        if applied:
            say("applied migrations: " + ", ".join(f"{m.version:04d}_{m.name}" for m in applied))
        flower_auth = ensure_flower_auth(live, say)
        supervisor = Supervisor(live, flower_auth, say)
        user = flower_auth.split(":", 1)[0]
        click.echo(f"Ferry API     {live.api_url}/api/v1  (docs: {live.api_url}/api/docs)")
        click.echo(
            f"Flower        {live.flower_url}  (user {user}, password in "
            f"FERRY_FLOWER_BASIC_AUTH or {live.data_dir / 'flower.auth'})"
        )
        click.echo(f"Logs          {live.data_dir / 'logs'}")
        click.echo(
            f"Ready check   {live.api_url}/readyz  (set-up took "
            f"{time.monotonic() - started:.1f}s; Ctrl-C stops everything)"
        )
        code = supervisor.run()
    say("stopped")
    sys.exit(code)


def _exec_role(role: str, **kwargs: object) -> None:
    """Replace this process with one role of Ferry (for containers and service managers)."""
    from common.runtime.private import ensure_dir
    from common.runtime.supervisor import role_argv, role_env
    from common.settings import child_environment

    settings = current_settings()
    if settings.embedded:
        raise click.UsageError(
            "FERRY_DATABASE_URL and FERRY_REDIS_URL must be set to run "
            "one role alone; `ferry up` runs everything embedded"
        )
    if not settings.secret_keys:
        raise click.UsageError("FERRY_SECRET_KEYS must be set")
    ensure_dir(settings.data_dir)
    argv = role_argv(role, settings, **kwargs)  # type: ignore[arg-type]
    os.execve(argv[0], argv, {**child_environment(settings), **role_env(role, settings)})


@main.command("api")
def api_command() -> None:
    """Run only the API (gunicorn) on FERRY_API_BIND."""
    _exec_role("api")


@main.command("worker")
@click.option(
    "--queues",
    default=",".join(QueueName),
    show_default=True,
    help=f"Comma-separated queues: {', '.join(QueueName)}.",
)
@click.option(
    "--concurrency",
    default=DEFAULT_CONCURRENCY,
    show_default=True,
    type=click.IntRange(1, 256),
    help="Tasks at once: threads, or prefork processes.",
)
@click.option(
    "--pool",
    type=click.Choice(POOLS),
    default=DEFAULT_POOL,
    show_default=True,
    help="threads: one process (the leanest); prefork: one process per task.",
)
@click.option(
    "--hostname",
    default=None,
    help="Celery node name, unique per worker (default: ferry-<queues>@<host>; "
    "%h expands to the host name).",
)
def worker_command(queues: str, concurrency: int, pool: str, hostname: str | None) -> None:
    """Run only a Celery worker on the given queues."""
    unknown = set(queues.split(",")) - set(QueueName)
    if unknown:
        raise click.BadParameter(
            f"unknown queue(s): {', '.join(sorted(unknown))}", param_hint="--queues"
        )
    if hostname is not None and (not hostname.strip() or any(c.isspace() for c in hostname)):
        raise click.BadParameter("expected a name without spaces", param_hint="--hostname")
    _exec_role("worker", queues=queues, concurrency=concurrency, pool=pool, hostname=hostname)


@main.command("beat")
def beat_command() -> None:
    """Run only celery beat (schedules, reconciliation, rescans)."""
    _exec_role("beat")


@main.command("flower")
def flower_command() -> None:
    """Run only Flower on FERRY_FLOWER_BIND, with FERRY_FLOWER_BASIC_AUTH."""
    if not current_settings().flower_basic_auth:
        raise click.UsageError("FERRY_FLOWER_BASIC_AUTH (user:password) must be set")
    _exec_role("flower")


@main.group()
def db() -> None:
    """Database maintenance."""


@db.command("upgrade")
def db_upgrade() -> None:
    """Apply pending database migrations (safe to run twice or concurrently)."""
    from common.runtime.embedded import servers_for
    from common.services.database import upgrade_database

    with servers_for(current_settings()) as live:
        applied = upgrade_database(live)
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
    """Create tenant NAME with its user admin; print the id, admin's password and API token
    (shown once)."""
    from common.runtime.embedded import servers_for
    from common.services.database import upgrade_database
    from common.services.tenants import create_tenant

    name = name.strip()
    if not name or len(name) > 128:
        raise click.BadParameter("must be 1 to 128 characters", param_hint="NAME")
    with servers_for(current_settings()) as live:
        upgrade_database(live)
        new = create_tenant(live, name)
    if as_json:
        body = {
            "tenant_id": str(new.tenant_id),
            "token": new.token,
            "user": new.user_name,
            "password": new.password,
        }
        click.echo(json.dumps(body))
    else:
        click.echo(f"tenant id: {new.tenant_id}")
        click.echo(f"user:      {new.user_name}")
        click.echo(f"password:  {new.password}")
        click.echo(f"API token: {new.token}")
        click.echo(
            "The password and the token are shown only now; Ferry stores only their hashes.",
            err=True,
        )


@main.group()
def keys() -> None:
    """Encryption keys of stored registry passwords (FERRY_SECRET_KEYS)."""


@keys.command("rotate")
def keys_rotate() -> None:
    """Re-encrypt every stored password under the first key of FERRY_SECRET_KEYS.

    Put the new key first, keep the old ones after it, run this, then drop the old keys.
    """
    from common.runtime.embedded import servers_for
    from common.security.crypto import SecretBox
    from common.services.database import upgrade_database
    from common.services.keys import rotate_secrets

    settings = current_settings()
    box = SecretBox(settings)  # fails before touching the database when no key is set
    with servers_for(settings) as live:
        upgrade_database(live)
        result = rotate_secrets(live, box)
    click.echo(
        f"re-encrypted {result.total} secret(s) under the first key: "
        f"{result.instance_passwords} instance password(s), "
        f"{result.rule_passwords} rule password(s), {result.secret_keys} API SecretKey(s)"
    )


def _register_commands() -> None:
    """Commands that live beside the code they drive."""
    from common.cli.apply import apply_command
    from common.cli.copy import copy_command
    from common.cli.drift import check_command, drift_command
    from common.cli.instances import instances_command
    from common.cli.rules import rules_command
    from common.cli.tasks import (
        items_command,
        retry_command,
        stop_command,
        tasks_command,
        trigger_command,
    )
    from common.cli.users import audit_command, users_command

    for command in (
        copy_command,
        trigger_command,
        tasks_command,
        users_command,
        audit_command,
        instances_command,
        rules_command,
        items_command,
        stop_command,
        retry_command,
        apply_command,
    ):
        main.add_command(command)
    main.add_command(drift_command)
    main.add_command(check_command)
    # The same commands under the rules group, where `ferry rules --help` lists them.
    rules_command.add_command(drift_command, name="drift")
    rules_command.add_command(check_command, name="check")


_register_commands()


if __name__ == "__main__":
    main()
