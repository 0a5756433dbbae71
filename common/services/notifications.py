"""Notifications of a tenant: create, read, change and delete them, and read their log.

Addresses are apprise URLs; they are checked by apprise, stored encrypted and
never returned: a notification shows only the schemes of its addresses.
"""

from __future__ import annotations

import datetime as dt
import uuid
from collections.abc import Mapping
from typing import Any
from uuid import UUID

from common import db as database
from common.db import notifications as q
from common.db.rules import get_rule
from common.domain.operations import Delivery, Notification, NotifyEvent, TaskNotify
from common.errors import NetworkPolicyError, ValidationError, found
from common.security.crypto import SecretBox
from common.services.notify import check_address, encode_urls, quiet_apprise
from common.settings import Settings

MAX_URLS = 10
MAX_URL_CHARS = 2048


def _scheme(url: str) -> str:
    return url.split("://", 1)[0].lower() if "://" in url else ""


def check_urls(urls: Any, settings: Settings) -> list[str]:
    """The addresses if apprise understands each; ValidationError on ``urls`` otherwise.
    Messages name an address by its position and scheme only (the rest may be secret)."""
    if not isinstance(urls, list) or not urls:
        raise ValidationError("urls: give one or more apprise URLs", {"urls": ["required"]})
    if len(urls) > MAX_URLS:
        raise ValidationError(f"urls: at most {MAX_URLS}", {"urls": [f"at most {MAX_URLS}"]})
    apprise = quiet_apprise()
    errors = []
    for i, url in enumerate(urls, 1):
        if not isinstance(url, str) or len(url) > MAX_URL_CHARS or "\x00" in url:
            errors.append(f"address #{i} is not a URL of at most {MAX_URL_CHARS} characters")
        elif not apprise.Apprise().add(url):
            errors.append(
                f"address #{i} ({_scheme(url) or 'no scheme'}://...) is not an apprise URL "
                "apprise can send to"
            )
        else:
            try:
                check_address(url, settings, unresolved_ok=True)
            except NetworkPolicyError as exc:
                errors.append(f"address #{i} is refused by the network policy: {exc}")
    if errors:
        raise ValidationError("urls: " + "; ".join(errors), {"urls": errors})
    return list(urls)


def _check_rule(settings: Settings, tenant_id: UUID, rule_id: UUID | None) -> None:
    if (
        rule_id is not None
        and database.in_transaction(settings, get_rule, rule_id, tenant_id) is None
    ):
        raise ValidationError("rule_id: not a rule of yours", {"rule_id": ["rule not found"]})


def _values(settings: Settings, spec: Mapping[str, Any]) -> dict[str, Any]:
    values = {k: spec[k] for k in ("name", "on_health", "on_drift", "enabled") if k in spec}
    if "on_task" in spec:
        values["on_task"] = TaskNotify(spec["on_task"]).value
    if "rule_id" in spec:
        values["rule_id"] = spec["rule_id"]
    if "urls" in spec:
        urls = check_urls(spec["urls"], settings)
        values["urls_enc"] = encode_urls(SecretBox(settings), urls)
        values["schemes"] = sorted({_scheme(u) for u in urls})
    return values


def create_notification(
    settings: Settings, tenant_id: UUID, spec: Mapping[str, Any]
) -> Notification:
    """A new notification of the tenant (for one of its rules, or for all of them)."""
    _check_rule(settings, tenant_id, spec.get("rule_id"))
    values = _values(settings, spec)
    with database.transaction(settings) as conn:
        return q.insert_notification(conn, tenant_id, values)


def get_notification(settings: Settings, tenant_id: UUID, notification_id: UUID) -> Notification:
    row = database.in_transaction(settings, q.get_notification, notification_id, tenant_id)
    return found(row, "notification not found")


def list_notifications(
    settings: Settings, tenant_id: UUID, *, rule_id: UUID | None, limit: int, offset: int
) -> tuple[list[Notification], int]:
    return database.in_transaction(
        settings, q.list_notifications, tenant_id, rule_id=rule_id, limit=limit, offset=offset
    )


def update_notification(
    settings: Settings, tenant_id: UUID, notification_id: UUID, patch: Mapping[str, Any]
) -> Notification:
    """Change some fields; new ``urls`` replace the stored ones."""
    get_notification(settings, tenant_id, notification_id)
    _check_rule(settings, tenant_id, patch.get("rule_id"))
    values = _values(settings, patch)
    with database.transaction(settings) as conn:
        row = q.update_notification(conn, notification_id, tenant_id, values)
    return found(row, "notification not found")


def delete_notification(settings: Settings, tenant_id: UUID, notification_id: UUID) -> None:
    with database.transaction(settings) as conn:
        found(
            q.delete_notification(conn, notification_id, tenant_id) or None,
            "notification not found",
        )


def list_deliveries(
    settings: Settings, tenant_id: UUID, notification_id: UUID, *, limit: int, offset: int
) -> tuple[list[Delivery], int]:
    """The notification's delivery log, newest first."""
    get_notification(settings, tenant_id, notification_id)
    return database.in_transaction(
        settings, q.list_deliveries, notification_id, limit=limit, offset=offset
    )


def send_test(settings: Settings, tenant_id: UUID, notification_id: UUID) -> int:
    """Record a test message for the notification; the delivery id to send."""
    notification = get_notification(settings, tenant_id, notification_id)
    now = dt.datetime.now(dt.UTC)
    with database.transaction(settings) as conn:
        delivery = q.claim_delivery(
            conn,
            notification.id,
            event=NotifyEvent.TEST,
            event_key=f"test:{uuid.uuid4()}",
            rule_id=notification.rule_id,
            title=f"Ferry: test of notification {notification.name}",
            body=f"A test message from Ferry, sent {now:%Y-%m-%d %H:%M:%S} UTC.",
        )
    assert delivery is not None
    return delivery
