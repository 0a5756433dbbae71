"""Pure parts of issue 15: which tasks a notification announces, the health a rule shows,
and masking apprise addresses out of error texts."""

from __future__ import annotations

import datetime as dt
from dataclasses import replace
from uuid import uuid4

import pytest

from common.domain.models import BLOCKED_BY_TARGET, Rule
from common.domain.operations import RuleHealth, TaskNotify, effective_health, health_label
from common.domain.vocab import TaskStatus
from common.services.notify import mask

S, P, F, X, K = (
    TaskStatus.SUCCEEDED,
    TaskStatus.PARTIALLY_SUCCEEDED,
    TaskStatus.FAILED,
    TaskStatus.STOPPED,
    TaskStatus.SKIPPED,
)


@pytest.mark.parametrize(
    ("policy", "announced"),
    [
        (TaskNotify.ALWAYS, {S, P, F, X}),
        (TaskNotify.NOT_SUCCEEDED, {P, F, X}),
        (TaskNotify.FAILED_ONLY, {F}),
        (TaskNotify.NEVER, set()),
    ],
)
def test_task_policies(policy, announced):
    assert {s for s in (S, P, F, X, K) if policy.wants(s)} == announced


NOW = dt.datetime(2026, 12, 3, 9, 0, tzinfo=dt.UTC)
RULE = Rule(
    id=uuid4(), tenant_id=uuid4(), name="r", description="", source_instance_id=uuid4(),
    source_namespace="p", repository_filter="", tag_filter="", repository_exclude="",
    tag_exclude="", filter_syntax="regex", resource_types=["image"], target_instance_id=uuid4(),
    target_namespace="", cross_tenant=False, target_account_id=None, target_username=None,
    target_password_enc=None, override=False, enabled=True, schedule=None,
    schedule_timezone="UTC", next_run_at=None, created_at=NOW, updated_at=NOW,
)  # fmt: skip


def stored(state: str, reason: str = "") -> RuleHealth:
    return RuleHealth(RULE.id, state, reason, NOW, NOW)


def test_health_shown_from_checks_and_live_refusals():
    never = effective_health(RULE, None)
    assert (never.state, never.since, health_label(RULE, never)) == ("ok", None, "ok")
    degraded = effective_health(RULE, stored("degraded", "last task Failed: x"))
    assert (degraded.state, degraded.since, health_label(RULE, degraded)) == (
        "degraded",
        NOW,
        "degraded",
    )
    blocked = replace(RULE, blocked_at=NOW)
    shown = effective_health(blocked, stored("ok"))
    assert (shown.state, shown.reason, shown.since) == ("broken", BLOCKED_BY_TARGET, NOW)
    assert health_label(blocked, shown) == BLOCKED_BY_TARGET  # the words of issue 11
    # A block recorded by a check and lifted since is not shown as broken any more.
    lifted = effective_health(RULE, stored("broken", BLOCKED_BY_TARGET))
    assert (lifted.state, health_label(RULE, lifted)) == ("ok", "ok")


def test_mask_hides_every_secret_part_of_an_address():
    url = "slack://TokenA1/TokenB2/TokenC3/#chan?footer=no"
    text = f"Failed to send to {url}; bad token TokenB2 at hooks.slack.com"
    masked = mask(text, [url])
    assert "TokenA1" not in masked and "TokenB2" not in masked and "TokenC3" not in masked
    mail = "mailtos://user:Pa55word@mail.example.com"
    assert "Pa55word" not in mask("auth failed for user:Pa55word", [mail])
