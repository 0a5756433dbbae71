"""The console's forms. They carry the CSRF token and the typed values; the rules about
what is valid stay in the API's schemas and in common.services, which the pages call."""

from __future__ import annotations

from flask_wtf import FlaskForm
from wtforms import (
    BooleanField,
    IntegerField,
    PasswordField,
    SelectField,
    StringField,
    TextAreaField,
)
from wtforms.validators import DataRequired, NumberRange, Optional

from common.domain.vocab import FilterSyntax, InstanceKind, KeyKind, Role

try:  # wtforms 3.3 deprecates (value, label) tuples in favour of SelectChoice
    from wtforms.fields.choices import SelectChoice
except ImportError:  # pragma: no cover - older wtforms
    SelectChoice = None


def option(value: str, label: str | None = None) -> object:
    """One option of a dropdown, in the shape this wtforms prefers."""
    label = value if label is None else label
    return SelectChoice(value=value, label=label) if SelectChoice else (value, label)


def options(values: object) -> list[object]:
    return [option(str(v)) for v in values]  # type: ignore[attr-defined]


class LoginForm(FlaskForm):
    tenant = StringField("Account", validators=[DataRequired()])
    user_name = StringField("User name", validators=[DataRequired()])
    password = PasswordField("Password", validators=[DataRequired()])


class InstanceForm(FlaskForm):
    name = StringField("Name")
    url = StringField("URL")
    kind = SelectField("Kind", choices=options(InstanceKind))
    region = StringField("Region")
    username = StringField("User name")
    password = PasswordField("Password")
    verify_tls = BooleanField("Verify TLS certificates", default=True)
    max_concurrent_copies = IntegerField(
        "Copy limit", default=8, validators=[Optional(), NumberRange(1, 256)]
    )


RESOURCE_CHOICES = [option("image", "Image"), option("chart", "Helm chart"), option("both", "Both")]


class RuleForm(FlaskForm):
    """The rule form, in the product's order. A new rule field is one attribute here, one
    entry in rule_form.FIELD_PATHS and one line in rule_form.html."""

    name = StringField("Rule name")
    description = TextAreaField("Description")
    source_namespace = StringField("Source namespace")
    filter_syntax = SelectField("Filter syntax", choices=options(FilterSyntax))
    repository_filter = StringField("Repository filter")
    repository_exclude = StringField("Repository exclude")
    tag_filter = StringField("Tag filter")
    tag_exclude = StringField("Tag exclude")
    semver = StringField("Version constraint")
    # Text, not IntegerField: the API's schema gives the error for a bad number.
    latest = StringField("Newest N tags per repository")
    resource_types = SelectField("Resource type", choices=RESOURCE_CHOICES, default="both")
    cross_tenant = BooleanField("Sync to another account")
    target_instance_id = SelectField("Target instance", choices=[], validate_choice=False)
    cross_instance_id = StringField("Target instance id")
    account_id = StringField("Target account id")
    username = StringField("User name")
    password = PasswordField("Password")
    target_namespace = StringField("Target namespace")
    override = BooleanField("Override")
    include_referrers = BooleanField("Copy signatures, SBOMs and attestations", default=True)
    deletion = BooleanField("Propagate deletions")
    schedule = StringField("Schedule (cron)")
    schedule_timezone = StringField("Time zone", default="UTC")
    enabled = BooleanField("Enabled", default=True)


class UserForm(FlaskForm):
    name = StringField("Name")
    role = SelectField("Role", choices=options(Role), default="viewer")
    password = PasswordField("Console password")
    grants = StringField("Instances (ids, comma-separated, or *)", default="*")


class UserEditForm(FlaskForm):
    role = SelectField("Role", choices=options(Role))
    grants = StringField("Instances (ids, comma-separated, or *)")
    password = PasswordField("New console password")


class KeyForm(FlaskForm):
    kind = SelectField("Kind", choices=options(KeyKind))
    description = StringField("Description")
