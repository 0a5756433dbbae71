"""Sign-in, sign-out and the root page."""

from __future__ import annotations

import time
from typing import Any

from flask import flash, redirect, render_template, request, session, url_for
from flask_limiter.errors import RateLimitExceeded
from flask_login import current_user, login_user, logout_user

from api.auth import app_settings
from api.console.base import ConsoleUser, blp, login_blp
from api.console.forms import LoginForm
from common.services import console


def _safe_next(target: str | None) -> str:
    """Only a path of this site: never another host."""
    if target and target.startswith("/") and not target.startswith("//") and "\\" not in target:
        return target
    return url_for("console.instances")


@blp.get("/")
def index() -> Any:
    """The console: the sign-in page, or the instances once signed in."""
    if current_user.is_authenticated:
        return redirect(url_for("console.instances"))
    return render_template("console/login.html", form=LoginForm())


@login_blp.route("/login", methods=["GET", "POST"])
def login() -> Any:
    form = LoginForm()
    if form.validate_on_submit():
        found = console.sign_in(
            app_settings(), form.tenant.data, form.user_name.data, form.password.data
        )
        if found is not None:
            session.clear()
            principal, stamp = found
            login_user(ConsoleUser(principal, stamp))
            session.permanent = True
            session["signed_in_at"] = time.time()
            return redirect(_safe_next(request.args.get("next")))
        form.password.errors = ["Unknown account, user name or password."]
        return render_template("console/login.html", form=form), 401
    return render_template("console/login.html", form=form)


@login_blp.errorhandler(RateLimitExceeded)
def _too_many(exc: RateLimitExceeded) -> Any:
    form = LoginForm()
    form.password.errors = [f"Too many sign-in attempts ({exc.description}); wait and try again."]
    return render_template("console/login.html", form=form), 429


@blp.post("/logout")
def logout() -> Any:
    logout_user()
    session.clear()
    flash("Signed out.", "info")
    return redirect(url_for("console.index"))
