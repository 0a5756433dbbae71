"""Connections that check the network policy when they open, on the address they use.

Every new connection of a registry transport (the registry, its token realm,
a redirect target) resolves its host once, checks every address, and connects
to a checked one: a name that resolves to an allowed address for the check and
an internal one for the connection (DNS rebinding) cannot get through, and
nothing is cached between connections. TLS still verifies the host name.
Each connection joins the guard of the request it carries
(:mod:`common.registry.deadline`), so a deadline or a Stop can cut it off.

The pools are urllib3's own, used directly: a registry copy is a few small
requests per tag, and a higher-level client's per-request work (preparing,
merging settings, hooks, cookies) cost as much CPU as the HTTP itself.
"""

from __future__ import annotations

import socket
from typing import Any

import certifi
from urllib3 import PoolManager
from urllib3.connection import HTTPConnection, HTTPSConnection
from urllib3.connectionpool import HTTPConnectionPool, HTTPSConnectionPool

from common.registry import deadline
from common.security.netpolicy import resolve_checked
from common.settings import Settings


class _Checked:
    """Mixin for urllib3 connections: connect to the address the policy checked."""

    ferry_settings: Settings
    _dns_host: str
    port: int

    def _new_conn(self) -> socket.socket:
        checked = resolve_checked(self._dns_host, self.port, self.ferry_settings)
        host, self._dns_host = self._dns_host, checked
        try:
            return super()._new_conn()  # type: ignore[misc]
        finally:
            self._dns_host = host

    def request(self, *args: Any, **kwargs: Any) -> None:
        # The request's deadline and Stop watch this connection from here on.
        deadline.attach_current(self)
        super().request(*args, **kwargs)  # type: ignore[misc]


def policy_pools(
    settings: Settings, *, maxsize: int, verify_tls: bool | str, timeout: Any
) -> PoolManager:
    """Keep-alive pools (one per origin, ``maxsize`` connections each) whose every new
    connection passes the network policy. ``verify_tls``: True (the certifi bundle, as
    before), False, or a CA bundle's path. No retries, no redirects: the transport
    decides both."""
    extra = {"ferry_settings": settings}
    http = type("CheckedHTTPConnection", (_Checked, HTTPConnection), extra)
    https = type("CheckedHTTPSConnection", (_Checked, HTTPSConnection), extra)
    tls: dict[str, Any] = (
        {"cert_reqs": "CERT_NONE"}
        if verify_tls is False
        else {
            "cert_reqs": "CERT_REQUIRED",
            "ca_certs": verify_tls if isinstance(verify_tls, str) else certifi.where(),
        }
    )
    pools = PoolManager(
        num_pools=8, maxsize=maxsize, retries=False, timeout=timeout, block=False, **tls
    )
    pools.pool_classes_by_scheme = {
        "http": type("CheckedHTTPPool", (HTTPConnectionPool,), {"ConnectionCls": http}),
        "https": type("CheckedHTTPSPool", (HTTPSConnectionPool,), {"ConnectionCls": https}),
    }
    return pools
