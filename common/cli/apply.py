"""``ferry apply -f rules.yaml``: make the account's rules match a file kept in git.

A rule is known by its name and source instance. Rules in the file are created
or replaced when they differ; ``--prune`` deletes the account's other rules;
``--dry-run`` prints the plan and changes nothing. Passwords never come from the
file: a cross-tenant target names an environment variable (``password_env``).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import click
import yaml

from common.cli.apiclient import FerryApi
from common.cli.output import json_option, print_json, print_table
from common.errors import FerryError
from common.settings import load_settings, variable

SOURCE_DEFAULTS: dict[str, Any] = {
    "repository_filter": "",
    "tag_filter": "",
    "repository_exclude": "",
    "tag_exclude": "",
    "filter_syntax": "regex",
}
TARGET_DEFAULTS: dict[str, Any] = {
    "namespace": "",
    "cross_tenant": False,
    "account_id": None,
    "username": None,
}
RULE_DEFAULTS: dict[str, Any] = {
    "description": "",
    "resource_types": ["image", "chart"],
    "override": False,
    "enabled": True,
    "schedule": None,
    "schedule_timezone": "UTC",
}
SOURCE_KEYS = {"instance", "instance_id", "namespace", *SOURCE_DEFAULTS}
TARGET_KEYS = {"instance", "instance_id", "password_env", *TARGET_DEFAULTS}
RULE_KEYS = {"name", "source", "target", *RULE_DEFAULTS}


class FileError(FerryError):
    """The rules file is unreadable or holds a field Ferry does not accept."""


@dataclass
class Step:
    """One line of the plan."""

    action: str  # create, update, delete, unchanged
    name: str
    source: str
    changes: list[str] = field(default_factory=list)
    body: dict[str, Any] | None = None
    rule_id: str | None = None

    def as_dict(self) -> dict[str, Any]:
        return {
            "action": self.action,
            "name": self.name,
            "source": self.source,
            "changes": self.changes,
            "rule_id": self.rule_id,
        }


def _mapping(value: Any, where: str, allowed: set[str]) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise FileError(f"{where}: expected a mapping")
    if "password" in value:
        raise FileError(
            f"{where}.password: passwords are never read from the file; "
            "use password_env: NAME (an environment variable)"
        )
    unknown = sorted(set(map(str, value)) - allowed)
    if unknown:
        raise FileError(f"{where}.{unknown[0]}: unknown field")
    return value


def load_file(path: Path) -> list[dict[str, Any]]:
    """The rule entries of a rules file, checked for shape."""
    try:
        document = yaml.safe_load(path.read_text())
    except OSError as exc:
        raise FileError(f"{path}: {exc.strerror or exc}") from None
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        at = f" at line {mark.line + 1}" if mark else ""
        raise FileError(f"{path}: not valid YAML{at}") from None
    if document is None:
        return []
    entries = _mapping(document, str(path), {"rules"}).get("rules") or []
    if not isinstance(entries, list):
        raise FileError(f"{path}: rules: expected a list")
    for i, entry in enumerate(entries):
        rule = _mapping(entry, f"rules[{i}]", RULE_KEYS)
        if not isinstance(rule.get("name"), str):
            raise FileError(f"rules[{i}].name: required")
        for side, keys in (("source", SOURCE_KEYS), ("target", TARGET_KEYS)):
            _mapping(rule.get(side), f"rules[{i}].{side}", keys)
    return entries


class Resolver:
    """Instance names to ids, from one listing."""

    def __init__(self, api: FerryApi) -> None:
        self.by_name = {i["name"]: i["id"] for i in api.all_pages("/instances")}
        self.names = {v: k for k, v in self.by_name.items()}

    def instance(self, side: dict[str, Any], where: str, cross_tenant: bool) -> str:
        if side.get("instance_id"):
            return str(side["instance_id"])
        name = side.get("instance")
        if not name:
            raise FileError(f"{where}.instance: required (a name or an id)")
        if name in self.by_name:
            return self.by_name[name]
        if cross_tenant or name in self.names:  # another account's instance is named by id
            return str(name)
        raise FileError(f"{where}.instance: no instance named {name!r}")


def desired_body(entry: dict[str, Any], i: int, resolver: Resolver) -> dict[str, Any]:
    """The full API body of one file entry (defaults filled, password from its variable)."""
    where = f"rules[{i}]"
    src, dst = entry["source"], entry["target"]
    cross = bool(dst.get("cross_tenant", False))
    source = {**SOURCE_DEFAULTS, **{k: v for k, v in src.items() if k in SOURCE_DEFAULTS}}
    source["instance_id"] = resolver.instance(src, f"{where}.source", False)
    source["namespace"] = src.get("namespace")
    target = {**TARGET_DEFAULTS, **{k: v for k, v in dst.items() if k in TARGET_DEFAULTS}}
    target["instance_id"] = resolver.instance(dst, f"{where}.target", cross)
    if target["account_id"] is not None:
        target["account_id"] = str(target["account_id"])
    if dst.get("password_env"):
        value = variable(str(dst["password_env"]))
        if not value:
            raise FileError(f"{where}.target.password_env: {dst['password_env']} is not set")
        target["password"] = value
    body = {**RULE_DEFAULTS, **{k: v for k, v in entry.items() if k in RULE_DEFAULTS}}
    body.update(name=entry["name"], source=source, target=target)
    return body


def _comparable(body: dict[str, Any]) -> dict[str, Any]:
    """The fields that decide whether a stored rule equals a file entry (never a password)."""
    flat = {k: body.get(k) for k in RULE_DEFAULTS}
    flat["resource_types"] = sorted(flat["resource_types"] or [])
    for side, keys in (("source", SOURCE_DEFAULTS), ("target", TARGET_DEFAULTS)):
        for key in (*keys, "instance_id", "namespace"):
            value = body[side].get(key)
            flat[f"{side}.{key}"] = str(value) if key.endswith("_id") and value else value
    return flat


def make_plan(api: FerryApi, entries: list[dict[str, Any]], prune: bool) -> list[Step]:
    """What applying ``entries`` changes, rule by rule."""
    resolver = Resolver(api)
    current = {(r["name"], r["source"]["instance_id"]): r for r in api.all_pages("/rules")}
    steps: list[Step] = []
    seen: set[tuple[str, str]] = set()
    for i, entry in enumerate(entries):
        body = desired_body(entry, i, resolver)
        key = (body["name"], body["source"]["instance_id"])
        if key in seen:
            raise FileError(f"rules[{i}]: a second rule {key[0]!r} on the same source instance")
        seen.add(key)
        where = resolver.names.get(key[1], key[1])
        have = current.get(key)
        if have is None:
            steps.append(Step("create", key[0], where, body=body))
            continue
        want, now = _comparable(body), _comparable(have)
        changes = sorted(k for k in want if want[k] != now[k])
        if body["target"].get("password") and not have["target"].get("has_credentials"):
            changes.append("target.password")
        action = "update" if changes else "unchanged"
        steps.append(Step(action, key[0], where, changes, body, have["id"]))
    if prune:
        for key, have in current.items():
            if key not in seen:
                where = resolver.names.get(key[1], key[1])
                steps.append(Step("delete", key[0], where, rule_id=have["id"]))
    return steps


def execute(api: FerryApi, steps: list[Step]) -> None:
    """Carry the plan out; the first refusal stops it with the rule's name."""
    for step in steps:
        try:
            if step.action == "create":
                step.rule_id = api.call("POST", "/rules", json=step.body)["id"]
            elif step.action == "update":
                api.call("PUT", f"/rules/{step.rule_id}", json=step.body)
            elif step.action == "delete":
                api.call("DELETE", f"/rules/{step.rule_id}")
        except FerryError as exc:
            raise FerryError(f"rule {step.name} ({step.action}): {exc}") from None


@click.command("apply")
@click.option(
    "-f",
    "--file",
    "path",
    required=True,
    type=click.Path(dir_okay=False, path_type=Path),
    help="The rules file (YAML: rules: [{name, source, target, ...}]).",
)
@click.option("--dry-run", is_flag=True, help="Print the plan; change nothing.")
@click.option("--prune", is_flag=True, help="Delete the account's rules that are not in the file.")
@json_option
def apply_command(path: Path, dry_run: bool, prune: bool, as_json: bool) -> None:
    """Make your account's rules match a file (FERRY_URL, FERRY_TOKEN).

    Instances are named by name or id. A cross-tenant target's password comes
    from an environment variable (target: {password_env: NAME}), never the file.
    Filters match the whole name (like re.fullmatch): `v.*`, not `^v`.
    """
    api = FerryApi(load_settings())
    steps = make_plan(api, load_file(path), prune)
    if not dry_run:
        execute(api, steps)
    if as_json:
        print_json({"dry_run": dry_run, "plan": [s.as_dict() for s in steps]})
        return
    print_table(
        ("ACTION", "RULE", "SOURCE", "CHANGES"),
        [(s.action, s.name, s.source, ", ".join(s.changes)) for s in steps],
    )
    counts = {a: sum(s.action == a for s in steps) for a in ("create", "update", "delete")}
    verb = "would" if dry_run else "did"
    click.echo(
        f"{verb} create {counts['create']}, update {counts['update']}, "
        f"delete {counts['delete']} rule(s)" + (" (dry run: nothing changed)" if dry_run else ""),
        err=True,
    )
