"""Roles as named bundles of actions, and the grant check on instances.

Every API route names the one action it performs; a user's role says which
actions it has, and its grants on which instances. An action on a rule is
checked on the rule's source instance and, when the target is the tenant's
own, on its target instance too.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from enum import StrEnum
from uuid import UUID

from common.domain.vocab import Role

ALL_INSTANCES = "*"


class Action(StrEnum):
    """Everything a route can do, as ``object:verb``."""

    INSTANCE_READ = "instance:read"
    INSTANCE_CREATE = "instance:create"
    INSTANCE_UPDATE = "instance:update"
    INSTANCE_DELETE = "instance:delete"
    RULE_READ = "rule:read"
    RULE_CREATE = "rule:create"
    RULE_UPDATE = "rule:update"
    RULE_DELETE = "rule:delete"
    RULE_TRIGGER = "rule:trigger"
    TASK_READ = "task:read"
    TASK_STOP = "task:stop"
    TASK_RETRY = "task:retry"
    USER_READ = "user:read"
    USER_MANAGE = "user:manage"
    KEY_MANAGE = "key:manage"
    AUDIT_READ = "audit:read"
    INCOMING_READ = "incoming:read"
    INCOMING_BLOCK = "incoming:block"
    # Health checks and drift reports: they contact the registries but change nothing.
    RULE_CHECK = "rule:check"
    NOTIFICATION_READ = "notification:read"
    NOTIFICATION_MANAGE = "notification:manage"


READ_ACTIONS = frozenset(
    {
        Action.INSTANCE_READ,
        Action.RULE_READ,
        Action.TASK_READ,
        Action.INCOMING_READ,
        Action.NOTIFICATION_READ,
    }
)
ROLE_ACTIONS: dict[Role, frozenset[Action]] = {
    Role.ADMIN: frozenset(Action),
    Role.OPERATOR: READ_ACTIONS
    | {
        Action.RULE_CREATE,
        Action.RULE_UPDATE,
        Action.RULE_TRIGGER,
        Action.TASK_STOP,
        Action.TASK_RETRY,
        Action.INSTANCE_UPDATE,
        Action.RULE_CHECK,
        Action.NOTIFICATION_MANAGE,
    },
    Role.VIEWER: READ_ACTIONS,
}
# Actions that concern the account as a whole: no instance grant narrows them.
ACCOUNT_ACTIONS = frozenset(
    {
        Action.USER_READ,
        Action.USER_MANAGE,
        Action.KEY_MANAGE,
        Action.AUDIT_READ,
        Action.INSTANCE_CREATE,
        # A notification of one rule is also checked on that rule (api.notifications).
        Action.NOTIFICATION_READ,
        Action.NOTIFICATION_MANAGE,
    }
)


def parse_grants(values: Iterable[str]) -> tuple[str, ...]:
    """Grants in their stored form: ``("*",)`` or sorted distinct instance ids.

    Raises ValueError naming the first value that is neither ``*`` nor a UUID.
    """
    grants = set()
    for value in values:
        if value == ALL_INSTANCES:
            grants.add(value)
            continue
        try:
            grants.add(str(UUID(value)))
        except (ValueError, TypeError, AttributeError):
            raise ValueError(f"{value!r} is neither '*' nor an instance id") from None
    if not grants:
        raise ValueError("give '*' or at least one instance id")
    if ALL_INSTANCES in grants:
        if len(grants) > 1:
            raise ValueError("'*' already grants every instance; give it alone")
        return (ALL_INSTANCES,)
    return tuple(sorted(grants))


@dataclass(frozen=True)
class Principal:
    """Who makes a request: the tenant, the user and the key it authenticated with."""

    tenant_id: UUID
    user_id: UUID
    user_name: str
    role: Role
    grants: Sequence[str]
    key_id: UUID | None = None

    @property
    def all_instances(self) -> bool:
        """True when no grant narrows the user to some instances."""
        return ALL_INSTANCES in self.grants

    def granted_instances(self) -> list[UUID] | None:
        """The instance ids the user is limited to, or None for every instance."""
        return None if self.all_instances else [UUID(g) for g in self.grants]

    def can(self, action: Action) -> bool:
        """True when the role includes ``action`` (grants aside)."""
        return action in ROLE_ACTIONS[Role(self.role)]

    def refused_instance(self, action: Action, instances: Iterable[UUID]) -> UUID | None:
        """The first of ``instances`` the grants do not cover for ``action``, else None."""
        if action in ACCOUNT_ACTIONS or self.all_instances:
            return None
        granted = set(self.grants)
        return next((i for i in instances if str(i) not in granted), None)
