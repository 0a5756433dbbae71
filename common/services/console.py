"""What only the browser console needs: signing in with a password, the session's user
checked again on every request, and summaries its pages show beside the API's lists."""

from __future__ import annotations

import hashlib
from functools import lru_cache
from uuid import UUID

from common import db as database
from common.db import audit as qa
from common.db import tasks as qt
from common.db import users as qu
from common.domain.models import Task, User
from common.domain.permissions import Principal
from common.domain.vocab import Role
from common.security.passwords import hash_password, verify_password
from common.settings import Settings


@lru_cache(maxsize=1)
def _dummy_hash() -> str:
    """Verified when no such user exists, so a wrong name costs what a wrong password costs."""
    return hash_password("ferry-no-such-user")


def session_stamp(user: User) -> str:
    """A digest of the user's password hash: a new password ends the sessions opened with
    the old one."""
    return hashlib.sha256((user.password_hash or "").encode()).hexdigest()[:16]


def _principal(user: User) -> Principal:
    return Principal(
        tenant_id=user.tenant_id,
        user_id=user.id,
        user_name=user.name,
        role=Role(user.role),
        grants=tuple(user.grants),
    )


def sign_in(
    settings: Settings, tenant: str, user_name: str, password: str
) -> tuple[Principal, str] | None:
    """(principal, session stamp) when the tenant (name or id) has a user ``user_name``
    with this console password; None otherwise, whichever part was wrong."""
    with database.transaction(settings) as conn:
        user = qu.find_login(conn, tenant.strip(), user_name.strip())
    if user is None or not user.password_hash:
        verify_password(_dummy_hash(), password)
        return None
    if not verify_password(user.password_hash, password):
        return None
    return _principal(user), session_stamp(user)


def session_principal(
    settings: Settings, tenant_id: UUID, user_id: UUID, stamp: str
) -> Principal | None:
    """The session's user as it is now (role and grants read again), or None when the user
    was deleted or its password changed since the session began."""
    with database.transaction(settings) as conn:
        user = qu.get_user(conn, user_id, tenant_id)
    if user is None or not user.password_hash or session_stamp(user) != stamp:
        return None
    return _principal(user)


def last_tasks(settings: Settings, tenant_id: UUID, rule_ids: list[UUID]) -> dict[UUID, Task]:
    """The newest task of each of the tenant's ``rule_ids``, by rule id."""
    with database.transaction(settings) as conn:
        tasks = qt.last_tasks(conn, rule_ids)
    return {t.rule_id: t for t in tasks if t.tenant_id == tenant_id and t.rule_id is not None}


def task_starter(settings: Settings, tenant_id: UUID, task: Task) -> str:
    """Who started the task: a user's name, or what started it (push, schedule)."""
    with database.transaction(settings) as conn:
        name = qa.starter_of_task(conn, tenant_id, task.task_id)
    return f"user {name}" if name else f"{task.trigger} trigger"
