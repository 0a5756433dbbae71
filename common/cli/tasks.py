"""``ferry trigger`` and ``ferry tasks``: the sync log from a terminal, through the API."""

from __future__ import annotations

import sys
import time

import click

from common.cli.apiclient import FerryApi
from common.domain.vocab import FINAL_TASK_STATUSES, TaskStatus
from common.settings import load_settings


def _size(n: int | None) -> str:
    value = float(n or 0)
    for unit in ("B", "KiB", "MiB", "GiB"):
        if value < 1024 or unit == "GiB":
            return f"{value:.0f} {unit}" if unit == "B" else f"{value:.1f} {unit}"
        value /= 1024
    return f"{value:.1f} GiB"


def _done(task: dict) -> int:
    return sum(
        task.get(k) or 0 for k in ("copied", "up_to_date", "kept", "failed", "stopped", "deleted")
    )


def _summary(task: dict) -> str:
    rate = task.get("success_rate")
    rate_s = f"{float(rate) * 100:.1f}%" if rate is not None else "-"
    spent = task.get("time_spent_seconds")
    return (
        f"task {task['task_id']} {task['status']}: {task.get('total', 0)} items "
        f"({task.get('copied', 0)} copied, {task.get('up_to_date', 0)} up-to-date, "
        f"{task.get('kept', 0)} kept, {task.get('failed', 0)} failed) in "
        f"{task.get('repositories_count', 0)} repositories, "
        f"{_size(task.get('bytes_transferred'))}, success rate {rate_s}, "
        f"{spent or 0:.1f}s" + (f" - {task['message']}" if task.get("message") else "")
    )


@click.command("trigger")
@click.argument("rule")
@click.option("--wait", is_flag=True, help="Follow the task with a progress bar until it ends.")
def trigger_command(rule: str, wait: bool) -> None:
    """Trigger RULE (id or name) now; with --wait, show progress and the summary.

    With --wait the exit code is 0 only when the task Succeeded.
    """
    api = FerryApi(load_settings())
    found = api.resolve_rule(rule)
    started = api.call("POST", f"/rules/{found['id']}/trigger")
    task_id = started["task_id"]
    if not wait:
        click.echo(task_id)
        return
    tty = sys.stderr.isatty()
    last = ""
    while True:
        task = api.call("GET", f"/tasks/{task_id}")
        total, done = task.get("total") or 0, _done(task)
        width = 30
        filled = int(width * done / total) if total else 0
        line = (
            f"[{'#' * filled}{'.' * (width - filled)}] {done}/{total} items, "
            f"{_size(task.get('bytes_transferred'))} {task['status']}"
        )
        if line != last:
            click.echo(("\r" + line) if tty else line, err=True, nl=not tty)
            last = line
        if task["status"] in FINAL_TASK_STATUSES:
            break
        time.sleep(0.5)
    if tty:
        click.echo(err=True)
    click.echo(_summary(task))
    # Scripts can rely on it: anything short of every item done is a failure.
    if task["status"] != TaskStatus.SUCCEEDED:
        sys.exit(1)


@click.command("tasks")
@click.argument("rule")
@click.option("--limit", default=20, show_default=True, help="How many tasks, newest first.")
def tasks_command(rule: str, limit: int) -> None:
    """Print the task log of RULE (id or name)."""
    api = FerryApi(load_settings())
    found = api.resolve_rule(rule)
    body = api.call("GET", f"/rules/{found['id']}/tasks", params={"page_size": limit})
    rows = body["items"] if isinstance(body, dict) else body
    header = (
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
    table = [header]
    for t in rows:
        rate = t.get("success_rate")
        table.append(
            (
                t["task_id"],
                t["trigger"],
                t["status"],
                (t.get("created_at") or "")[:19],
                f"{t.get('time_spent_seconds') or 0:.1f}",
                f"{float(rate) * 100:.0f}%" if rate is not None else "-",
                str(t.get("repositories_count", 0)),
                str(t.get("total", 0)),
                str(t.get("copied", 0)),
                str(t.get("up_to_date", 0)),
                str(t.get("kept", 0)),
                str(t.get("failed", 0)),
                _size(t.get("bytes_transferred")),
            )
        )
    widths = [max(len(str(r[i])) for r in table) for i in range(len(header))]
    for r in table:
        click.echo("  ".join(str(v).ljust(w) for v, w in zip(r, widths, strict=True)).rstrip())
