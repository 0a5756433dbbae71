"""Users of a tenant: create, read, change and delete them, with the last-admin guard.

Passwords are hashed with argon2id before they reach the database and never
returned. Grants name instances of the tenant, or ``*``; an admin's grants are
always ``*`` (an admin limited to some instances could grant itself the rest).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any
from uuid import UUID

import psycopg

from common import db as database
from common.db import instances as qi
from common.db import users as q
from common.domain.models import User
from common.domain.permissions import ALL_INSTANCES, parse_grants
from common.domain.vocab import Role
from common.errors import Conflict, NotFound, ValidationError, found
from common.security.passwords import hash_password
from common.settings import Settings

NAME = re.compile(r"^[a-z0-9][a-z0-9._@-]{0,63}$")
MIN_PASSWORD, MAX_PASSWORD = 8, 1024


def _invalid(field: str, message: str) -> ValidationError:
    return ValidationError(f"{field}: {message}", {field: [message]})


def _check_name(name: str) -> str:
    if not NAME.fullmatch(name):
        raise _invalid(
            "name",
            "must be 1 to 64 of a-z, 0-9, '.', '_', '@', '-', starting with a letter or digit",
        )
    return name


def _check_password(password: str) -> str:
    if not MIN_PASSWORD <= len(password) <= MAX_PASSWORD:
        raise _invalid("password", f"must be {MIN_PASSWORD} to {MAX_PASSWORD} characters")
    return hash_password(password)


def _check_role(role: str) -> Role:
    try:
        return Role(role)
    except ValueError:
        raise _invalid("role", f"must be one of {', '.join(Role)}") from None


def _check_grants(conn: psycopg.Connection, tenant_id: UUID, role: Role, grants: Any) -> list[str]:
    try:
        parsed = parse_grants(grants)
    except ValueError as exc:
        raise _invalid("grants", str(exc)) from None
    if role == Role.ADMIN and parsed != (ALL_INSTANCES,):
        raise _invalid("grants", "an admin has every instance: give ['*']")
    if parsed != (ALL_INSTANCES,):
        wanted = [UUID(g) for g in parsed]
        missing = set(wanted) - qi.existing_ids(conn, tenant_id, wanted)
        if missing:
            raise _invalid("grants", f"no instance {sorted(map(str, missing))[0]} in this account")
    return list(parsed)


def create_user(settings: Settings, tenant_id: UUID, data: Mapping[str, Any]) -> User:
    """Validate and store a new user of the tenant."""
    role = _check_role(data["role"])
    values: dict[str, Any] = {"name": _check_name(data["name"]), "role": role.value}
    if data.get("password") is not None:
        values["password_hash"] = _check_password(data["password"])
    with database.transaction(settings) as conn:
        values["grants"] = _check_grants(conn, tenant_id, role, data.get("grants") or ["*"])
        return q.insert_user(conn, tenant_id, values)


def get_user(settings: Settings, tenant_id: UUID, user_id: UUID) -> User:
    """The tenant's user; NotFound otherwise."""
    return found(
        database.in_transaction(settings, q.get_user, user_id, tenant_id), "user not found"
    )


def list_users(
    settings: Settings, tenant_id: UUID, *, limit: int, offset: int
) -> tuple[list[User], int]:
    """One page of the tenant's users and the total."""
    return database.in_transaction(settings, q.list_users, tenant_id, limit=limit, offset=offset)


def update_user(
    settings: Settings, tenant_id: UUID, user_id: UUID, changes: Mapping[str, Any]
) -> User:
    """Change name, password, role or grants; Conflict when it would leave no admin."""
    values: dict[str, Any] = {}
    if "name" in changes:
        values["name"] = _check_name(changes["name"])
    if "password" in changes:
        password = changes["password"]
        values["password_hash"] = _check_password(password) if password is not None else None
    with database.transaction(settings) as conn:
        admins = q.lock_admins(conn, tenant_id)
        current = q.get_user(conn, user_id, tenant_id)
        if current is None:
            raise NotFound("user not found")
        role = _check_role(changes["role"]) if "role" in changes else Role(current.role)
        if "role" in changes:
            values["role"] = role.value
            if role != Role.ADMIN and admins == [user_id]:
                raise Conflict("this is the account's last admin; make another user admin first")
        if "grants" in changes or "role" in changes:
            if "grants" in changes:
                grants = changes["grants"]
            else:
                grants = ["*"] if role == Role.ADMIN else current.grants
            values["grants"] = _check_grants(conn, tenant_id, role, grants)
        row = q.update_user(conn, user_id, tenant_id, values)
    if row is None:
        raise NotFound("user not found")
    return row


def delete_user(settings: Settings, tenant_id: UUID, user_id: UUID) -> User:
    """Delete the tenant's user and its keys; Conflict for the last admin. The deleted row."""
    with database.transaction(settings) as conn:
        admins = q.lock_admins(conn, tenant_id)
        current = q.get_user(conn, user_id, tenant_id)
        if current is None:
            raise NotFound("user not found")
        if admins == [user_id]:
            raise Conflict("this is the account's last admin; make another user admin first")
        q.delete_user(conn, user_id, tenant_id)
    return current
