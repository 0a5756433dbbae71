"""Telling people: which notifications hear an event, and sending one delivery.

An event is recorded as one delivery row per notification that wants it (the
row's unique event key makes it go out once, however many processes see the
event); the worker then sends each delivery with apprise, retrying a few times.
Sending never raises into the caller: a failure is recorded on the delivery.
Addresses are decrypted only here, at the moment of sending, and are masked
out of every error text kept.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable
from types import ModuleType
from urllib.parse import parse_qsl, unquote, urlsplit
from uuid import UUID

from common.db import notifications as q
from common.db import transaction
from common.db.rules import get_rule
from common.db.tasks import get_task
from common.domain.models import Rule, Task
from common.domain.operations import (
    DeliveryStatus,
    DriftReport,
    DriftStatus,
    Notification,
    NotifyEvent,
    RuleHealth,
    TaskNotify,
)
from common.domain.vocab import OPEN_TASK_STATUSES, TaskStatus
from common.errors import NetworkPolicyError
from common.security.crypto import SecretBox
from common.security.netpolicy import resolve_checked
from common.settings import Settings

log = logging.getLogger(__name__)
# Attempts at sending one delivery (the first and the retries).
MAX_ATTEMPTS = 4
MAX_ERROR_CHARS = 500
SEND_TIMEOUT = 15  # seconds, per address


def encode_urls(box: SecretBox, urls: list[str]) -> bytes:
    """The addresses as stored: one encrypted JSON list."""
    return box.encrypt(json.dumps(urls))


def decode_urls(box: SecretBox, token: bytes) -> list[str]:
    return list(json.loads(box.decrypt(token)))


def _announce(
    settings: Settings,
    rule: Rule,
    event: NotifyEvent,
    key: str,
    title: str,
    body: str,
    wants: Callable[[Notification], bool],
) -> list[int]:
    """Record the event for every notification of the rule (or its tenant) that wants it;
    the new delivery ids (an event recorded before gives none)."""
    with transaction(settings) as conn:
        ids = [
            q.claim_delivery(
                conn, n.id, event=event, event_key=key, rule_id=rule.id, title=title, body=body
            )
            for n in q.listeners(conn, rule.tenant_id, rule.id)
            if wants(n)
        ]
    return [i for i in ids if i is not None]


def _task_body(rule: Rule, task: Task) -> str:
    rate = f"{float(task.success_rate) * 100:.1f}%" if task.success_rate is not None else "-"
    lines = [
        f"Rule {rule.name}: task {task.task_id} ({task.trigger}) ended {task.status}.",
        f"{task.total} items: {task.copied} copied, {task.up_to_date} up-to-date, "
        f"{task.kept} kept, {task.failed} failed, {task.stopped} stopped; success rate {rate}.",
    ]
    if task.message:
        lines.append(task.message)
    return "\n".join(lines)


def task_finished(settings: Settings, task_uuid: UUID) -> list[int]:
    """Deliveries for a finished task (none while it runs, or already announced)."""
    with transaction(settings) as conn:
        task = get_task(conn, task_uuid)
        rule = get_rule(conn, task.rule_id) if task and task.rule_id else None
    if task is None or rule is None or task.status in OPEN_TASK_STATUSES:
        return []
    status = TaskStatus(task.status)
    return _announce(
        settings,
        rule,
        NotifyEvent.TASK_FINISHED,
        f"task:{task.id}",
        f"Ferry: {rule.name} task {task.task_id} {status}",
        _task_body(rule, task),
        lambda n: TaskNotify(n.on_task).wants(status),
    )


def health_changed(
    settings: Settings, rule: Rule, before: RuleHealth | None, after: RuleHealth
) -> list[int]:
    """Deliveries for a change of a rule's health."""
    was = before.state if before else "ok"
    body = f"Rule {rule.name} went from {was} to {after.state}."
    if after.reason:
        body += f"\n{after.reason}"
    return _announce(
        settings,
        rule,
        NotifyEvent.HEALTH_CHANGED,
        f"health:{rule.id}:{after.since.isoformat()}:{after.state}",
        f"Ferry: {rule.name} is {after.state}",
        body,
        lambda n: n.on_health,
    )


def drift_found(settings: Settings, report: DriftReport) -> list[int]:
    """Deliveries for a finished drift report that found drift (none when in sync)."""
    if report.rule_id is None or report.status != DriftStatus.SUCCEEDED or report.drifted == 0:
        return []
    with transaction(settings) as conn:
        rule = get_rule(conn, report.rule_id)
    if rule is None:
        return []
    return _announce(
        settings,
        rule,
        NotifyEvent.DRIFT_FOUND,
        f"drift:{report.id}",
        f"Ferry: drift on {rule.name}",
        f"Rule {rule.name}: {report.missing} missing, {report.differs} differ, "
        f"{report.extra} extra, {report.in_sync} in sync (drift report {report.id}).",
        lambda n: n.on_drift,
    )


def _secrets_of(url: str) -> list[str]:
    """The parts of an apprise URL that may be secret: credentials, path segments, query
    values (a Slack or Teams URL carries its tokens in the path)."""
    parts = urlsplit(url)
    found = [url, parts.netloc, parts.password or "", parts.username or ""]
    found += [unquote(p) for p in parts.path.split("/")]
    found += [v for _k, v in parse_qsl(parts.query)]
    return sorted({s for s in found if len(s) >= 4}, key=len, reverse=True)


def mask(text: str, urls: list[str]) -> str:
    """``text`` with every possibly secret part of ``urls`` replaced by ``***``."""
    for url in urls:
        for secret in _secrets_of(url):
            text = text.replace(secret, "***")
    return text


def quiet_apprise() -> ModuleType:
    """The apprise module, its log kept out of Ferry's: apprise quotes addresses (secrets)
    in its messages. What a send logs is captured, masked, into the delivery log."""
    import apprise  # heavy: loaded by the processes that use it only

    logging.getLogger("apprise").propagate = False
    return apprise


# Schemes that post to any host a tenant names: held to the network policy for registries
# (never link-local or metadata addresses; FERRY_REGISTRY_ALLOW/DENY_NETWORKS).
WEBHOOK_SCHEMES = frozenset({"json", "jsons", "xml", "xmls", "form", "forms"})


def check_address(url: str, settings: Settings, *, unresolved_ok: bool = False) -> None:
    """Raise NetworkPolicyError when a generic webhook address points where Ferry must not
    connect (with ``unresolved_ok``, a name that does not resolve yet passes)."""
    parts = urlsplit(url)
    if parts.scheme.lower() not in WEBHOOK_SCHEMES or not parts.hostname:
        return
    secure = parts.scheme.lower().endswith("s")
    try:
        port = parts.port or (443 if secure else 80)
        resolve_checked(parts.hostname, port, settings)
    except ValueError:
        raise NetworkPolicyError("the address has an invalid port") from None
    except NetworkPolicyError as exc:
        if not (unresolved_ok and "does not resolve" in str(exc)):
            raise


def _send(urls: list[str], title: str, body: str, settings: Settings) -> str | None:
    """Send to every address; None when all took it, else why not (masked)."""
    for url in urls:
        try:
            check_address(url, settings)
        except NetworkPolicyError as exc:
            return mask(f"refused by the network policy: {exc}", urls)[:MAX_ERROR_CHARS]
    apprise = quiet_apprise()
    sender = apprise.Apprise()
    for url in urls:
        sender.add(url)
    with apprise.LogCapture(level=logging.WARNING) as captured:
        ok = sender.notify(body=body, title=title, timeout=SEND_TIMEOUT)
        text = captured.getvalue()
    if ok:
        return None
    lines = [line for line in text.splitlines() if line.strip()]
    return mask(" | ".join(lines[-3:]) or "apprise reported a failure", urls)[:MAX_ERROR_CHARS]


def deliver(settings: Settings, delivery_id: int, attempt: int) -> bool:
    """Send one delivery (attempt ``attempt`` of :data:`MAX_ATTEMPTS`) and record how it
    went; True when it is done (sent, given up, or nothing to send), False to retry."""
    with transaction(settings) as conn:
        delivery = q.get_delivery(conn, delivery_id)
        notification = q.get_notification(conn, delivery.notification_id) if delivery else None
    if delivery is None or notification is None or delivery.status != DeliveryStatus.PENDING:
        return True
    urls: list[str] = []
    try:
        urls = decode_urls(SecretBox(settings), notification.urls_enc)
        error = _send(urls, delivery.title, delivery.body, settings)
    except Exception as exc:  # a notification never breaks anything else
        error = mask(f"{type(exc).__name__}: {exc}", urls)[:MAX_ERROR_CHARS]
    last = attempt >= MAX_ATTEMPTS
    if error is None:
        status = DeliveryStatus.SENT
    else:
        status = DeliveryStatus.FAILED if last else DeliveryStatus.PENDING
        log.warning("notification %s, delivery %s: attempt %s failed", notification.id,
                    delivery_id, attempt)  # fmt: skip
    with transaction(settings) as conn:
        q.record_attempt(conn, delivery_id, status, error or "")
    return status != DeliveryStatus.PENDING
