"""Which addresses Ferry may connect to: one check for every outgoing connection.

Registry URLs, token realms and redirects all pass through :func:`check_url`
so a tenant cannot make Ferry reach cloud metadata or an internal service.
"""

from __future__ import annotations

import ipaddress
import socket
from urllib.parse import urlsplit

from common.errors import NetworkPolicyError
from common.settings import Settings

# Never allowed, whatever the configuration says: link-local (includes the
# 169.254.169.254 metadata endpoint of every large cloud) and unspecified.
ALWAYS_DENIED = (
    ipaddress.ip_network("169.254.0.0/16"),
    ipaddress.ip_network("fe80::/10"),
    ipaddress.ip_network("fd00:ec2::/32"),
    ipaddress.ip_network("0.0.0.0/32"),
    ipaddress.ip_network("::/128"),
)


def parse_registry_url(url: str) -> tuple[str, str, int]:
    """Split a registry base URL into (scheme, host, port), refusing anything else in it."""
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError as exc:
        raise NetworkPolicyError(f"invalid URL: {exc}") from None
    if parts.scheme not in ("http", "https"):
        raise NetworkPolicyError("URL must start with http:// or https://")
    if parts.username is not None or parts.password is not None:
        raise NetworkPolicyError("URL must not contain credentials; use username and password")
    if not parts.hostname:
        raise NetworkPolicyError("URL has no host")
    if parts.path not in ("", "/") or parts.query or parts.fragment:
        raise NetworkPolicyError("URL must be scheme://host[:port] with no path or query")
    default = 443 if parts.scheme == "https" else 80
    return parts.scheme, parts.hostname.lower(), port or default


def check_address(ip: str, settings: Settings) -> None:
    """Raise NetworkPolicyError unless ``ip`` may be connected to."""
    addr = ipaddress.ip_address(ip)
    if isinstance(addr, ipaddress.IPv6Address) and addr.ipv4_mapped:
        addr = addr.ipv4_mapped
    if any(addr in net for net in ALWAYS_DENIED):
        raise NetworkPolicyError(f"address {addr} is link-local or a metadata address")
    if any(addr in net for net in settings.registry_deny_networks if net.version == addr.version):
        raise NetworkPolicyError(f"address {addr} is in FERRY_REGISTRY_DENY_NETWORKS")
    allowed = [n for n in settings.registry_allow_networks if n.version == addr.version]
    if not any(addr in net for net in allowed):
        raise NetworkPolicyError(f"address {addr} is not in FERRY_REGISTRY_ALLOW_NETWORKS")


def check_host(host: str, port: int, settings: Settings) -> None:
    """Resolve ``host`` and check every address it resolves to."""
    name = host.strip("[]").lower().rstrip(".")
    if name == "metadata" or name.startswith("metadata."):
        raise NetworkPolicyError(f"host {host} is a cloud metadata name")
    try:
        infos = socket.getaddrinfo(name, port, type=socket.SOCK_STREAM)
    except socket.gaierror:
        raise NetworkPolicyError(f"host {host} does not resolve") from None
    for info in infos:
        check_address(info[4][0], settings)


def check_url(url: str, settings: Settings) -> None:
    """Raise NetworkPolicyError unless Ferry may connect to ``url`` (any path allowed)."""
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError as exc:
        raise NetworkPolicyError(f"invalid URL: {exc}") from None
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise NetworkPolicyError(f"not an http(s) URL: {parts.scheme}://{parts.hostname or ''}")
    check_host(parts.hostname, port or (443 if parts.scheme == "https" else 80), settings)
