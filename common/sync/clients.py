"""Registry clients kept alive for the life of a worker process.

Building a client per copy would throw away its keep-alive connections and
token cache; a sync task of hundreds of items reuses one per registry and
identity instead.
"""

from __future__ import annotations

import hashlib
import os
import threading
from dataclasses import dataclass

import psycopg

from common.db.instances import get_instance
from common.domain.models import Instance, Rule
from common.errors import FerryError, NotFound
from common.registry import RegistryClient
from common.security.crypto import SecretBox
from common.settings import Settings
from common.sync.credentials import source_credentials, target_credentials

SUSPENDED_MOVED = (
    "suspended: the target account changed the target instance's URL or TLS setting; "
    "re-enter and re-check the credentials"
)


class RuleRefused(FerryError):
    """The rule must not run: blocked by the target account, or suspended."""


_lock = threading.Lock()
_clients: dict[tuple, RegistryClient] = {}
_pid = os.getpid()


def client_for(
    url: str, username: str | None, password: str | None, verify_tls: bool, settings: Settings
) -> RegistryClient:
    """The process's client for this registry and identity (created on first use)."""
    global _pid
    # The password enters the key only as a hash: the dict may end up in a dump.
    secret = hashlib.sha256((password or "").encode()).hexdigest()
    key = (url.rstrip("/"), username or "", secret, verify_tls)
    with _lock:
        if _pid != os.getpid():
            # A forked child must not share the parent's sockets.
            _clients.clear()
            _pid = os.getpid()
        client = _clients.get(key)
        if client is None:
            client = RegistryClient(
                url, username=username, password=password, verify_tls=verify_tls, settings=settings
            )
            _clients[key] = client
        return client


@dataclass
class Endpoints:
    """The clients of a rule's source and target, and the target's kind and identity."""

    source: RegistryClient
    target: RegistryClient
    target_kind: str
    target_user: tuple[str | None, str | None]


def refusal(rule: Rule, target: Instance | None) -> str | None:
    """Why the rule must not run now (blocked, suspended, target moved), or None.

    A cross-tenant password goes only to the URL and TLS setting it was checked
    against: this holds even if the suspension written when the target moved
    were somehow missed.
    """
    if rule.health != "ok":
        return rule.health
    if rule.cross_tenant and target is not None:
        bound = (rule.target_bound_url, rule.target_bound_verify_tls)
        if bound != (target.url, target.verify_tls):
            return SUSPENDED_MOVED
    return None


def endpoints_for(conn: psycopg.Connection, rule: Rule, settings: Settings) -> Endpoints:
    """Clients for a rule's source and target, with the credentials the rule uses;
    RuleRefused when the rule must not run (see :func:`refusal`)."""
    box = SecretBox(settings)
    source = get_instance(conn, rule.source_instance_id)
    target = get_instance(conn, rule.target_instance_id) if rule.target_instance_id else None
    reason = refusal(rule, target)
    if reason is not None:
        raise RuleRefused(reason)
    if source is None or target is None:
        raise NotFound("the rule's source or target instance no longer exists")
    su, sp = source_credentials(conn, rule, box)
    tu, tp = target_credentials(conn, rule, box)
    return Endpoints(
        client_for(source.url, su, sp, source.verify_tls, settings),
        client_for(target.url, tu, tp, target.verify_tls, settings),
        target.kind,
        (tu, tp),
    )
