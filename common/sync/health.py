"""Rule health checks: can the rule still copy, and has it lately?

A check proves, with the credentials the rule uses and nothing written:
the source lists the namespace; the target accepts a login and opens an upload
session (cancelled at once); a blocked or suspended rule is ``broken`` without
asking anyone. Then the last task's status and, where pushes are expected
(the source instance has a webhook secret), the webhook's silence can make it
``degraded``. The result is stored with ``since`` kept while the state holds.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from uuid import UUID

import psycopg

from common.db import health as q
from common.db import transaction
from common.db.instances import get_instance
from common.db.rules import get_rule
from common.domain.models import Instance, Rule
from common.domain.operations import HealthState, RuleHealth
from common.domain.vocab import TaskStatus
from common.errors import AuthError, FerryError, NetworkPolicyError, RegistryUnavailable
from common.registry import RegistryClient
from common.security.crypto import SecretBox
from common.settings import Settings
from common.sync.clients import refusal
from common.sync.credentials import (
    CHECK_RETRY,
    CHECK_TIMEOUT,
    PERMISSION_CHECK_REPOSITORY,
    check_registry,
    instance_credentials,
    target_credentials,
)

MAX_REASON_CHARS = 500
DEGRADING = (TaskStatus.FAILED, TaskStatus.PARTIALLY_SUCCEEDED)
# Reasons a task gives the health of its rule start with this (a later success clears them).
TASK_REASON = "last task "


@dataclass(frozen=True)
class HealthChange:
    """A stored check: the row before (None: never checked) and after."""

    rule: Rule
    before: RuleHealth | None
    after: RuleHealth

    @property
    def changed(self) -> bool:
        """True when the state moved (a first check counts only when it is not ok)."""
        if self.before is None:
            return self.after.state != HealthState.OK
        return self.before.state != self.after.state


def _why(role: str, exc: FerryError) -> str:
    if isinstance(exc, AuthError):
        what = "refused the credentials"
    elif isinstance(exc, RegistryUnavailable | NetworkPolicyError):
        what = "is unreachable"
    else:
        what = "cannot be used"
    return f"{role} {what}: {exc}"[:MAX_REASON_CHARS]


def _probe_source(instance: Instance, rule: Rule, box: SecretBox, settings: Settings) -> None:
    user, password = instance_credentials(instance, box)
    client = RegistryClient(
        instance.url,
        username=user,
        password=password,
        verify_tls=instance.verify_tls,
        settings=settings,
        timeout=CHECK_TIMEOUT,
        retry=CHECK_RETRY,
    )
    with client:
        next(iter(client.iter_repositories(prefix=rule.source_namespace + "/")), None)


def _webhook_silence(
    conn: psycopg.Connection, source: Instance, settings: Settings, now: dt.datetime
) -> str | None:
    """Why the webhook counts as silent, or None (heard lately, or no push expected)."""
    limit = settings.webhook_silence_after
    if not limit or source.webhook_secret_hash is None:
        return None
    heard = q.last_webhook_at(conn, source.id)
    # Never heard: measured from when the instance could first have been configured.
    reference = heard or source.created_at
    if (now - reference).total_seconds() <= limit:
        return None
    since = "never" if heard is None else f"not since {heard:%Y-%m-%d %H:%M} UTC"
    return (
        f"no webhook heard from source instance {source.name} ({since}; "
        f"FERRY_WEBHOOK_SILENCE_AFTER={limit}s)"
    )


def diagnose(rule: Rule, settings: Settings, now: dt.datetime) -> tuple[HealthState, str]:
    """Run the checks of one rule; (state, reason)."""
    with transaction(settings) as conn:
        source = get_instance(conn, rule.source_instance_id)
        target = get_instance(conn, rule.target_instance_id) if rule.target_instance_id else None
        refused = refusal(rule, target)
        if refused is not None:
            return HealthState.BROKEN, refused
        if source is None or target is None:
            return HealthState.BROKEN, "the rule's source or target instance no longer exists"
        box = SecretBox(settings)
        tu, tp = target_credentials(conn, rule, box)
        last = q.last_final_status(conn, rule.id)
        silence = _webhook_silence(conn, source, settings, now) if rule.enabled else None
    try:
        _probe_source(source, rule, box, settings)
    except FerryError as exc:
        return HealthState.BROKEN, _why("the source", exc)
    push_to = f"{rule.effective_target_namespace}/{PERMISSION_CHECK_REPOSITORY}"
    try:
        check_registry(target.url, tu, tp, target.verify_tls, settings, push_to)
    except FerryError as exc:
        return HealthState.BROKEN, _why("the target", exc)
    if last is not None and last[0] in DEGRADING:
        return HealthState.DEGRADED, f"{TASK_REASON}{last[0]}: {last[1]}"[:MAX_REASON_CHARS]
    if silence:
        return HealthState.DEGRADED, silence
    return HealthState.OK, ""


def check_rule(
    rule_id: UUID, settings: Settings, now: dt.datetime | None = None
) -> HealthChange | None:
    """Check the rule and store the result; None when the rule no longer exists."""
    with transaction(settings) as conn:
        rule = get_rule(conn, rule_id)
    if rule is None:
        return None
    state, reason = diagnose(rule, settings, now or dt.datetime.now(dt.UTC))
    with transaction(settings) as conn:
        before, after = q.record_health(conn, rule.id, state, reason)
    return HealthChange(rule, before, after)


def after_task(
    rule_id: UUID, status: TaskStatus, message: str, settings: Settings
) -> HealthChange | None:
    """What a finished task says of its rule without asking a registry: a failed or partly
    successful task degrades an ok rule, a success clears what an earlier task said.
    Broken stays broken until a check says otherwise; a refused rule is left alone."""
    with transaction(settings) as conn:
        rule = get_rule(conn, rule_id)
        if rule is None or rule.health != "ok":
            return None
        stored = q.get_health(conn, rule_id)
        state = stored.state if stored else HealthState.OK
        if status in DEGRADING and state == HealthState.OK:
            reason = f"{TASK_REASON}{status}: {message}"[:MAX_REASON_CHARS]
            before, after = q.record_health(conn, rule_id, HealthState.DEGRADED, reason)
        elif (
            status == TaskStatus.SUCCEEDED
            and stored is not None
            and state == HealthState.DEGRADED
            and stored.reason.startswith(TASK_REASON)
        ):
            before, after = q.record_health(conn, rule_id, HealthState.OK, "")
        else:
            return None
    return HealthChange(rule, before, after)
