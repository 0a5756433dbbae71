"""The sync log of a rule (with live progress and the chart) and the task page."""

from __future__ import annotations

from typing import Any
from uuid import UUID

from flask import flash, jsonify, redirect, render_template, request, url_for

from api.auth import app_settings
from api.console import charts
from api.console.base import (
    blp,
    fail,
    on_rule,
    on_task,
    page_number,
    pages,
    record,
    tenant,
)
from common import errors as ferr
from common.domain.permissions import Action
from common.domain.vocab import ItemStatus
from common.services import console
from common.services import tasks as service
from worker.dispatch import enqueue_plan

LOG_PAGE = 30
ITEM_PAGE = 100


def _log(rule_id: UUID) -> tuple[list[Any], int, int]:
    page = page_number()
    rows, total = service.list_tasks(
        app_settings(), tenant(), rule_id, limit=LOG_PAGE, offset=(page - 1) * LOG_PAGE
    )
    return rows, total, page


@blp.get("/rules/<uuid:rule_id>/log")
def rule_log(rule_id: UUID) -> Any:
    rule = on_rule(Action.TASK_READ, rule_id)
    rows, total, page = _log(rule_id)
    # The chart always shows the newest 30, whatever page the table is on.
    newest = rows if page == 1 else _newest(rule_id)
    return render_template(
        "console/rule_log.html",
        rule=rule,
        rows=rows,
        progress={t.task_id: charts.progress(t) for t in rows},
        chart=charts.chart(newest),
        page=page,
        pages=pages(total, LOG_PAGE),
    )


def _newest(rule_id: UUID) -> list[Any]:
    rows, _ = service.list_tasks(app_settings(), tenant(), rule_id, limit=LOG_PAGE, offset=0)
    return rows


@blp.get("/rules/<uuid:rule_id>/log.json")
def rule_log_json(rule_id: UUID) -> Any:
    """What the log page polls while a task runs."""
    on_rule(Action.TASK_READ, rule_id)
    rows, _, _ = _log(rule_id)
    return jsonify({"tasks": [charts.progress(t) for t in rows]})


@blp.get("/tasks/<string:task_id>")
def task(task_id: str) -> Any:
    on_task(Action.TASK_READ, task_id)
    row = service.get_task(app_settings(), tenant(), task_id)
    raw = request.args.get("status") or None
    status = ItemStatus(raw) if raw in set(ItemStatus) else None
    page = page_number()
    items, count = service.list_items(
        app_settings(),
        tenant(),
        task_id,
        status=status,
        limit=ITEM_PAGE,
        offset=(page - 1) * ITEM_PAGE,
    )
    return render_template(
        "console/task.html",
        task=row,
        rule=_rule_or_none(row.rule_id),
        progress=charts.progress(row),
        throughput=charts.throughput(row),
        starter=console.task_starter(app_settings(), tenant(), row),
        items=items,
        item_status=status,
        statuses=[s for s in ItemStatus],
        page=page,
        pages=pages(count, ITEM_PAGE),
        count=count,
    )


def _rule_or_none(rule_id: UUID | None) -> Any:
    if rule_id is None:
        return None
    try:
        return on_rule(Action.TASK_READ, rule_id)
    except ferr.NotFound:
        return None


@blp.get("/tasks/<string:task_id>/progress.json")
def task_json(task_id: str) -> Any:
    on_task(Action.TASK_READ, task_id)
    return jsonify(
        {"tasks": [charts.progress(service.get_task(app_settings(), tenant(), task_id))]}
    )


@blp.post("/tasks/<string:task_id>/stop")
def stop_task(task_id: str) -> Any:
    on_task(Action.TASK_STOP, task_id)
    try:
        service.stop_task(app_settings(), tenant(), task_id)
    except ferr.Conflict as exc:
        return fail(exc, url_for("console.task", task_id=task_id))
    record("task", task_id, "stop")
    flash(f"Task {task_id} is stopping.", "success")
    return redirect(url_for("console.task", task_id=task_id))


@blp.post("/tasks/<string:task_id>/retry")
def retry_task(task_id: str) -> Any:
    on_task(Action.TASK_RETRY, task_id)
    try:
        new = service.retry_task(app_settings(), tenant(), task_id)
    except ferr.Conflict as exc:
        return fail(exc, url_for("console.task", task_id=task_id))
    enqueue_plan(new.id, new.trigger)
    record("task", task_id, "retry", task_id=new.task_id)
    flash(f"Task {new.task_id} retries the failed items of {task_id}.", "success")
    return redirect(url_for("console.task", task_id=new.task_id))
