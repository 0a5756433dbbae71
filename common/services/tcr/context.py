"""Who calls an action, and the permission and audit steps every action shares."""

from __future__ import annotations

import logging
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any
from uuid import UUID

from common.domain.permissions import Action, Principal
from common.security.tc3 import ApiError
from common.services import audit
from common.settings import Settings

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Context:
    """The settings, the authenticated caller and its address, for one action."""

    settings: Settings
    principal: Principal
    source_ip: str

    @property
    def tenant_id(self) -> UUID:
        return self.principal.tenant_id

    def authorize(self, action: Action, what: str, instances: Iterable[UUID]) -> None:
        """Return when the caller's grants cover ``instances`` for ``action``;
        UnauthorizedOperation naming the first that is not covered otherwise."""
        refused = self.principal.refused_instance(action, instances)
        if refused is not None:
            raise ApiError(
                "UnauthorizedOperation",
                f"{action} on {what}: instance {refused} is not granted to user "
                f"{self.principal.user_name}",
            )

    def granted(self) -> list[UUID] | None:
        """The instances the caller is limited to, or None for all."""
        return self.principal.granted_instances()

    def record(self, object_id: Any, verb: str, details: dict[str, Any]) -> None:
        """Record a change of a rule in the audit log (never a secret in ``details``)."""
        try:
            audit.record(
                self.settings,
                self.principal,
                object_type="rule",
                object_id=str(object_id),
                action=verb,
                source_ip=self.source_ip,
                details={**details, "via": "tcr"},
            )
        except Exception:
            # The change is committed; a lost entry is logged loudly rather than hidden.
            log.exception("audit entry not written: rule %s %s", object_id, verb)
