"""Registry instances of a tenant: validation, the registry check, create/change/delete.

An instance is saved only after Ferry has connected to it: its URL passes the
network policy, ``/v2/`` answers, and the credentials (when given) are
accepted. Passwords are encrypted before they reach the database; the webhook
secret is returned once and stored as a hash.
"""

from __future__ import annotations

import datetime as dt
import ipaddress
import re
import secrets
from collections.abc import Mapping
from typing import Any
from urllib.parse import urlsplit
from uuid import UUID

from common import db as database
from common.db import instances as q
from common.db.rules import suspend_incoming
from common.domain.models import Instance
from common.domain.vocab import InstanceKind
from common.errors import (
    AuthError,
    Conflict,
    NetworkPolicyError,
    NotFound,
    RegistryError,
    ValidationError,
    found,
)
from common.security.crypto import SecretBox
from common.security.netpolicy import check_host, is_public, parse_registry_url
from common.security.tokens import hash_token
from common.settings import Settings
from common.sync.clients import SUSPENDED_MOVED
from common.sync.credentials import check_registry, instance_credentials

KINDS = tuple(InstanceKind)
SUSPENDED_DELETED = (
    "suspended: the target account deleted the target instance; choose another target"
)

WEBHOOK_SECRET_PREFIX = "fwh_"
MAX_USERNAME = 255
MAX_PASSWORD = 8192  # cloud registry tokens (ECR, GCR) run to a few kilobytes
_HOSTNAME = re.compile(
    r"(?=.{1,253}\.?$)[a-z0-9_](?:[a-z0-9_-]{0,61}[a-z0-9_])?"
    r"(?:\.[a-z0-9_](?:[a-z0-9_-]{0,61}[a-z0-9_])?)*\.?"
)
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")


def _invalid(field: str, message: str) -> ValidationError:
    return ValidationError(f"{field}: {message}", {field: [message]})


def new_webhook_secret() -> str:
    """A fresh webhook secret (256 random bits); only its hash is stored."""
    return WEBHOOK_SECRET_PREFIX + secrets.token_urlsafe(32)


def check_name(name: str, field: str = "name") -> str:
    """``name`` if it is 1-128 printable characters without surrounding spaces."""
    if not 1 <= len(name) <= 128 or _CONTROL.search(name) or name != name.strip():
        raise _invalid(
            field, "must be 1 to 128 printable characters, without leading or trailing spaces"
        )
    return name


def normalize_url(url: str, settings: Settings, field: str = "url") -> str:
    """The canonical ``scheme://host[:port]`` of a registry URL Ferry may connect to.

    Refuses credentials, paths and queries in the URL, non-ASCII host names
    (give IDNs in punycode), and addresses the network policy forbids
    (link-local and metadata always; FERRY_REGISTRY_ALLOW_NETWORKS /
    FERRY_REGISTRY_DENY_NETWORKS for the rest). Raises ValidationError on ``field``.
    """
    try:
        scheme, host, port = parse_registry_url(url.strip())
        explicit_port = urlsplit(url.strip()).port
        try:
            ip = ipaddress.ip_address(host)
        except ValueError:
            ip = None
            if not host.isascii() or not _HOSTNAME.fullmatch(host):
                raise NetworkPolicyError(
                    f"{host!r} is not a valid host name (give international names in punycode)"
                ) from None
        check_host(host, port, settings)
    except NetworkPolicyError as exc:
        raise _invalid(field, str(exc)) from None
    netloc = f"[{ip}]" if ip is not None and ip.version == 6 else str(ip or host)
    default = 443 if scheme == "https" else 80
    if explicit_port is not None and explicit_port != default:
        netloc += f":{explicit_port}"
    return f"{scheme}://{netloc}"


def check_credentials_pair(
    username: str | None, password: str | None, prefix: str = ""
) -> tuple[str | None, str | None]:
    """``(username, password)`` when both or neither are given; ValidationError otherwise."""
    if (username is None) != (password is None):
        missing = "password" if password is None else "username"
        raise _invalid(prefix + missing, "username and password are given together")
    if username is not None and not 1 <= len(username) <= MAX_USERNAME:
        raise _invalid(prefix + "username", f"must be 1 to {MAX_USERNAME} characters")
    if username is not None and _CONTROL.search(username):
        raise _invalid(prefix + "username", "must not contain control characters")
    if password is not None and not 1 <= len(password) <= MAX_PASSWORD:
        raise _invalid(prefix + "password", f"must be 1 to {MAX_PASSWORD} characters")
    return username, password


def registry_failure(
    exc: Exception, *, url_field: str, credentials_field: str, prefix: str
) -> ValidationError:
    """The 422 for a failed registry check: which field is at fault, and what the registry said."""
    field = credentials_field if isinstance(exc, AuthError) else url_field
    message = f"{prefix}: {exc}"
    return ValidationError(message, {field: [message]})


def verify_instance(
    url: str, username: str | None, password: str | None, verify_tls: bool, settings: Settings
) -> None:
    """Return when the registry answers /v2/ and accepts the credentials; else 422."""
    try:
        check_registry(url, username, password, verify_tls, settings)
    except (NetworkPolicyError, RegistryError) as exc:
        cred_field = "password" if username is not None else "username"
        if not isinstance(exc, AuthError | NetworkPolicyError) and not is_public(url):
            # On an internal address, "refused", "timed out" and "answered 404" would tell
            # a tenant which ports are open there: one answer for all of them.
            exc = RegistryError(
                f"no OCI registry answered at {url} (nothing listens, the connection "
                "failed, or what answered is not a registry)"
            )
        raise registry_failure(
            exc, url_field="url", credentials_field=cred_field, prefix="registry check failed"
        ) from None


def create_instance(
    settings: Settings, tenant_id: UUID, data: Mapping[str, Any]
) -> tuple[Instance, str]:
    """Validate, check against the registry and store an instance; (row, webhook secret)."""
    name = check_name(data["name"])
    url = normalize_url(data["url"], settings)
    kind = data.get("kind") or InstanceKind.DISTRIBUTION
    if kind not in KINDS:
        raise _invalid("kind", f"must be one of {', '.join(KINDS)}")
    username, password = check_credentials_pair(data.get("username"), data.get("password"))
    verify_tls = bool(data.get("verify_tls", True))
    # Built first: without FERRY_SECRET_KEYS there is no point contacting the registry.
    box = SecretBox(settings) if password is not None else None
    with database.transaction(settings) as conn:
        if q.instance_name_taken(conn, tenant_id, name):
            raise Conflict(f"an instance named {name!r} already exists")
    verify_instance(url, username, password, verify_tls, settings)
    secret = new_webhook_secret()
    values = {
        "name": name,
        "url": url,
        "region": data.get("region") or "",
        "kind": kind,
        "verify_tls": verify_tls,
        "username": username,
        "max_concurrent_copies": int(data.get("max_concurrent_copies") or 8),
        "password_enc": box.encrypt(password) if box is not None and password is not None else None,
    }
    with database.transaction(settings) as conn:
        row = q.insert_instance(conn, tenant_id, values, hash_token(secret))
    return row, secret


def get_instance(settings: Settings, tenant_id: UUID, instance_id: UUID) -> Instance:
    """The tenant's instance; NotFound when it does not exist for this tenant."""
    return found(
        database.in_transaction(settings, q.get_instance, instance_id, tenant_id),
        "instance not found",
    )


def list_instances(
    settings: Settings,
    tenant_id: UUID,
    *,
    limit: int,
    offset: int,
    only: list[UUID] | None = None,
) -> tuple[list[Instance], int]:
    """One page of the tenant's instances (only those of ``only`` when given) and the total."""
    return database.in_transaction(
        settings, q.list_instances, tenant_id, limit=limit, offset=offset, only=only
    )


def update_instance(
    settings: Settings, tenant_id: UUID, instance_id: UUID, changes: Mapping[str, Any]
) -> Instance:
    """Apply a partial change; the registry is re-checked when the URL, TLS setting or
    credentials change. Username and password change together (both null clears them)."""
    current = get_instance(settings, tenant_id, instance_id)
    values: dict[str, Any] = {}
    if "name" in changes:
        values["name"] = check_name(changes["name"])
    if "url" in changes:
        values["url"] = normalize_url(changes["url"], settings)
    if "region" in changes:
        values["region"] = changes["region"] or ""
    if "kind" in changes:
        if changes["kind"] not in KINDS:
            raise _invalid("kind", f"must be one of {', '.join(KINDS)}")
        values["kind"] = changes["kind"]
    if "verify_tls" in changes:
        values["verify_tls"] = bool(changes["verify_tls"])
    if changes.get("max_concurrent_copies") is not None:
        values["max_concurrent_copies"] = int(changes["max_concurrent_copies"])
    credentials_changed = "username" in changes or "password" in changes
    if credentials_changed:
        username, password = check_credentials_pair(
            changes.get("username"), changes.get("password")
        )
    url = values.get("url", current.url)
    verify_tls = values.get("verify_tls", current.verify_tls)
    if "name" in values:
        with database.transaction(settings) as conn:
            if q.instance_name_taken(conn, tenant_id, values["name"], except_id=instance_id):
                raise Conflict(f"an instance named {values['name']!r} already exists")
    if credentials_changed or url != current.url or verify_tls != current.verify_tls:
        if not credentials_changed:
            username, password = instance_credentials(current, SecretBox(settings))
        verify_instance(url, username, password, verify_tls, settings)
        values.update(checked_at=dt.datetime.now(dt.UTC), check_error=None)
    if credentials_changed:
        values["username"] = username
        values["password_enc"] = (
            SecretBox(settings).encrypt(password) if password is not None else None
        )
    with database.transaction(settings) as conn:
        row = q.update_instance(conn, instance_id, tenant_id, values)
        if row is not None and (row.url != current.url or row.verify_tls != current.verify_tls):
            # Their passwords were checked against the old address; they must not follow it.
            suspend_incoming(conn, instance_id, SUSPENDED_MOVED)
    return found(row, "instance not found")


def delete_instance(settings: Settings, tenant_id: UUID, instance_id: UUID) -> None:
    """Delete the tenant's instance; Conflict naming the tenant's rules that still use it.

    Other accounts' rules writing into it do not prevent it: they are suspended,
    with the reason their owners read.
    """
    with database.transaction(settings) as conn:
        if q.get_instance(conn, instance_id, tenant_id) is None:
            raise NotFound("instance not found")
        own, _ = q.rules_using_instance(conn, instance_id, tenant_id)
        if own:
            raise Conflict(
                f"the instance is used by rules {', '.join(repr(n) for n in own)}; "
                "delete or change them first"
            )
        suspend_incoming(conn, instance_id, SUSPENDED_DELETED)
        q.delete_instance(conn, instance_id, tenant_id)


def rotate_webhook_secret(
    settings: Settings, tenant_id: UUID, instance_id: UUID, *, revoke_previous: bool = False
) -> str:
    """A new webhook secret for the instance; the one it replaces keeps working for
    ``settings.webhook_secret_grace`` seconds, or stops at once with ``revoke_previous``."""
    secret = new_webhook_secret()
    grace = 0 if revoke_previous else settings.webhook_secret_grace
    with database.transaction(settings) as conn:
        if not q.rotate_webhook_secret(conn, instance_id, tenant_id, hash_token(secret), grace):
            raise NotFound("instance not found")
    return secret


def check_instance(settings: Settings, tenant_id: UUID, instance_id: UUID) -> Instance:
    """Check the instance against its registry now (``/v2/`` with the stored credentials)
    and record when and, on failure, why; the updated row."""
    current = get_instance(settings, tenant_id, instance_id)
    username, password = instance_credentials(current, SecretBox(settings))
    error = None
    try:
        verify_instance(current.url, username, password, current.verify_tls, settings)
    except ValidationError as exc:
        error = exc.message[:2048]
    values = {"checked_at": dt.datetime.now(dt.UTC), "check_error": error}
    with database.transaction(settings) as conn:
        row = q.update_instance(conn, instance_id, tenant_id, values)
    return found(row, "instance not found")
