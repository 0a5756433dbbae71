"""Registry authentication: anonymous, Basic, and Bearer tokens from a token realm.

The scheme is learnt from the registry's first 401 (``WWW-Authenticate``).
Bearer tokens are cached per (credentials, realm, service, scope set) in a
process-wide :class:`TokenCache` and refreshed before they expire, or once
after a 401. A realm on another host than the registry is used only when
``FERRY_TOKEN_REALM_HOSTS`` allows it, and credentials never travel over plain
http except to the plain-http registry's own host.

The transport runs one :class:`AuthStep` per request: it supplies the header
and decides whether a 401 taught something worth one more try. Those tries
are not retries of a failure and never count against the retry policy.
The :class:`Authenticator` is handed its ``send`` function, so token requests
get the transport's timeouts, retries and network policy without this module
importing the transport.
"""

from __future__ import annotations

import base64
import hashlib
import logging
import re
import threading
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from urllib.parse import urlsplit

from common.errors import AuthError, NetworkPolicyError, RegistryError
from common.registry.reply import Reply
from common.security.netpolicy import check_url
from common.settings import Settings

log = logging.getLogger("ferry.registry.auth")

Scopes = frozenset[str]

# Docker's token spec: a token without expires_in lives 60 seconds.
DEFAULT_EXPIRES_IN = 60

_SCHEME_RE = re.compile(r"\s*,?\s*([A-Za-z][A-Za-z0-9_.-]*)(?=\s|$|,)")
_PARAM_RE = re.compile(r'\s*,?\s*([A-Za-z0-9_.-]+)\s*=\s*("(?:[^"\\]|\\.)*"|[^,\s]*)')


def pull(repository: str) -> Scopes:
    """Scope set to read a repository."""
    return frozenset({f"repository:{repository}:pull"})


def push(repository: str) -> Scopes:
    """Scope set to write a repository (pull is needed too: HEAD before PUT)."""
    return frozenset({f"repository:{repository}:pull,push"})


CATALOG: Scopes = frozenset({"registry:catalog:*"})


@dataclass(frozen=True)
class Challenge:
    """One challenge of a WWW-Authenticate header; ``scheme`` is lowercase."""

    scheme: str
    params: dict[str, str] = field(default_factory=dict)

    @property
    def scopes(self) -> Scopes:
        return frozenset(s for s in self.params.get("scope", "").split(" ") if s)


def parse_challenges(header: str) -> list[Challenge]:
    """Every challenge in a WWW-Authenticate value (RFC 7235 auth-params, quoted or not)."""
    out: list[Challenge] = []
    pos = 0
    while pos < len(header):
        m = _SCHEME_RE.match(header, pos)
        if not m:
            break
        scheme, pos = m.group(1).lower(), m.end()
        params: dict[str, str] = {}
        while (p := _PARAM_RE.match(header, pos)) is not None:
            value = p.group(2)
            if value.startswith('"'):
                value = re.sub(r"\\(.)", r"\1", value[1:-1])
            params[p.group(1).lower()] = value
            pos = p.end()
        out.append(Challenge(scheme, params))
    return out


@dataclass
class _Entry:
    token: str
    refresh_at: float


class TokenCache:
    """Bearer tokens by (credentials, realm, service, scopes); thread-safe."""

    def __init__(self, clock: Callable[[], float] = time.monotonic, max_entries: int = 4096):
        self._clock = clock
        self._max = max_entries
        self._entries: dict[tuple, _Entry] = {}
        self._locks: dict[tuple, threading.Lock] = {}
        self._lock = threading.Lock()

    def get(self, key: tuple) -> str | None:
        """A cached token that is not yet due for refresh."""
        with self._lock:
            entry = self._entries.get(key)
            if entry and self._clock() < entry.refresh_at:
                return entry.token
            return None

    def put(self, key: tuple, token: str, expires_in: float) -> None:
        """Keep ``token``; it is refreshed a little before it expires."""
        # Refresh early so a request never leaves with a token about to lapse.
        margin = min(30.0, expires_in / 4)
        with self._lock:
            if len(self._entries) >= self._max:
                now = self._clock()
                for k in [k for k, e in self._entries.items() if e.refresh_at <= now]:
                    del self._entries[k]
                if len(self._entries) >= self._max:
                    self._entries.pop(next(iter(self._entries)))
            self._entries[key] = _Entry(token, self._clock() + expires_in - margin)

    def invalidate(self, key: tuple, token: str | None = None) -> None:
        """Forget the token under ``key`` (only if it is still ``token``, when given)."""
        with self._lock:
            entry = self._entries.get(key)
            if entry and (token is None or entry.token == token):
                del self._entries[key]

    def fetch_lock(self, key: tuple) -> threading.Lock:
        """One lock per key so concurrent requests fetch one token, not many."""
        with self._lock:
            return self._locks.setdefault(key, threading.Lock())

    def clear(self) -> None:
        with self._lock:
            self._entries.clear()


DEFAULT_TOKEN_CACHE = TokenCache()

# send(method, url, headers, params) -> response; supplied by the client so
# token requests get the same timeouts, retries and network policy.
Sender = Callable[[str, str, dict[str, str], list[tuple[str, str]]], Reply]


def _host_allowed(host: str, port: int, allowed: Iterable[str]) -> bool:
    """True when ``host`` (and ``port``, if the entry names one) is in ``allowed``."""
    for entry in (e.strip().lower() for e in allowed):
        if entry.startswith("["):
            name, _, rest = entry[1:].partition("]")
            entry_port = rest[1:] if rest.startswith(":") else ""
        elif entry.count(":") == 1:
            name, _, entry_port = entry.partition(":")
        else:
            name, entry_port = entry, ""
        if name and name == host and (not entry_port or entry_port == str(port)):
            return True
    return False


class Authenticator:
    """Chooses the Authorization header for a request and learns from 401 answers."""

    def __init__(
        self,
        registry_url: str,
        *,
        username: str | None,
        password: str | None,
        settings: Settings,
        send: Sender,
        cache: TokenCache,
        secrets: set[str],
    ) -> None:
        parts = urlsplit(registry_url)
        self.registry_scheme = parts.scheme
        self.registry_host = (parts.hostname or "").lower()
        self.display = parts.netloc
        self.username = username
        self._password = password
        self._settings = settings
        self._send = send
        self._cache = cache
        self._secrets = secrets
        self.scheme: str | None = None
        self.realm: str | None = None
        self.service: str | None = None
        self._basic: str | None = None
        if username is not None:
            raw = f"{username}:{password or ''}".encode()
            self._basic = "Basic " + base64.b64encode(raw).decode()
            secrets.update(s for s in (password, self._basic, self._basic[6:]) if s)
        # Credentials enter the cache key only as a hash: never the password itself.
        self._cred_id = (
            hashlib.sha256(f"{username}\0{password}".encode()).hexdigest() if username else "-"
        )

    @property
    def has_credentials(self) -> bool:
        return self.username is not None

    def _key(self, scopes: Scopes) -> tuple:
        return (self._cred_id, self.realm, self.service, scopes)

    def header(self, scopes: Scopes) -> dict[str, str]:
        """The Authorization header for a request needing ``scopes`` (may fetch a token)."""
        if self.scheme == "basic" and self._basic:
            return {"Authorization": self._basic}
        if self.scheme == "bearer":
            return {"Authorization": "Bearer " + self._token(scopes)}
        return {}

    def on_unauthorized(
        self, headers: Mapping[str, str], scopes: Scopes, sent: dict[str, str]
    ) -> Scopes | None:
        """Learn from a 401; the scopes to retry with, or None when a retry cannot help."""
        challenges = parse_challenges(headers.get("WWW-Authenticate", ""))
        bearer = next((c for c in challenges if c.scheme == "bearer"), None)
        basic = next((c for c in challenges if c.scheme == "basic"), None)
        if bearer and bearer.params.get("realm"):
            self.scheme = "bearer"
            self.realm = bearer.params["realm"]
            self.service = bearer.params.get("service", "")
            auth = sent.get("Authorization", "")
            if auth.startswith("Bearer "):
                # The token we sent is refused: drop it so the retry fetches a new one.
                self._cache.invalidate(self._key(scopes), auth[7:])
            return scopes | bearer.scopes
        if basic:
            if not self._basic:
                return None
            if sent.get("Authorization") == self._basic:
                return None  # these credentials were just refused
            self.scheme = "basic"
            return scopes
        return None

    def _token(self, scopes: Scopes) -> str:
        key = self._key(scopes)
        token = self._cache.get(key)
        if token:
            return token
        with self._cache.fetch_lock(key):
            token = self._cache.get(key)
            if token:
                return token
            token, expires_in = self._fetch(scopes)
            self._cache.put(key, token, expires_in)
            return token

    def check_realm(self, realm: str) -> None:
        """Refuse a realm Ferry must not contact, or must not send credentials to."""
        try:
            parts = urlsplit(realm)
            port = parts.port or (443 if parts.scheme == "https" else 80)
        except ValueError:
            raise AuthError(f"{self.display}: malformed token realm") from None
        host = (parts.hostname or "").lower()
        if parts.scheme not in ("http", "https") or not host:
            raise AuthError(f"{self.display}: token realm is not an http(s) URL")
        same_host = host == self.registry_host
        if not same_host and not _host_allowed(host, port, self._settings.token_realm_hosts):
            raise NetworkPolicyError(
                f"{self.display}: token realm host {host} is not the registry's host; "
                "allow it with FERRY_TOKEN_REALM_HOSTS"
            )
        if (
            self._basic
            and parts.scheme == "http"
            and (not same_host or self.registry_scheme == "https")
        ):
            raise AuthError(
                f"{self.display}: refusing to send credentials over plain http to token realm "
                f"{parts.netloc}"
            )
        check_url(realm, self._settings)

    def _fetch(self, scopes: Scopes) -> tuple[str, float]:
        assert self.realm is not None
        self.check_realm(self.realm)
        params = [("service", self.service or "")] if self.service else []
        params += [("scope", s) for s in sorted(scopes)]
        headers = {"Authorization": self._basic} if self._basic else {}
        realm_host = urlsplit(self.realm).netloc
        log.debug("token request to %s for %s", realm_host, " ".join(sorted(scopes)) or "-")
        resp = self._send("GET", self.realm, headers, params)
        if resp.status_code in (401, 403):
            who = f" for user {self.username}" if self.username else ""
            raise AuthError(
                f"{self.display}: token service {realm_host} refused the credentials{who} "
                f"({resp.status_code})"
            )
        if resp.status_code != 200:
            raise RegistryError(
                f"{self.display}: token service {realm_host} answered {resp.status_code}"
            )
        try:
            body = resp.json()
            token = body.get("token") or body.get("access_token")
            expires_in = float(body.get("expires_in") or DEFAULT_EXPIRES_IN)
        except (ValueError, AttributeError, TypeError):
            raise RegistryError(
                f"{self.display}: token service {realm_host} sent no JSON"
            ) from None
        if not token or not isinstance(token, str):
            raise RegistryError(f"{self.display}: token service {realm_host} sent no token")
        self._secrets.add(token)
        return token, max(expires_in, 1.0)


class AuthStep:
    """The auth step of one request: the header to send, and what a 401 teaches.

    A 401 earns at most one more try to learn the scheme (when nothing was
    sent) and one to replace a refused token; a retry cannot help otherwise.
    """

    def __init__(self, auth: Authenticator, scopes: Scopes) -> None:
        self._auth = auth
        self.scopes = scopes
        self._learn_left = 1
        self._refresh_left = 1

    def header(self) -> dict[str, str]:
        """The Authorization header for the next try (may fetch a token)."""
        return self._auth.header(self.scopes)

    def learn(self, headers: Mapping[str, str], sent: dict[str, str]) -> bool:
        """True when a 401 with ``headers`` (answering ``sent``) is worth one more try."""
        if not (self._refresh_left if sent else self._learn_left):
            return False
        scopes = self._auth.on_unauthorized(headers, self.scopes, sent)
        if scopes is None:
            return False
        if sent:
            self._refresh_left -= 1
        else:
            self._learn_left -= 1
        self.scopes = scopes
        return True
