"""``ferry rules ...``: the account's replication rules, through the API."""

from __future__ import annotations

from typing import Any

import click

from common.cli.apiclient import FerryApi
from common.cli.output import json_option, print_fields, print_json, print_table
from common.cli.rulespec import FILTER_KEYS, FULL_MATCH, body_from_options, rule_options
from common.cli.tasks import trigger_rule, wait_option
from common.settings import load_settings

RULE_COLUMNS = ("ID", "NAME", "SOURCE", "FILTERS", "TARGET", "ENABLED", "SCHEDULE", "HEALTH")
PREVIEW_COLUMNS = ("SOURCE", "KIND", "TARGET", "TARGET-HAS-IT")
EXPLANATION_HEADER = "X-Ferry-Preview-Explanation"


def _names(api: FerryApi) -> dict[str, str]:
    return {i["id"]: i["name"] for i in api.all_pages("/instances")}


def _where(names: dict[str, str], side: dict[str, Any], fallback: str = "") -> str:
    instance = names.get(side["instance_id"], side["instance_id"])
    return f"{instance}:{side.get('namespace') or fallback}"


def _filters(source: dict[str, Any]) -> str:
    parts = [f"{k}={source[k]}" for k in FILTER_KEYS if source.get(k)]
    return " ".join(parts) or "(all)"


def _row(names: dict[str, str], r: dict[str, Any]) -> tuple[Any, ...]:
    return (
        r["id"],
        r["name"],
        _where(names, r["source"]),
        _filters(r["source"]),
        _where(names, r["target"], r["source"]["namespace"])
        + (" (cross-tenant)" if r["target"].get("cross_tenant") else ""),
        r["enabled"],
        r.get("schedule"),
        r.get("health"),
    )


def _show(api: FerryApi, rule: dict[str, Any], as_json: bool) -> None:
    if as_json:
        print_json(rule)
        return
    names = _names(api)
    src, dst = rule["source"], rule["target"]
    print_fields(
        [
            ("id", rule["id"]),
            ("name", rule["name"]),
            ("description", rule.get("description")),
            ("source", _where(names, src)),
            *((k.replace("_", " "), src.get(k)) for k in FILTER_KEYS),
            ("filter syntax", src.get("filter_syntax")),
            ("resource types", ",".join(rule.get("resource_types") or [])),
            ("target", _where(names, dst, src["namespace"])),
            ("cross-tenant", dst.get("cross_tenant")),
            ("account id", dst.get("account_id")),
            ("username", dst.get("username")),
            ("override", rule.get("override")),
            ("enabled", rule.get("enabled")),
            ("schedule", rule.get("schedule")),
            ("time zone", rule.get("schedule_timezone")),
            ("next run", rule.get("next_run_at")),
            ("health", rule.get("health")),
        ]
    )


@click.group("rules", epilog=FULL_MATCH)
def rules_command() -> None:
    """Replication rules of your account (FERRY_URL, FERRY_TOKEN)."""


@rules_command.command("list")
@json_option
def rules_list(as_json: bool) -> None:
    """List the rules."""
    api = FerryApi(load_settings())
    rows = api.all_pages("/rules")
    if as_json:
        print_json(rows)
    else:
        names = _names(api)
        print_table(RULE_COLUMNS, [_row(names, r) for r in rows])


@rules_command.command("show")
@click.argument("rule")
@json_option
def rules_show(rule: str, as_json: bool) -> None:
    """Show RULE (id or name)."""
    api = FerryApi(load_settings())
    _show(api, api.resolve_rule(rule), as_json)


@rules_command.command("create", epilog=FULL_MATCH)
@click.argument("name")
@rule_options
@click.option("--disabled", is_flag=True, help="Create it disabled.")
@json_option
def rules_create(name: str, disabled: bool, as_json: bool, **options: Any) -> None:
    """Create rule NAME: --source INSTANCE --namespace NS --target INSTANCE are required."""
    missing = [f"--{k}" for k in ("source", "target") if not options[f"{k}_instance"]]
    if not options.get("namespace"):
        missing.append("--namespace")
    if missing:
        raise click.UsageError(f"missing {', '.join(missing)}")
    api = FerryApi(load_settings())
    body = {"name": name, **body_from_options(api, options)}
    if disabled:
        body["enabled"] = False
    _show(api, api.call("POST", "/rules", json=body), as_json)


@rules_command.command("edit", epilog=FULL_MATCH)
@click.argument("rule")
@click.option("--rename", help="A new name.")
@rule_options
@json_option
def rules_edit(rule: str, rename: str | None, as_json: bool, **options: Any) -> None:
    """Change RULE (id or name); options not given are kept."""
    api = FerryApi(load_settings())
    found = api.resolve_rule(rule)
    cross = options.get("cross_tenant")
    if cross is None:  # a bare --target keeps naming the other account's instance by id
        cross = bool(found["target"].get("cross_tenant"))
    body = body_from_options(api, options, cross_tenant=cross)
    if rename:
        body["name"] = rename
    if not body:
        raise click.UsageError("nothing to change: give at least one option")
    _show(api, api.call("PATCH", f"/rules/{found['id']}", json=body), as_json)


def _switch(rule: str, action: str, as_json: bool) -> None:
    api = FerryApi(load_settings())
    found = api.resolve_rule(rule)
    changed = api.call("POST", f"/rules/{found['id']}/{action}")
    if as_json:
        print_json(changed)
    else:
        click.echo(f"rule {changed['name']} {action}d")


@rules_command.command("enable")
@click.argument("rule")
@json_option
def rules_enable(rule: str, as_json: bool) -> None:
    """Enable RULE (its schedule restarts from now)."""
    _switch(rule, "enable", as_json)


@rules_command.command("disable")
@click.argument("rule")
@json_option
def rules_disable(rule: str, as_json: bool) -> None:
    """Disable RULE until it is enabled again."""
    _switch(rule, "disable", as_json)


@rules_command.command("rm")
@click.argument("rule")
def rules_rm(rule: str) -> None:
    """Delete RULE; its running tasks stop, its task log stays."""
    api = FerryApi(load_settings())
    found = api.resolve_rule(rule)
    api.call("DELETE", f"/rules/{found['id']}")
    click.echo(f"deleted rule {found['name']}")


@rules_command.command("trigger")
@click.argument("rule")
@wait_option
@json_option
def rules_trigger(rule: str, wait: bool, as_json: bool) -> None:
    """Trigger RULE now (same as `ferry trigger`)."""
    trigger_rule(rule, wait, as_json)


@rules_command.command("preview", epilog=FULL_MATCH)
@click.argument("rule")
@click.option("--limit", default=100, show_default=True, type=click.IntRange(1, 100))
@json_option
def rules_preview(rule: str, limit: int, as_json: bool) -> None:
    """What RULE selects now and whether the target has it; copies nothing.

    When nothing is selected, says which filter excluded what, with an example name.
    """
    import json

    api = FerryApi(load_settings())
    found = api.resolve_rule(rule)
    r = api.response("GET", f"/rules/{found['id']}/preview", params={"page_size": limit})
    rows = r.json()
    explained = r.headers.get(EXPLANATION_HEADER)
    why = json.loads(explained) if explained else None
    if as_json:
        print_json({"items": rows, "explanation": why})
        return
    print_table(
        PREVIEW_COLUMNS,
        [
            (
                f"{c['source_repository']}:{c['source_tag']}",
                c.get("kind"),
                f"{c['target_repository']}:{c['target_tag']}",
                c["target_has_it"],
            )
            for c in rows
        ],
    )
    if why:
        click.echo(f"nothing selected: {why['message']}", err=True)
