"""``ferry trigger``, ``tasks``, ``items``, ``stop`` and ``retry``: the sync log from a
terminal, through the API."""

from __future__ import annotations

import sys
import time
from typing import Any
from urllib.parse import quote

import click
from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn

from common.cli.apiclient import FerryApi
from common.cli.output import console, json_option, print_json, print_table, rate, size
from common.domain.vocab import FINAL_TASK_STATUSES, ItemStatus, TaskStatus
from common.settings import load_settings

TASK_COLUMNS = (
    "TASK",
    "TRIGGER",
    "STATUS",
    "CREATED",
    "SECONDS",
    "RATE",
    "REPOS",
    "TOTAL",
    "COPIED",
    "UP-TO-DATE",
    "KEPT",
    "FAILED",
    "BYTES",
)
ITEM_COLUMNS = ("SOURCE", "TARGET", "KIND", "OUTCOME", "BYTES", "SECONDS", "WORKER", "REASON")
POLL_SECONDS = 0.5


def _done(task: dict) -> int:
    return sum(
        task.get(k) or 0 for k in ("copied", "up_to_date", "kept", "failed", "stopped", "deleted")
    )


def summary(task: dict) -> str:
    """One line: status, counts, bytes, success rate and time of a task."""
    rate_s = task.get("success_rate")
    rate_s = f"{float(rate_s) * 100:.1f}%" if rate_s is not None else "-"
    spent = task.get("time_spent_seconds")
    return (
        f"task {task['task_id']} {task['status']}: {task.get('total', 0)} items "
        f"({task.get('copied', 0)} copied, {task.get('up_to_date', 0)} up-to-date, "
        f"{task.get('kept', 0)} kept, {task.get('failed', 0)} failed) in "
        f"{task.get('repositories_count', 0)} repositories, "
        f"{size(task.get('bytes_transferred'))}, success rate {rate_s}, "
        f"{spent or 0:.1f}s" + (f" - {task['message']}" if task.get("message") else "")
    )


def follow(api: FerryApi, task_id: str) -> dict[str, Any]:
    """Poll a task until it ends, with a rich progress display on stderr; the last state."""
    columns = (
        TextColumn("{task.description}"),
        BarColumn(),
        TextColumn("{task.fields[items]}"),
        TextColumn("{task.fields[bytes]}"),
        TextColumn("{task.fields[status]}"),
        TimeElapsedColumn(),
    )
    with Progress(*columns, console=console(err=True), transient=False) as progress:
        bar = progress.add_task(
            task_id, total=None, items="0/0 items", bytes="0 B", status=TaskStatus.PENDING
        )
        while True:
            task = api.call("GET", f"/tasks/{task_id}")
            progress.update(
                bar,
                total=task.get("total") or None,
                completed=_done(task),
                items=f"{_done(task)}/{task.get('total') or 0} items",
                bytes=size(task.get("bytes_transferred")),
                status=task["status"],
            )
            if task["status"] in FINAL_TASK_STATUSES:
                progress.update(bar, total=task.get("total") or 0)
                return task
            time.sleep(POLL_SECONDS)


def finish(api: FerryApi, task_id: str, wait: bool, as_json: bool) -> None:
    """Print a started task's id, or follow it and exit 1 unless it Succeeded."""
    if not wait:
        if as_json:
            print_json({"task_id": task_id})
        else:
            click.echo(task_id)
        return
    task = follow(api, task_id)
    if as_json:
        print_json(task)
    else:
        click.echo(summary(task))
    # Scripts can rely on it: anything short of every item done is a failure.
    if task["status"] != TaskStatus.SUCCEEDED:
        sys.exit(1)


def wait_option(func):
    return click.option(
        "--wait", is_flag=True, help="Follow the task with a progress display until it ends."
    )(func)


def trigger_rule(rule: str, wait: bool, as_json: bool) -> None:
    api = FerryApi(load_settings())
    found = api.resolve_rule(rule)
    started = api.call("POST", f"/rules/{found['id']}/trigger")
    finish(api, started["task_id"], wait, as_json)


@click.command("trigger")
@click.argument("rule")
@wait_option
@json_option
def trigger_command(rule: str, wait: bool, as_json: bool) -> None:
    """Trigger RULE (id or name) now; with --wait, show progress and the summary.

    With --wait the exit code is 0 only when the task Succeeded.
    """
    trigger_rule(rule, wait, as_json)


def task_row(t: dict[str, Any]) -> tuple[Any, ...]:
    return (
        t["task_id"],
        t["trigger"],
        t["status"],
        (t.get("created_at") or "")[:19],
        f"{t.get('time_spent_seconds') or 0:.1f}",
        rate(t.get("success_rate")),
        t.get("repositories_count", 0),
        t.get("total", 0),
        t.get("copied", 0),
        t.get("up_to_date", 0),
        t.get("kept", 0),
        t.get("failed", 0),
        size(t.get("bytes_transferred")),
    )


@click.command("tasks")
@click.argument("rule", required=False)
@click.option("--limit", default=20, show_default=True, help="How many tasks, newest first.")
@json_option
def tasks_command(rule: str | None, limit: int, as_json: bool) -> None:
    """Print the task log of RULE (id or name), or of every rule, newest first."""
    api = FerryApi(load_settings())
    rules = [api.resolve_rule(rule)] if rule else api.all_pages("/rules")
    rows: list[dict[str, Any]] = []
    for found in rules:
        rows += api.call(
            "GET", f"/rules/{found['id']}/tasks", params={"page_size": min(limit, 100)}
        )
    rows = sorted(rows, key=lambda t: t.get("created_at") or "", reverse=True)[:limit]
    if as_json:
        print_json(rows)
    else:
        print_table(TASK_COLUMNS, [task_row(t) for t in rows])


@click.command("items")
@click.argument("task")
@click.option(
    "--status",
    type=click.Choice([s.value for s in ItemStatus]),
    help="Only items with this outcome.",
)
@json_option
def items_command(task: str, status: str | None, as_json: bool) -> None:
    """Print the items of TASK (its task id) and their outcomes."""
    api = FerryApi(load_settings())
    query = {"status": status} if status else {}
    rows = api.all_pages(f"/tasks/{quote(task, safe='')}/items", **query)
    if as_json:
        print_json(rows)
        return
    print_table(
        ITEM_COLUMNS,
        [
            (
                f"{i['source_repository']}:{i['source_tag']}",
                f"{i['target_repository']}:{i['target_tag']}",
                i.get("kind"),
                i["outcome"],
                size(i.get("bytes_transferred")),
                f"{i['seconds']:.1f}" if i.get("seconds") is not None else None,
                i.get("worker"),
                i.get("reason"),
            )
            for i in rows
        ],
    )


@click.command("stop")
@click.argument("task")
@json_option
def stop_command(task: str, as_json: bool) -> None:
    """Stop TASK: items not yet copied end as stopped."""
    stopped = FerryApi(load_settings()).call("POST", f"/tasks/{quote(task, safe='')}/stop")
    if as_json:
        print_json(stopped)
    else:
        click.echo(f"task {stopped['task_id']} {stopped['status']} (stop requested)")


@click.command("retry")
@click.argument("task")
@wait_option
@json_option
def retry_command(task: str, wait: bool, as_json: bool) -> None:
    """Start a new task with the failed items of TASK; prints its id (or follows it)."""
    api = FerryApi(load_settings())
    started = api.call("POST", f"/tasks/{quote(task, safe='')}/retry")
    finish(api, started["task_id"], wait, as_json)
