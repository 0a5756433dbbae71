"""Rule fields as command-line options, and the request bodies they make.

Shared by ``ferry rules create|edit``; instances are given by id or name.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar

import click

from common.cli.apiclient import FerryApi
from common.cli.instances import secret_from

F = TypeVar("F", bound=Callable[..., Any])

FULL_MATCH = (
    "Filters match the WHOLE name (like re.fullmatch): `v.*` matches v1.0, `^v` or `v` "
    "alone match no tag v1.0. Empty takes everything."
)
_FILTERS = (
    ("--repository-filter", "Repository path below the namespace to select."),
    ("--tag-filter", "Tags to select."),
    ("--repository-exclude", "Repositories to leave out."),
    ("--tag-exclude", "Tags to leave out."),
)
FILTER_KEYS = ("repository_filter", "tag_filter", "repository_exclude", "tag_exclude")


def rule_options(func: F) -> F:
    """Every rule field as an option; an option not given is left alone (edit) or defaulted
    by the API (create)."""
    options = [
        click.option("--description", help="Free text."),
        click.option("--source", "source_instance", metavar="INSTANCE", help="Source instance."),
        click.option("--namespace", help="Source namespace (first path level); never 'all'."),
        *(
            click.option(flag, metavar="PATTERN", help=f"{text} {FULL_MATCH}")
            for flag, text in _FILTERS
        ),
        click.option(
            "--syntax",
            "filter_syntax",
            type=click.Choice(("regex", "glob")),
            help="Filter syntax: regex (RE2) or glob (* within a level, ** across levels).",
        ),
        click.option(
            "--types",
            "resource_types",
            metavar="image,chart",
            help="Comma-separated resource types: image, chart.",
        ),
        click.option("--target", "target_instance", metavar="INSTANCE", help="Target instance."),
        click.option("--target-namespace", help="Target namespace (empty: the source's)."),
        click.option(
            "--cross-tenant/--same-tenant",
            default=None,
            help="The target is another account's instance (give its id with --target).",
        ),
        click.option("--account-id", help="The other account's id (cross-tenant)."),
        click.option("--username", help="Target registry user (cross-tenant)."),
        click.option(
            "--password-env", metavar="NAME", help="Read the target password from variable NAME."
        ),
        click.option("--ask-password", is_flag=True, help="Prompt for the target password."),
        click.option("--override/--no-override", default=None, help="Overwrite differing tags."),
        click.option("--schedule", metavar="CRON", help="5-field cron expression ('' for none)."),
        click.option("--timezone", "schedule_timezone", help="IANA time zone of the schedule."),
    ]
    for option in reversed(options):
        func = option(func)
    return func


def _instance_id(api: FerryApi, key: str | None, cross_tenant: bool) -> str | None:
    if key is None:
        return None
    # Another account's instance is not in our list: it can only be named by id.
    return key if cross_tenant else api.resolve_instance(key)["id"]


def body_from_options(
    api: FerryApi, opts: dict[str, Any], *, cross_tenant: bool | None = None
) -> dict[str, Any]:
    """The PATCH-shaped body of the options that were given (nested source/target).

    ``cross_tenant`` says how to read --target when the options do not (an edit)."""
    source: dict[str, Any] = {}
    target: dict[str, Any] = {}
    body: dict[str, Any] = {}
    if opts.get("source_instance") is not None:
        source["instance_id"] = _instance_id(api, opts["source_instance"], False)
    for key in ("namespace", "filter_syntax", *FILTER_KEYS):
        if opts.get(key) is not None:
            source[key] = opts[key]
    cross = bool(opts.get("cross_tenant") if cross_tenant is None else cross_tenant)
    if opts.get("target_instance") is not None:
        target["instance_id"] = _instance_id(api, opts["target_instance"], cross)
    if opts.get("target_namespace") is not None:
        target["namespace"] = opts["target_namespace"]
    for key in ("cross_tenant", "account_id", "username"):
        if opts.get(key) is not None:
            target[key] = opts[key]
    password = secret_from(opts.get("password_env"), opts.get("ask_password", False), "password")
    if password is not None:
        target["password"] = password
    if opts.get("resource_types") is not None:
        body["resource_types"] = [t.strip() for t in opts["resource_types"].split(",") if t]
    for key in ("description", "override", "schedule_timezone"):
        if opts.get(key) is not None:
            body[key] = opts[key]
    if opts.get("schedule") is not None:
        body["schedule"] = opts["schedule"] or None
    if source:
        body["source"] = source
    if target:
        body["target"] = target
    return body
