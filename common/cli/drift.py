"""``ferry drift RULE`` and ``ferry check RULE``: a rule's drift report and health check,
from a terminal, through the API (FERRY_URL, FERRY_TOKEN)."""

from __future__ import annotations

import json
import sys
import time
from typing import Any

import click

from common.cli.apiclient import ApiError, FerryApi
from common.settings import load_settings

KINDS = ("missing", "differs", "extra", "in_sync")
POLL_SECONDS = 0.5
# `ferry check` exit codes by state: scripts can tell degraded from broken.
CHECK_EXIT = {"ok": 0, "degraded": 2, "broken": 3}


def _poll(fetch: Any, done: Any, timeout: float, what: str) -> dict:
    deadline = time.monotonic() + timeout
    while True:
        body = fetch()
        if done(body):
            return body
        if time.monotonic() > deadline:
            raise ApiError(f"{what} not finished after {timeout:.0f}s; try again later")
        time.sleep(POLL_SECONDS)


def _line(kind: str, e: dict) -> str:
    target = f"{e['target_repository']}:{e['target_tag']}"
    if kind == "differs":
        would = "override replaces it" if e.get("override_changes") else "override is off: kept"
        return f"  {target}  source {e['source_digest']}  target {e['target_digest']}  ({would})"
    if kind == "extra":
        return f"  {target}  {e.get('target_digest') or ''}".rstrip()
    return f"  {target}  {e.get('source_digest') or ''}".rstrip()


def _print_report(rule: dict, report: dict, show: int) -> None:
    counts = report["counts"]
    click.echo(
        f"rule {rule['name']}: {counts['missing']} missing, {counts['differs']} differ, "
        f"{counts['extra']} extra, {counts['in_sync']} in sync"
    )
    for kind in KINDS[:3]:
        listed = report[kind]
        if not listed["total"]:
            continue
        click.echo(f"{kind} ({listed['total']}):")
        for entry in listed["items"][:show]:
            click.echo(_line(kind, entry))
        if listed["total"] > show:
            click.echo(
                f"  ... and {listed['total'] - show} more (GET /api/v1/drift/{report['id']})"
            )


@click.command("drift")
@click.argument("rule")
@click.option("--json", "as_json", is_flag=True, help="Print the report as one JSON object.")
@click.option("--show", default=20, show_default=True, type=click.IntRange(1, 500),
              help="Entries shown of each list.")  # fmt: skip
@click.option("--timeout", default=600.0, show_default=True, type=click.FloatRange(1),
              help="Seconds to wait for the report.")  # fmt: skip
@click.option("--exit-code", is_flag=True, help="Exit with 4 when drift was found.")
def drift_command(rule: str, as_json: bool, show: int, timeout: float, exit_code: bool) -> None:
    """Compare what RULE (id or name) selects on the source with what the target holds:
    missing, differs (both digests), extra (on the target only) and in sync. Lists
    both registries; writes nothing."""
    api = FerryApi(load_settings())
    found = api.resolve_rule(rule)
    started = api.call("POST", f"/rules/{found['id']}/drift")
    path = f"/drift/{started['id']}"
    report = _poll(
        lambda: api.call("GET", path, params={"page_size": show}),
        lambda r: r["status"] in ("Succeeded", "Failed"),
        timeout,
        f"drift report {started['id']}",
    )
    if report["status"] == "Failed":
        raise ApiError(f"drift report of {found['name']} failed: {report['message']}")
    if as_json:
        click.echo(json.dumps(report, indent=2))
    else:
        _print_report(found, report, show)
    drifted = sum(report["counts"][k] for k in KINDS[:3])
    if exit_code and drifted:
        sys.exit(4)


@click.command("check")
@click.argument("rule")
@click.option("--json", "as_json", is_flag=True, help="Print the health as one JSON object.")
@click.option("--timeout", default=120.0, show_default=True, type=click.FloatRange(1),
              help="Seconds to wait for the check.")  # fmt: skip
def check_command(rule: str, as_json: bool, timeout: float) -> None:
    """Check RULE's health now: the source lists the namespace, the target accepts a login
    and an upload (cancelled), and the webhook was heard lately when pushes are expected.

    Exit code: 0 ok, 2 degraded, 3 broken (1: the check itself could not run).
    """
    api = FerryApi(load_settings())
    found = api.resolve_rule(rule)
    asked = api.call("POST", f"/rules/{found['id']}/check")
    before = asked["health_detail"]["checked_at"]

    def checked(body: dict) -> bool:
        # The database's clock stamps checks: wait for a new stamp, not a later one.
        at = (body.get("health_detail") or {}).get("checked_at")
        return at is not None and at != before

    shown = _poll(
        lambda: api.call("GET", f"/rules/{found['id']}"), checked, timeout, "the health check"
    )
    health = shown["health_detail"]
    if as_json:
        click.echo(json.dumps({"rule_id": shown["id"], "health": shown["health"], **health}))
    else:
        since = f" since {health['since']}" if health.get("since") else ""
        reason = f": {health['reason']}" if health.get("reason") else ""
        click.echo(f"rule {shown['name']}: {health['state']}{since}{reason}")
    sys.exit(CHECK_EXIT.get(health["state"], 1))
