"""Rule health as the API shows it: the live refusal or the last check."""

from __future__ import annotations

from collections.abc import Sequence
from uuid import UUID

from common import db as database
from common.db import health as q
from common.domain.models import Rule
from common.domain.operations import Health, effective_health
from common.settings import Settings


def health_of_rules(settings: Settings, rules: Sequence[Rule]) -> dict[UUID, Health]:
    """The health of each rule, by id (one query for the lot)."""
    stored = database.in_transaction(settings, q.health_of, [r.id for r in rules])
    return {r.id: effective_health(r, stored.get(r.id)) for r in rules}
