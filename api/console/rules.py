"""Rules of the current (source) instance: the list, the form, preview, switches, delete."""

from __future__ import annotations

import re
from typing import Any
from uuid import UUID

from flask import flash, redirect, render_template, request, url_for

from api.auth import app_settings, authorize_instances
from api.console import rule_form
from api.console.base import (
    PAGE_SIZE,
    blp,
    fail,
    granted,
    load,
    on_instance,
    on_rule,
    page_number,
    pages,
    record,
    refused,
    show_errors,
    tenant,
)
from api.console.forms import RuleForm, option
from api.schemas.rule_options import DELETION_WARNING
from api.schemas.rules import RuleSchema
from common import errors as ferr
from common.domain.operations import health_label
from common.domain.permissions import Action
from common.domain.rules import RULE_NAME
from common.services import console
from common.services import instances as instance_service
from common.services import rules as service
from common.services import tasks as task_service
from common.services.access import spec_scope
from common.services.preview import explain_empty_preview, preview_rule
from common.services.rule_health import health_of_rules
from worker.dispatch import enqueue_plan

PREVIEW_SIZE = 20


def _instances() -> list[Any]:
    rows, _ = instance_service.list_instances(
        app_settings(), tenant(), limit=200, offset=0, only=granted()
    )
    return rows


@blp.get("/rules")
def rules_home() -> Any:
    """The rules of the first instance (the product starts from an instance)."""
    chosen = request.args.get("instance")
    if chosen:
        return redirect(url_for("console.rules", instance_id=chosen))
    rows = _instances()
    if not rows:
        flash("Add an instance first: rules copy from one instance to another.", "info")
        return redirect(url_for("console.instances"))
    return redirect(url_for("console.rules", instance_id=rows[0].id))


@blp.get("/instances/<uuid:instance_id>/rules")
def rules(instance_id: UUID) -> Any:
    on_instance(Action.RULE_READ, instance_id)
    page = page_number()
    rows, total = service.list_rules(
        app_settings(),
        tenant(),
        source_instance_id=instance_id,
        limit=PAGE_SIZE,
        offset=(page - 1) * PAGE_SIZE,
        only=granted(),
    )
    instances = _instances()
    return render_template(
        "console/rules.html",
        rows=rows,
        instance=next((i for i in instances if i.id == instance_id), None),
        instances=instances,
        names={i.id: i.name for i in instances},
        last=console.last_tasks(app_settings(), tenant(), [r.id for r in rows]),
        healths=_healths(rows),
        page=page,
        pages=pages(total),
    )


def _healths(rows: list[Any]) -> dict[UUID, tuple[str, str]]:
    """Each rule's health as the API shows it: (one word or the refusal, the reason)."""
    health = health_of_rules(app_settings(), rows)
    return {r.id: (health_label(r, health[r.id]), health[r.id].reason) for r in rows}


def _form_page(form: RuleForm, instance: Any, rule: Any, problems: list[str]) -> Any:
    form.target_instance_id.choices = [option("", "— choose —")] + [
        option(str(i.id), f"{i.name} ({i.url})") for i in _instances()
    ]
    return render_template(
        "console/rule_form.html",
        form=form,
        instance=instance,
        rule=rule,
        problems=problems,
        name_pattern=_html_pattern(RULE_NAME.pattern),
        deletion_warning=DELETION_WARNING,
    )


def _html_pattern(pattern: str) -> str:
    """A Python pattern as a browser's ``pattern`` attribute reads it (unicode-sets mode,
    where a literal ``-`` in a class must be escaped)."""
    return re.sub(r"-(?=\])", r"\\-", pattern)


def _save(form: RuleForm, instance_id: UUID, rule_id: UUID | None) -> tuple[Any, list[str]]:
    """(saved rule, None) or (None, messages for the top) with field errors on the form."""
    body = rule_form.body_from(form, str(instance_id))
    spec, errors = load(RuleSchema(), body)
    if not errors:
        action = Action.RULE_UPDATE if rule_id else Action.RULE_CREATE
        authorize_instances(action, f"rule {rule_id or 'new'}", spec_scope(spec))
        try:
            if rule_id is None:
                return service.create_rule(app_settings(), tenant(), spec), []
            return service.replace_rule(app_settings(), tenant(), rule_id, spec), []
        except ferr.FerryError as exc:
            errors = refused(exc)
    return None, show_errors(form, errors, rule_form.paths_for(form))


@blp.route("/instances/<uuid:instance_id>/rules/new", methods=["GET", "POST"])
def new_rule(instance_id: UUID) -> Any:
    on_instance(Action.RULE_CREATE, instance_id)
    instance = instance_service.get_instance(app_settings(), tenant(), instance_id)
    form = RuleForm()
    problems: list[str] = []
    if form.validate_on_submit():
        row, problems = _save(form, instance_id, None)
        if row is not None:
            record("rule", row.id, "create", name=row.name)
            flash(f"Rule {row.name} created.", "success")
            return redirect(url_for("console.rules", instance_id=instance_id))
    return _form_page(form, instance, None, problems), 422 if problems or form.errors else 200


@blp.route("/rules/<uuid:rule_id>/edit", methods=["GET", "POST"])
def edit_rule(rule_id: UUID) -> Any:
    rule = on_rule(Action.RULE_UPDATE, rule_id)
    instance = instance_service.get_instance(app_settings(), tenant(), rule.source_instance_id)
    form = RuleForm()
    problems: list[str] = []
    if request.method == "GET":
        rule_form.fill(form, rule)
    elif form.validate_on_submit():
        row, problems = _save(form, rule.source_instance_id, rule_id)
        if row is not None:
            record("rule", rule_id, "update", name=row.name)
            flash(f"Rule {row.name} saved.", "success")
            return redirect(url_for("console.rules", instance_id=rule.source_instance_id))
    status = 422 if problems or form.errors else 200
    return _form_page(form, instance, rule, problems), status


@blp.get("/rules/<uuid:rule_id>/preview")
def preview(rule_id: UUID) -> Any:
    """The first matches of the rule now (``?fragment=1``: the table alone, for the form)."""
    rule = on_rule(Action.RULE_READ, rule_id)
    error = None
    try:
        page = preview_rule(app_settings(), tenant(), rule_id, offset=0, size=PREVIEW_SIZE)
        candidates, more = page.candidates, page.item_count is None
    except ferr.FerryError as exc:
        candidates, more, error = [], False, exc.message
    # Nothing selected: say which filter excluded what, as the API and the CLI do.
    why = None if candidates or error else _why_empty(rule_id)
    fragment = request.args.get("fragment")
    return render_template(
        "console/preview_table.html" if fragment else "console/preview.html",
        rule=rule,
        candidates=candidates,
        more=more,
        error=error,
        why=why,
    )


def _why_empty(rule_id: UUID) -> str | None:
    try:
        explanation = explain_empty_preview(app_settings(), tenant(), rule_id)
    except ferr.FerryError:
        return None
    return explanation.message if explanation else None


def _switch(rule_id: UUID, enabled: bool) -> Any:
    rule = on_rule(Action.RULE_UPDATE, rule_id)
    service.set_enabled(app_settings(), tenant(), rule_id, enabled)
    record("rule", rule_id, "enable" if enabled else "disable")
    flash(f"Rule {rule.name} {'enabled' if enabled else 'disabled'}.", "success")
    return redirect(url_for("console.rules", instance_id=rule.source_instance_id))


@blp.post("/rules/<uuid:rule_id>/enable")
def enable_rule(rule_id: UUID) -> Any:
    return _switch(rule_id, True)


@blp.post("/rules/<uuid:rule_id>/disable")
def disable_rule(rule_id: UUID) -> Any:
    return _switch(rule_id, False)


@blp.post("/rules/<uuid:rule_id>/trigger")
def trigger_rule(rule_id: UUID) -> Any:
    on_rule(Action.RULE_TRIGGER, rule_id)
    try:
        task = task_service.trigger_rule(app_settings(), tenant(), rule_id)
    except ferr.Conflict as exc:
        return fail(exc, url_for("console.rules_home"))
    enqueue_plan(task.id, task.trigger)  # after the commit: the worker must find the row
    record("rule", rule_id, "trigger", task_id=task.task_id)
    flash(f"Task {task.task_id} started.", "success")
    return redirect(url_for("console.rule_log", rule_id=rule_id))


@blp.route("/rules/<uuid:rule_id>/delete", methods=["GET", "POST"])
def delete_rule(rule_id: UUID) -> Any:
    """GET asks for confirmation; POST deletes."""
    rule = on_rule(Action.RULE_DELETE, rule_id)
    if request.method == "GET":
        return render_template("console/confirm_delete.html", rule=rule)
    service.delete_rule(app_settings(), tenant(), rule_id)
    record("rule", rule_id, "delete", name=rule.name)
    flash(f"Rule {rule.name} deleted.", "success")
    return redirect(url_for("console.rules", instance_id=rule.source_instance_id))
