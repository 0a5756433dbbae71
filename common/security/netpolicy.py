"""Which addresses Ferry may connect to: one check for every outgoing connection.

Registry URLs, token realms and redirects all pass through :func:`check_url`
so a tenant cannot make Ferry reach cloud metadata or an internal service. A
redirect to a host other than the registry's own must also pass
:func:`check_redirect`: public addresses only, unless the host is named in
FERRY_REGISTRY_REDIRECT_HOSTS (a registry's own storage on a private network).
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
    ipaddress.ip_network("100.100.100.200/32"),  # Alibaba Cloud metadata
    ipaddress.ip_network("168.63.129.16/32"),  # Azure wire server
    ipaddress.ip_network("fe80::/10"),
    ipaddress.ip_network("fd00:ec2::/32"),  # AWS IMDS over IPv6 (fd00:ec2::254)
    ipaddress.ip_network("0.0.0.0/32"),
    ipaddress.ip_network("::/128"),
)
# NAT64 (RFC 6052): 64:ff9b::a.b.c.d reaches the IPv4 address a.b.c.d.
NAT64 = ipaddress.ip_network("64:ff9b::/96")


def _embedded_ipv4(addr: ipaddress.IPv4Address | ipaddress.IPv6Address) -> ipaddress.IPv4Address:
    """The IPv4 address an IPv6 one reaches (IPv4-mapped or NAT64), else ``addr`` itself."""
    if isinstance(addr, ipaddress.IPv6Address):
        if addr.ipv4_mapped:
            return addr.ipv4_mapped
        if addr in NAT64:
            return ipaddress.IPv4Address(int(addr) & 0xFFFFFFFF)
    return addr  # type: ignore[return-value]


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
    addr = _embedded_ipv4(ipaddress.ip_address(ip))
    if any(addr in net for net in ALWAYS_DENIED if net.version == addr.version):
        raise NetworkPolicyError(f"address {addr} is link-local or a metadata address")
    if any(addr in net for net in settings.registry_deny_networks if net.version == addr.version):
        raise NetworkPolicyError(f"address {addr} is in FERRY_REGISTRY_DENY_NETWORKS")
    allowed = [n for n in settings.registry_allow_networks if n.version == addr.version]
    if not any(addr in net for net in allowed):
        raise NetworkPolicyError(f"address {addr} is not in FERRY_REGISTRY_ALLOW_NETWORKS")


def check_host(host: str, port: int, settings: Settings) -> None:
    """Resolve ``host`` and check every address it resolves to."""
    resolve_checked(host, port, settings)


def resolve_checked(host: str, port: int, settings: Settings) -> str:
    """Resolve ``host``, check every address, and return the one to connect to.

    Connecting to the address returned (not resolving again) is what defeats
    DNS rebinding: the name cannot change between the check and the connect.
    """
    name = host.strip("[]").lower().rstrip(".")
    if name == "metadata" or name.startswith("metadata."):
        raise NetworkPolicyError(f"host {host} is a cloud metadata name")
    try:
        infos = socket.getaddrinfo(name, port, type=socket.SOCK_STREAM)
    except socket.gaierror:
        raise NetworkPolicyError(f"host {host} does not resolve") from None
    for info in infos:
        check_address(info[4][0], settings)
    return str(infos[0][4][0])


def check_redirect(url: str, settings: Settings) -> None:
    """Raise NetworkPolicyError unless a redirect away from the registry's host may go to
    ``url``: a host in FERRY_REGISTRY_REDIRECT_HOSTS, or one with public addresses only."""
    check_url(url, settings)
    host = (urlsplit(url).hostname or "").lower().rstrip(".")
    if host in settings.registry_redirect_hosts:
        return
    try:
        infos = socket.getaddrinfo(host, None, type=socket.SOCK_STREAM)
    except socket.gaierror:
        raise NetworkPolicyError(f"redirect host {host} does not resolve") from None
    for info in infos:
        addr = _embedded_ipv4(ipaddress.ip_address(info[4][0]))
        if not addr.is_global:
            raise NetworkPolicyError(
                f"redirect to {host} refused: not the registry's host, not a public address, "
                "and not in FERRY_REGISTRY_REDIRECT_HOSTS"
            )


def is_public(url: str) -> bool:
    """True when ``url``'s host resolves to public (globally routable) addresses only."""
    host = (urlsplit(url).hostname or "").lower().rstrip(".")
    try:
        infos = socket.getaddrinfo(host, None, type=socket.SOCK_STREAM)
    except (socket.gaierror, UnicodeError):
        return False
    return all(_embedded_ipv4(ipaddress.ip_address(i[4][0])).is_global for i in infos)


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
