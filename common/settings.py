"""Typed settings built from the environment; the only reader of ``os.environ``.

Every other module receives a :class:`Settings` (or calls :func:`get_settings`).
A missing or malformed value raises :class:`~common.errors.ConfigError` whose
message is one line naming the variable.
"""

from __future__ import annotations

import ipaddress
import os
import re
from collections.abc import Mapping
from dataclasses import dataclass, field, fields, replace
from functools import lru_cache
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
_SECRET_FIELDS = frozenset(
    {"secret_keys", "flower_basic_auth", "client_token", "src_creds", "dst_creds"}
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
    # Seconds a rotated-out webhook secret keeps working (FERRY_WEBHOOK_SECRET_GRACE).
    webhook_secret_grace: int = 24 * 3600
    # Webhook deliveries accepted per instance (FERRY_WEBHOOK_RATE_LIMIT, flask-limiter syntax).
    webhook_rate_limit: str = "600/minute"

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
        return f"http://{host}:{port}"

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
            "FERRY_WEBHOOK_RATE_LIMIT": self.webhook_rate_limit,
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


def load_settings(environ: Mapping[str, str] | None = None) -> Settings:
    """Build :class:`Settings` from ``environ`` (default ``os.environ``)."""
    env = os.environ if environ is None else environ

    def get(name: str) -> str | None:
        value = env.get(name)
        return value if value not in (None, "") else None

    kwargs: dict[str, object] = {}
    if (v := get("FERRY_DATABASE_URL")) is not None:
        kwargs["database_url"] = _url("FERRY_DATABASE_URL", v, ("postgresql", "postgres"))
    if (v := get("FERRY_REDIS_URL")) is not None:
        kwargs["redis_url"] = _url("FERRY_REDIS_URL", v, ("redis", "rediss", "unix"))
    if (v := get("FERRY_SECRET_KEYS")) is not None:
        kwargs["secret_keys"] = _fernet_keys("FERRY_SECRET_KEYS", v)
    if (v := get("FERRY_DATA_DIR")) is not None:
        kwargs["data_dir"] = Path(v).expanduser()
    if (v := get("FERRY_API_BIND")) is not None:
        kwargs["api_bind"] = _bind("FERRY_API_BIND", v)
    if (v := get("FERRY_FLOWER_BIND")) is not None:
        kwargs["flower_bind"] = _bind("FERRY_FLOWER_BIND", v)
    if (v := get("FERRY_LOG_LEVEL")) is not None:
        if v.upper() not in LOG_LEVELS:
            raise ConfigError(f"FERRY_LOG_LEVEL: expected one of {', '.join(LOG_LEVELS)}")
        kwargs["log_level"] = v.upper()
    kwargs["registry_allow_networks"] = _networks(
        "FERRY_REGISTRY_ALLOW_NETWORKS",
        get("FERRY_REGISTRY_ALLOW_NETWORKS") or DEFAULT_ALLOW_NETWORKS,
    )
    kwargs["registry_deny_networks"] = _networks(
        "FERRY_REGISTRY_DENY_NETWORKS",
        get("FERRY_REGISTRY_DENY_NETWORKS") or DEFAULT_DENY_NETWORKS,
    )
    if (v := get("FERRY_FLOWER_BASIC_AUTH")) is not None:
        if ":" not in v:
            raise ConfigError("FERRY_FLOWER_BASIC_AUTH: expected USER:PASSWORD")
        kwargs["flower_basic_auth"] = v
    if (v := get("FERRY_FULL_RESCAN_INTERVAL")) is not None:
        kwargs["full_rescan_interval"] = _positive_int("FERRY_FULL_RESCAN_INTERVAL", v)
    if (v := get("FERRY_URL")) is not None:
        kwargs["client_url"] = _url("FERRY_URL", v, ("http", "https")).rstrip("/")
    if (v := get("FERRY_TOKEN")) is not None:
        kwargs["client_token"] = v
    if (v := get("FERRY_TOKEN_REALM_HOSTS")) is not None:
        kwargs["token_realm_hosts"] = tuple(h.strip().lower() for h in v.split(",") if h.strip())
    if (v := get("FERRY_REGISTRY_REDIRECT_HOSTS")) is not None:
        kwargs["registry_redirect_hosts"] = tuple(
            h.strip().lower().rstrip(".") for h in v.split(",") if h.strip()
        )
    if (v := get("FERRY_WEBHOOK_SECRET_GRACE")) is not None:
        if not v.strip().isdigit():
            raise ConfigError(
                f"FERRY_WEBHOOK_SECRET_GRACE: expected a number of seconds (0 = none), got {v!r}"
            )
        kwargs["webhook_secret_grace"] = int(v)
    for name, key in (
        ("FERRY_MAX_REPOSITORIES_PER_TASK", "max_repositories_per_task"),
        ("FERRY_MAX_TAGS_PER_TASK", "max_tags_per_task"),
    ):
        if (v := get(name)) is not None:
            if not v.strip().isdigit() or int(v) == 0:
                raise ConfigError(f"{name}: expected a positive number, got {v!r}")
            kwargs[key] = int(v)
    if (v := get("FERRY_WEBHOOK_RATE_LIMIT")) is not None:
        kwargs["webhook_rate_limit"] = _rate_limit("FERRY_WEBHOOK_RATE_LIMIT", v)
    for name, key in (("FERRY_SRC_CREDS", "src_creds"), ("FERRY_DST_CREDS", "dst_creds")):
        if (v := get(name)) is not None:
            if ":" not in v:
                raise ConfigError(f"{name}: expected USER:PASSWORD")
            kwargs[key] = v
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
