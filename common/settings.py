"""Typed settings built from the environment; the only reader of ``os.environ``.

Every other module receives a :class:`Settings` (or calls :func:`get_settings`).
A missing or malformed value raises :class:`~common.errors.ConfigError` whose
message is one line naming the variable.
"""

from __future__ import annotations

import ipaddress
import os
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, fields, replace
from functools import lru_cache, partial
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

from cryptography.fernet import Fernet

from common.errors import ConfigError

Network = ipaddress.IPv4Network | ipaddress.IPv6Network

# Loopback and private ranges are allowed by default: Ferry is self-hosted and
# most registries it talks to live on the same network. Link-local and metadata
# addresses are refused by common.security.netpolicy regardless of these lists.
DEFAULT_ALLOW_NETWORKS = "0.0.0.0/0,::/0"
DEFAULT_DENY_NETWORKS = ""

LOG_LEVELS = ("DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL")
LOG_FORMATS = ("text", "json")
_SECRET_FIELDS = frozenset(
    {"secret_keys", "flower_basic_auth", "client_token", "src_creds", "dst_creds", "metrics_token"}
)
_URL_FIELDS = frozenset({"database_url", "redis_url", "client_url"})
_SECRET_QUERY = re.compile(r"(pass|secret|token|key)", re.IGNORECASE)


def redact_url(url: str) -> str:
    """``url`` with its password (and any secret-looking query value) replaced by ``***``."""
    parts = urlsplit(url)
    netloc = parts.netloc
    if "@" in netloc:
        userinfo, host = netloc.rsplit("@", 1)
        user = userinfo.split(":", 1)[0]
        netloc = f"{user}:***@{host}" if ":" in userinfo else f"{user}@{host}"
    query = "&".join(
        f"{k}=***" if _SECRET_QUERY.search(k) else f"{k}={v}" if sep else k
        for k, sep, v in (p.partition("=") for p in parts.query.split("&") if p)
    )
    return urlunsplit(parts._replace(netloc=netloc, query=query))


def default_data_dir() -> Path:
    """Where ``ferry up`` keeps its state when FERRY_DATA_DIR is not set.

    As root, /var/lib/ferry: the embedded PostgreSQL runs as an unprivileged
    account that must traverse every directory above its data, and /root is
    0700 (Ferry changes no permission above the data dir).
    """
    if os.geteuid() == 0:
        return Path("/var/lib/ferry")
    return Path("~/.local/share/ferry").expanduser()


@dataclass(frozen=True)
class Settings:
    """Ferry's configuration; ``None`` URLs mean "use the embedded servers"."""

    database_url: str | None = None
    redis_url: str | None = None
    secret_keys: tuple[str, ...] = field(default=(), repr=False)
    data_dir: Path = field(default_factory=default_data_dir)
    api_bind: tuple[str, int] = ("127.0.0.1", 8000)
    flower_bind: tuple[str, int] = ("127.0.0.1", 5555)
    log_level: str = "INFO"
    registry_allow_networks: tuple[Network, ...] = ()
    registry_deny_networks: tuple[Network, ...] = ()
    flower_basic_auth: str | None = None
    full_rescan_interval: int | None = None
    # For CLI commands that talk to a running API (FERRY_URL, FERRY_TOKEN).
    client_url: str | None = None
    client_token: str | None = field(default=None, repr=False)
    # Token realm hosts allowed besides the registry's own host (FERRY_TOKEN_REALM_HOSTS).
    token_realm_hosts: tuple[str, ...] = ()
    # Non-public hosts a registry may redirect blob reads to (FERRY_REGISTRY_REDIRECT_HOSTS).
    registry_redirect_hosts: tuple[str, ...] = ()
    # USER:PASSWORD for `ferry copy` (FERRY_SRC_CREDS / FERRY_DST_CREDS); kept out of repr.
    src_creds: str | None = field(default=None, repr=False)
    dst_creds: str | None = field(default=None, repr=False)
    # Caps on what one task lists (FERRY_MAX_REPOSITORIES_PER_TASK, FERRY_MAX_TAGS_PER_TASK):
    # an endless catalog or tag list fails the task with a reason instead of running for ever.
    max_repositories_per_task: int = 10_000
    max_tags_per_task: int = 200_000
    # Seconds a registry answer read whole may take, however slowly it trickles
    # (FERRY_REGISTRY_DEADLINE), and a blob stream may go without moving 64 KiB
    # (FERRY_REGISTRY_STALL).
    registry_deadline: int = 120
    registry_stall: int = 30
    # Seconds a rotated-out webhook secret keeps working (FERRY_WEBHOOK_SECRET_GRACE).
    webhook_secret_grace: int = 24 * 3600
    # Webhook deliveries accepted per instance (FERRY_WEBHOOK_RATE_LIMIT, flask-limiter syntax).
    webhook_rate_limit: str = "600/minute"
    # PEM certificate chain and key the API serves HTTPS with (FERRY_API_TLS_CERT/_KEY):
    # both or neither.
    api_tls_cert: Path | None = None
    api_tls_key: Path | None = None
    # Seconds without a webhook from a rule's source (with a webhook secret) before the rule
    # is degraded (FERRY_WEBHOOK_SILENCE_AFTER; None: off).
    webhook_silence_after: int | None = None
    # Seconds between beat's health checks of every enabled rule (FERRY_HEALTH_CHECK_INTERVAL;
    # None: off).
    health_check_interval: int | None = 300
    # Bearer token GET /metrics asks for (FERRY_METRICS_TOKEN); None: the route is open.
    metrics_token: str | None = field(default=None, repr=False)
    # FERRY_LOG_FORMAT: "text" for people, "json" for one object per line.
    log_format: str = "text"
    # Console sign-ins last this long (FERRY_CONSOLE_SESSION_HOURS); attempts per client
    # address (FERRY_CONSOLE_LOGIN_RATE_LIMIT).
    console_session_hours: int = 8
    console_login_rate_limit: str = "10/minute"

    def __repr__(self) -> str:
        """Every field, with secrets hidden and URLs' credentials masked (reprs reach logs)."""
        parts = []
        for f in fields(self):
            value = getattr(self, f.name)
            if f.name in _SECRET_FIELDS and value:
                value = "<hidden>"
            elif f.name in _URL_FIELDS and value:
                value = redact_url(value)
            parts.append(f"{f.name}={value!r}")
        return f"Settings({', '.join(parts)})"

    @property
    def embedded(self) -> bool:
        """True when at least one server must be provided by ``ferry up``."""
        return self.database_url is None or self.redis_url is None

    @property
    def api_url(self) -> str:
        host, port = self.api_bind
        scheme = "https" if self.api_tls_cert else "http"
        return f"{scheme}://{host}:{port}"

    @property
    def flower_url(self) -> str:
        host, port = self.flower_bind
        return f"http://{host}:{port}"

    def with_urls(self, database_url: str, redis_url: str) -> Settings:
        """A copy pointing at concrete servers (used once embedded ones are up)."""
        return replace(self, database_url=database_url, redis_url=redis_url)

    def require_database_url(self) -> str:
        if not self.database_url:
            raise ConfigError("FERRY_DATABASE_URL: not set and no embedded PostgreSQL is running")
        return self.database_url

    def require_redis_url(self) -> str:
        if not self.redis_url:
            raise ConfigError("FERRY_REDIS_URL: not set and no embedded Redis is running")
        return self.redis_url

    def to_env(self) -> dict[str, str]:
        """Environment variables that rebuild these settings in a child process."""
        env = {
            "FERRY_DATA_DIR": str(self.data_dir),
            "FERRY_API_BIND": "{}:{}".format(*self.api_bind),
            "FERRY_FLOWER_BIND": "{}:{}".format(*self.flower_bind),
            "FERRY_LOG_LEVEL": self.log_level,
            "FERRY_REGISTRY_ALLOW_NETWORKS": ",".join(map(str, self.registry_allow_networks)),
            "FERRY_REGISTRY_DENY_NETWORKS": ",".join(map(str, self.registry_deny_networks)),
        }
        optional = {
            "FERRY_DATABASE_URL": self.database_url,
            "FERRY_REDIS_URL": self.redis_url,
            "FERRY_SECRET_KEYS": ",".join(self.secret_keys) or None,
            "FERRY_FLOWER_BASIC_AUTH": self.flower_basic_auth,
            "FERRY_FULL_RESCAN_INTERVAL": (
                str(self.full_rescan_interval) if self.full_rescan_interval else None
            ),
            "FERRY_TOKEN_REALM_HOSTS": ",".join(self.token_realm_hosts) or None,
            "FERRY_REGISTRY_REDIRECT_HOSTS": ",".join(self.registry_redirect_hosts) or None,
            "FERRY_WEBHOOK_SECRET_GRACE": str(self.webhook_secret_grace),
            "FERRY_MAX_REPOSITORIES_PER_TASK": str(self.max_repositories_per_task),
            "FERRY_MAX_TAGS_PER_TASK": str(self.max_tags_per_task),
            "FERRY_REGISTRY_DEADLINE": str(self.registry_deadline),
            "FERRY_REGISTRY_STALL": str(self.registry_stall),
            "FERRY_WEBHOOK_RATE_LIMIT": self.webhook_rate_limit,
            "FERRY_API_TLS_CERT": str(self.api_tls_cert) if self.api_tls_cert else None,
            "FERRY_API_TLS_KEY": str(self.api_tls_key) if self.api_tls_key else None,
            "FERRY_WEBHOOK_SILENCE_AFTER": str(self.webhook_silence_after or "off"),
            "FERRY_HEALTH_CHECK_INTERVAL": str(self.health_check_interval or "off"),
            "FERRY_METRICS_TOKEN": self.metrics_token,
            "FERRY_LOG_FORMAT": self.log_format,
            "FERRY_CONSOLE_SESSION_HOURS": str(self.console_session_hours),
            "FERRY_CONSOLE_LOGIN_RATE_LIMIT": self.console_login_rate_limit,
        }
        env.update({k: v for k, v in optional.items() if v})
        return env


def _bind(name: str, value: str) -> tuple[str, int]:
    host, sep, port = value.rpartition(":")
    if not sep or not host or not port.isdigit() or not 0 < int(port) < 65536:
        raise ConfigError(f"{name}: expected HOST:PORT, got {value!r}")
    return host.strip("[]"), int(port)


def _url(name: str, value: str, schemes: tuple[str, ...]) -> str:
    scheme = value.split("://", 1)[0] if "://" in value else ""
    if scheme not in schemes:
        raise ConfigError(f"{name}: expected a URL starting with {' or '.join(schemes)}://")
    return value


def _fernet_keys(name: str, value: str) -> tuple[str, ...]:
    keys = tuple(k.strip() for k in value.split(",") if k.strip())
    if not keys:
        raise ConfigError(f"{name}: no key given")
    for i, key in enumerate(keys, 1):
        try:
            Fernet(key.encode())
        except (ValueError, TypeError):
            # Never echo the key itself: it is a secret.
            raise ConfigError(
                f"{name}: key #{i} is not a Fernet key (32 url-safe base64-encoded bytes)"
            ) from None
    return keys


def _networks(name: str, value: str) -> tuple[Network, ...]:
    nets = []
    for part in (p.strip() for p in value.split(",")):
        if not part:
            continue
        try:
            nets.append(ipaddress.ip_network(part, strict=False))
        except ValueError:
            raise ConfigError(f"{name}: {part!r} is not an IP network (CIDR)") from None
    return tuple(nets)


def _positive_int(name: str, value: str) -> int | None:
    if value.strip().lower() in ("", "0", "off", "none"):
        return None
    if not value.strip().isdigit():
        raise ConfigError(f"{name}: expected a number of seconds or 'off', got {value!r}")
    return int(value)


_RATE = re.compile(r"\s*(\d+)\s*(?:/|per)\s*(second|minute|hour|day)\s*", re.IGNORECASE)


def _rate_limit(name: str, value: str) -> str:
    m = _RATE.fullmatch(value)
    if not m or int(m.group(1)) == 0:
        raise ConfigError(f"{name}: expected N/second, N/minute, N/hour or N/day, got {value!r}")
    return f"{int(m.group(1))}/{m.group(2).lower()}"


def _log_level(name: str, value: str) -> str:
    if value.upper() not in LOG_LEVELS:
        raise ConfigError(f"{name}: expected one of {', '.join(LOG_LEVELS)}")
    return value.upper()


def _log_format(name: str, value: str) -> str:
    if value.lower() not in LOG_FORMATS:
        raise ConfigError(f"{name}: expected one of {', '.join(LOG_FORMATS)}")
    return value.lower()


def _user_password(name: str, value: str) -> str:
    if ":" not in value:
        raise ConfigError(f"{name}: expected USER:PASSWORD")
    return value


def _host_list(name: str, value: str) -> tuple[str, ...]:
    return tuple(h.strip().lower() for h in value.split(",") if h.strip())


def _redirect_hosts(name: str, value: str) -> tuple[str, ...]:
    return tuple(h.rstrip(".") for h in _host_list(name, value))


def _grace(name: str, value: str) -> int:
    if not value.strip().isdigit():
        raise ConfigError(f"{name}: expected a number of seconds (0 = none), got {value!r}")
    return int(value)


def _count(name: str, value: str) -> int:
    if not value.strip().isdigit() or int(value) == 0:
        raise ConfigError(f"{name}: expected a positive number, got {value!r}")
    return int(value)


def _client_url(name: str, value: str) -> str:
    return _url(name, value, ("http", "https")).rstrip("/")


# (variable, Settings field, parser, value when unset or None to keep the field's default),
# in the order they are checked: the first malformed one is the error reported.
_VARIABLES: tuple[tuple[str, str, Callable[[str, str], object], str | None], ...] = (
    ("FERRY_DATABASE_URL", "database_url", partial(_url, schemes=("postgresql", "postgres")), None),
    ("FERRY_REDIS_URL", "redis_url", partial(_url, schemes=("redis", "rediss", "unix")), None),
    ("FERRY_SECRET_KEYS", "secret_keys", _fernet_keys, None),
    ("FERRY_DATA_DIR", "data_dir", lambda _name, v: Path(v).expanduser(), None),
    ("FERRY_API_BIND", "api_bind", _bind, None),
    ("FERRY_FLOWER_BIND", "flower_bind", _bind, None),
    ("FERRY_LOG_LEVEL", "log_level", _log_level, None),
    ("FERRY_REGISTRY_ALLOW_NETWORKS", "registry_allow_networks", _networks, DEFAULT_ALLOW_NETWORKS),
    ("FERRY_REGISTRY_DENY_NETWORKS", "registry_deny_networks", _networks, DEFAULT_DENY_NETWORKS),
    ("FERRY_FLOWER_BASIC_AUTH", "flower_basic_auth", _user_password, None),
    ("FERRY_FULL_RESCAN_INTERVAL", "full_rescan_interval", _positive_int, None),
    ("FERRY_URL", "client_url", _client_url, None),
    ("FERRY_TOKEN", "client_token", lambda _name, v: v, None),
    ("FERRY_TOKEN_REALM_HOSTS", "token_realm_hosts", _host_list, None),
    ("FERRY_REGISTRY_REDIRECT_HOSTS", "registry_redirect_hosts", _redirect_hosts, None),
    ("FERRY_WEBHOOK_SECRET_GRACE", "webhook_secret_grace", _grace, None),
    ("FERRY_MAX_REPOSITORIES_PER_TASK", "max_repositories_per_task", _count, None),
    ("FERRY_MAX_TAGS_PER_TASK", "max_tags_per_task", _count, None),
    ("FERRY_WEBHOOK_RATE_LIMIT", "webhook_rate_limit", _rate_limit, None),
    ("FERRY_WEBHOOK_SILENCE_AFTER", "webhook_silence_after", _positive_int, None),
    ("FERRY_HEALTH_CHECK_INTERVAL", "health_check_interval", _positive_int, None),
    ("FERRY_REGISTRY_DEADLINE", "registry_deadline", _count, None),
    ("FERRY_REGISTRY_STALL", "registry_stall", _count, None),
    ("FERRY_CONSOLE_SESSION_HOURS", "console_session_hours", _count, None),
    ("FERRY_CONSOLE_LOGIN_RATE_LIMIT", "console_login_rate_limit", _rate_limit, None),
    ("FERRY_SRC_CREDS", "src_creds", _user_password, None),
    ("FERRY_DST_CREDS", "dst_creds", _user_password, None),
    ("FERRY_API_TLS_CERT", "api_tls_cert", lambda _name, v: Path(v).expanduser(), None),
    ("FERRY_API_TLS_KEY", "api_tls_key", lambda _name, v: Path(v).expanduser(), None),
    ("FERRY_METRICS_TOKEN", "metrics_token", lambda _name, v: v, None),
    ("FERRY_LOG_FORMAT", "log_format", _log_format, None),
)


# Where prometheus-client's multiprocess mode keeps each process's values.
MULTIPROC_ENV = "PROMETHEUS_MULTIPROC_DIR"


def metrics_directory() -> str | None:
    """PROMETHEUS_MULTIPROC_DIR: the directory every process's Prometheus values share, if set
    (read when asked: ``ferry up`` sets it for its children)."""
    return os.environ.get(MULTIPROC_ENV) or None


def variable(name: str) -> str | None:
    """The value of environment variable ``name`` (empty counts as unset), for the values a
    person names by reference, such as a password's ``password_env``."""
    return os.environ.get(name) or None


def load_settings(environ: Mapping[str, str] | None = None) -> Settings:
    """Build :class:`Settings` from ``environ`` (default ``os.environ``)."""
    env = os.environ if environ is None else environ
    kwargs: dict[str, object] = {}
    for name, key, parse, default in _VARIABLES:
        value = env.get(name) or default  # an empty variable counts as unset
        if value is not None:
            kwargs[key] = parse(name, value)
    if ("api_tls_cert" in kwargs) != ("api_tls_key" in kwargs):
        given, missing = (
            ("FERRY_API_TLS_CERT", "FERRY_API_TLS_KEY")
            if "api_tls_cert" in kwargs
            else ("FERRY_API_TLS_KEY", "FERRY_API_TLS_CERT")
        )
        raise ConfigError(f"{missing}: required with {given} (give both for HTTPS, or neither)")
    return Settings(**kwargs)  # type: ignore[arg-type]


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    """The process-wide settings, read once."""
    return load_settings()


def child_environment(settings: Settings) -> dict[str, str]:
    """This process's environment with ``settings`` written over it, for child processes."""
    env = dict(os.environ)
    env.update(settings.to_env())
    return env
