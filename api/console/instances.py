"""Instances: the list with health, add and edit, and the webhook snippet shown once."""

from __future__ import annotations

from typing import Any
from uuid import UUID

from flask import flash, redirect, render_template, request, url_for

from api.auth import app_settings
from api.console.base import (
    PAGE_SIZE,
    blp,
    granted,
    load,
    on_instance,
    page_number,
    pages,
    record,
    refused,
    require,
    show_errors,
    tenant,
)
from api.console.forms import InstanceForm
from api.schemas.instances import InstancePatchSchema, InstanceSchema
from common import errors as ferr
from common.domain.permissions import Action
from common.services import instances as service

FIELDS = ("name", "url", "kind", "region", "username", "password", "verify_tls")


def _form_data(form: InstanceForm, *, keep_blank_password: bool) -> dict[str, Any]:
    data: dict[str, Any] = {f: getattr(form, f).data for f in FIELDS}
    data["max_concurrent_copies"] = form.max_concurrent_copies.data or 8
    for f in ("name", "url", "region"):
        data[f] = (data[f] or "").strip()
    for f in ("username", "password"):
        data[f] = (data[f] or "") or None
    if keep_blank_password and data["password"] is None:
        data.pop("password")
        data.pop("username")
    return data


@blp.get("/instances")
def instances() -> Any:
    page = page_number()
    rows, total = service.list_instances(
        app_settings(), tenant(), limit=PAGE_SIZE, offset=(page - 1) * PAGE_SIZE, only=granted()
    )
    return render_template(
        "console/instances.html", rows=rows, page=page, pages=pages(total), total=total
    )


@blp.route("/instances/new", methods=["GET", "POST"])
def new_instance() -> Any:
    require(Action.INSTANCE_CREATE)
    form = InstanceForm()
    problems: list[str] = []
    if form.validate_on_submit():
        values, errors = load(InstanceSchema(), _form_data(form, keep_blank_password=False))
        if not errors:
            try:
                row, secret = service.create_instance(app_settings(), tenant(), values)
            except ferr.FerryError as exc:
                errors = refused(exc)
            else:
                record("instance", row.id, "create", name=row.name)
                return _secret_page(row, secret, created=True)
        problems = show_errors(form, errors, {"_schema": ""})
    status = 422 if form.errors or problems else 200
    return render_template(
        "console/instance_form.html", form=form, row=None, problems=problems
    ), status


def _secret_page(row: Any, secret: str, *, created: bool) -> Any:
    """The webhook secret, once, with the snippet to paste into the registry."""
    webhook_url = request.host_url.rstrip("/") + f"/api/v1/webhooks/{row.id}"
    return render_template(
        "console/instance_secret.html",
        row=row,
        secret=secret,
        webhook_url=webhook_url,
        created=created,
    ), (201 if created else 200)


@blp.route("/instances/<uuid:instance_id>/edit", methods=["GET", "POST"])
def edit_instance(instance_id: UUID) -> Any:
    on_instance(Action.INSTANCE_UPDATE, instance_id)
    row = service.get_instance(app_settings(), tenant(), instance_id)
    form = InstanceForm(obj=row)
    problems: list[str] = []
    if form.validate_on_submit():
        data = _form_data(form, keep_blank_password=True)
        current = {f: getattr(row, f) for f in data if hasattr(row, f)}
        changes = {k: v for k, v in data.items() if k not in current or current[k] != v}
        if "password" in changes:  # the service takes user name and password together
            changes["username"] = data["username"]
        values, errors = load(InstancePatchSchema(), changes)
        if not errors:
            try:
                service.update_instance(app_settings(), tenant(), instance_id, values)
            except ferr.FerryError as exc:
                errors = refused(exc)
            else:
                record("instance", instance_id, "update", fields=sorted(values))
                flash(f"Instance {form.name.data} saved.", "success")
                return redirect(url_for("console.instances"))
        problems = show_errors(form, errors, {"_schema": ""})
    status = 422 if form.errors or problems else 200
    return render_template(
        "console/instance_form.html", form=form, row=row, problems=problems
    ), status


@blp.post("/instances/<uuid:instance_id>/webhook-secret")
def rotate_secret(instance_id: UUID) -> Any:
    on_instance(Action.INSTANCE_UPDATE, instance_id)
    secret = service.rotate_webhook_secret(app_settings(), tenant(), instance_id)
    record("instance", instance_id, "rotate-webhook-secret")
    row = service.get_instance(app_settings(), tenant(), instance_id)
    return _secret_page(row, secret, created=False)


@blp.post("/instances/<uuid:instance_id>/check")
def check_instance(instance_id: UUID) -> Any:
    """Check the registry now; the list shows the result as the instance's health."""
    on_instance(Action.INSTANCE_READ, instance_id)
    row = service.check_instance(app_settings(), tenant(), instance_id)
    if row.check_error:
        flash(f"{row.name}: {row.check_error}", "error")
    else:
        flash(f"{row.name} answers.", "success")
    return redirect(url_for("console.instances"))
