"""Incoming rules (with block), and users and their keys for admins."""

from __future__ import annotations

from typing import Any
from uuid import UUID

from flask import flash, redirect, render_template, url_for

from api.auth import app_settings, authorize_instances
from api.console.base import (
    PAGE_SIZE,
    blp,
    fail,
    granted,
    load,
    page_number,
    pages,
    principal,
    record,
    refused,
    require,
    show_errors,
    tenant,
)
from api.console.forms import KeyForm, UserEditForm, UserForm
from api.schemas.users import UserPatchSchema, UserSchema
from common import errors as ferr
from common.domain.permissions import Action
from common.services import apikeys, incoming, users
from common.services import instances as instance_service


@blp.get("/incoming")
def incoming_rules() -> Any:
    require(Action.INCOMING_READ)
    page = page_number()
    rows, total = incoming.list_incoming(
        app_settings(), tenant(), limit=PAGE_SIZE, offset=(page - 1) * PAGE_SIZE, only=granted()
    )
    mine, _ = instance_service.list_instances(app_settings(), tenant(), limit=200, offset=0)
    return render_template(
        "console/incoming.html",
        rows=rows,
        names={i.id: i.name for i in mine},
        page=page,
        pages=pages(total),
    )


def _set_blocked(rule_id: UUID, blocked: bool) -> Any:
    require(Action.INCOMING_BLOCK)
    row = incoming.get_incoming(app_settings(), tenant(), rule_id)
    authorize_instances(
        Action.INCOMING_BLOCK, f"incoming rule {rule_id}", [row["target_instance_id"]]
    )
    incoming.set_blocked(app_settings(), tenant(), rule_id, blocked)
    record("incoming-rule", rule_id, "block" if blocked else "unblock")
    flash(f"Rule {row['name']} {'blocked' if blocked else 'unblocked'}.", "success")
    return redirect(url_for("console.incoming_rules"))


@blp.post("/incoming/<uuid:rule_id>/block")
def block_incoming(rule_id: UUID) -> Any:
    return _set_blocked(rule_id, True)


@blp.post("/incoming/<uuid:rule_id>/unblock")
def unblock_incoming(rule_id: UUID) -> Any:
    return _set_blocked(rule_id, False)


def _grants(text: str | None) -> list[str]:
    return [g.strip() for g in (text or "*").split(",") if g.strip()] or ["*"]


@blp.route("/users", methods=["GET", "POST"])
def users_page() -> Any:
    require(Action.USER_READ)
    form = UserForm()
    problems: list[str] = []
    if form.validate_on_submit():
        require(Action.USER_MANAGE)
        data = {
            "name": (form.name.data or "").strip(),
            "role": form.role.data,
            "password": form.password.data or None,
            "grants": _grants(form.grants.data),
        }
        if data["password"] is None:
            data.pop("password")
        values, errors = load(UserSchema(), data)
        if not errors:
            try:
                row = users.create_user(app_settings(), tenant(), values)
            except ferr.FerryError as exc:
                errors = refused(exc)
            else:
                record("user", row.id, "create", name=row.name, role=row.role)
                flash(f"User {row.name} created.", "success")
                return redirect(url_for("console.users_page"))
        problems = show_errors(form, errors, {"_schema": ""})
    page = page_number()
    rows, total = users.list_users(
        app_settings(), tenant(), limit=PAGE_SIZE, offset=(page - 1) * PAGE_SIZE
    )
    status = 422 if problems or form.errors else 200
    return render_template(
        "console/users.html",
        rows=rows,
        form=form,
        problems=problems,
        page=page,
        pages=pages(total),
    ), status


@blp.post("/users/<uuid:user_id>/delete")
def delete_user(user_id: UUID) -> Any:
    require(Action.USER_MANAGE)
    if user_id == principal().user_id:
        flash("You cannot delete the user you are signed in as.", "error")
        return redirect(url_for("console.users_page"))
    try:
        row = users.delete_user(app_settings(), tenant(), user_id)
    except ferr.Conflict as exc:
        return fail(exc, url_for("console.users_page"))
    record("user", user_id, "delete", name=row.name)
    flash(f"User {row.name} deleted.", "success")
    return redirect(url_for("console.users_page"))


@blp.route("/users/<uuid:user_id>/keys", methods=["GET", "POST"])
def user_keys(user_id: UUID) -> Any:
    require(Action.KEY_MANAGE)
    user = users.get_user(app_settings(), tenant(), user_id)
    form = KeyForm()
    new = None
    if form.validate_on_submit():
        try:
            new = apikeys.create_key(
                app_settings(),
                tenant(),
                user_id,
                kind=form.kind.data,
                description=form.description.data or "",
            )
        except ferr.FerryError as exc:
            show_errors(form, refused(exc), {"_schema": "description"})
        else:
            record("key", new.key.id, "create", kind=new.key.kind, prefix=new.key.prefix)
    keys, _ = apikeys.list_keys(app_settings(), tenant(), user_id, limit=200, offset=0)
    edit = UserEditForm(formdata=None, role=user.role, grants=", ".join(user.grants))
    return render_template("console/keys.html", user=user, keys=keys, form=form, new=new, edit=edit)


@blp.post("/users/<uuid:user_id>/edit")
def edit_user(user_id: UUID) -> Any:
    """Change a user's role, grants or console password (the last admin stays admin)."""
    require(Action.USER_MANAGE)
    form = UserEditForm()
    data = {"role": form.role.data, "grants": _grants(form.grants.data)}
    if form.password.data:
        data["password"] = form.password.data
    values, errors = load(UserPatchSchema(), data)
    try:
        if errors:
            raise ferr.ValidationError("; ".join(f"{k}: {' '.join(v)}" for k, v in errors.items()))
        row = users.update_user(app_settings(), tenant(), user_id, values)
    except ferr.FerryError as exc:
        return fail(exc, url_for("console.user_keys", user_id=user_id))
    record("user", user_id, "update", fields=sorted(values))
    flash(f"User {row.name} saved.", "success")
    return redirect(url_for("console.user_keys", user_id=user_id))


@blp.post("/users/<uuid:user_id>/keys/<uuid:key_id>/revoke")
def revoke_key(user_id: UUID, key_id: UUID) -> Any:
    require(Action.KEY_MANAGE)
    apikeys.revoke_key(app_settings(), tenant(), user_id, key_id)
    record("key", key_id, "revoke", user_id=str(user_id))
    flash("Key revoked.", "success")
    return redirect(url_for("console.user_keys", user_id=user_id))
