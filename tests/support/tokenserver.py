"""A Docker-style token server for tests, trusted by a real docker-registry.

The server answers ``GET /token?service=..&scope=..`` with an RS256 JWT signed
by a self-signed certificate that the registry is configured to trust
(``auth.token.rootcertbundle``), so the registry itself enforces the scopes:
nothing about the registry is mocked. Users have a password and a set of
grants ``(repository glob, actions)``; a token carries the intersection of
what was asked and what is granted, like Docker Hub or Harbor.

Knobs for tests: which field carries the token (``token`` or ``access_token``),
``expires_in`` (or none at all), an optional TLS listener, and a number of
already-expired tokens to hand out first (to exercise refresh on 401).
"""

from __future__ import annotations

import base64
import datetime as dt
import fnmatch
import json
import ssl
import tempfile
import threading
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from socketserver import TCPServer
from typing import Any, ClassVar
from urllib.parse import parse_qs, urlsplit

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding, rsa
from cryptography.x509.oid import NameOID

from tests.support.servers import HandlerServer, QuietHandler

SERVICE = "ferry-test-registry"
# Every token any TokenServer issued: secrets that must never reach a log line.
ALL_ISSUED: list[str] = []
ISSUER = "ferry-test-issuer"


def _b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def make_cert(hosts: tuple[str, ...] = ("localhost", "127.0.0.1")) -> tuple[Any, bytes, bytes]:
    """A self-signed RSA certificate: (private key, cert PEM, key PEM)."""
    import ipaddress

    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "ferry-test")])
    sans: list[x509.GeneralName] = []
    for h in hosts:
        try:
            sans.append(x509.IPAddress(ipaddress.ip_address(h)))
        except ValueError:
            sans.append(x509.DNSName(h))
    now = dt.datetime.now(dt.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(days=1))
        .not_valid_after(now + dt.timedelta(days=2))
        .add_extension(x509.SubjectAlternativeName(sans), critical=False)
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    cert_pem = cert.public_bytes(serialization.Encoding.PEM)
    key_pem = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.TraditionalOpenSSL,
        serialization.NoEncryption(),
    )
    return key, cert_pem, key_pem


@dataclass
class User:
    password: str
    # (repository glob, actions) pairs; "registry:catalog" uses the glob "catalog".
    grants: list[tuple[str, set[str]]] = field(default_factory=list)


class TokenHandler(QuietHandler):
    """``GET /token``: Basic credentials (optional) checked, then a token for the scopes."""

    def do_GET(self) -> None:
        server: TokenServer = self.owner
        parts = urlsplit(self.path)
        if parts.path != "/token":
            self.send_json(404, {"error": "not found"})
            return
        query = parse_qs(parts.query)
        user = None
        auth = self.headers.get("Authorization", "")
        if auth.startswith("Basic "):
            name, _, pw = base64.b64decode(auth[6:]).decode().partition(":")
            known = server.users.get(name)
            if not known or known.password != pw:
                self.send_json(401, {"details": "invalid username or password"})
                return
            user = name
        scopes = [s for v in query.get("scope", []) for s in v.split(" ") if s]
        self.send_json(200, server.answer(user, scopes, query.get("service", [""])[0]))


@dataclass
class TokenServer(HandlerServer):
    """A threaded token endpoint; ``realm`` is the URL to configure in the registry."""

    users: dict[str, User] = field(default_factory=dict)
    anonymous_grants: list[tuple[str, set[str]]] = field(default_factory=list)
    token_field: str = "token"
    expires_in: int | None = 300
    realm_host: str = "127.0.0.1"
    tls: bool = False
    expired_first: int = 0
    requests: list[dict[str, Any]] = field(default_factory=list)
    issued: list[str] = field(default_factory=list)

    handler: ClassVar[type[QuietHandler]] = TokenHandler

    def __post_init__(self) -> None:
        self.root = Path(tempfile.mkdtemp(prefix="ferry-token-"))
        self._key, cert_pem, key_pem = make_cert((self.realm_host, "127.0.0.1", "localhost"))
        self.cert_path = self.root / "cert.pem"
        self.cert_path.write_bytes(cert_pem)
        self.key_path = self.root / "key.pem"
        self.key_path.write_bytes(key_pem)
        cert = x509.load_pem_x509_certificate(cert_pem)
        self._x5c = base64.b64encode(cert.public_bytes(serialization.Encoding.DER)).decode()
        self._lock = threading.Lock()

    # -- JWT ---------------------------------------------------------------------------
    def _granted(self, user: str | None, scope: str) -> dict[str, Any] | None:
        parts = scope.split(":")
        if len(parts) < 3:
            return None
        rtype, name, actions = parts[0], ":".join(parts[1:-1]), set(parts[-1].split(","))
        grants = self.users[user].grants if user else self.anonymous_grants
        allowed: set[str] = set()
        for pattern, acts in grants:
            if fnmatch.fnmatchcase(name, pattern):
                allowed |= acts
        if "*" in allowed:
            allowed |= actions
        given = sorted(actions & allowed)
        return {"type": rtype, "name": name, "actions": given}

    def make_token(self, subject: str, access: list[dict[str, Any]], lifetime: int) -> str:
        now = int(time.time())
        header = {"typ": "JWT", "alg": "RS256", "x5c": [self._x5c]}
        claims = {
            "iss": ISSUER,
            "sub": subject,
            "aud": SERVICE,
            "exp": now + lifetime,
            "nbf": now - 5,
            "iat": now,
            "jti": uuid.uuid4().hex,
            "access": access,
        }
        signing_input = (
            _b64url(json.dumps(header).encode()) + "." + _b64url(json.dumps(claims).encode())
        )
        sig = self._key.sign(signing_input.encode(), padding.PKCS1v15(), hashes.SHA256())
        token = signing_input + "." + _b64url(sig)
        with self._lock:
            self.issued.append(token)
            ALL_ISSUED.append(token)
        return token

    # -- HTTP --------------------------------------------------------------------------
    @property
    def scheme(self) -> str:
        return "https" if self.tls else "http"

    @property
    def realm(self) -> str:
        return f"{self.scheme}://{self.realm_host}:{self.port}/token"

    def registry_config(self) -> dict[str, Any]:
        """The ``auth`` section for a docker-registry that trusts this server."""
        return {
            "auth": {
                "token": {
                    "realm": self.realm,
                    "service": SERVICE,
                    "issuer": ISSUER,
                    "rootcertbundle": str(self.cert_path),
                }
            }
        }

    def make_server(self) -> TCPServer:
        server = super().make_server()
        if self.tls:
            ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
            ctx.load_cert_chain(self.cert_path, self.key_path)
            server.socket = ctx.wrap_socket(server.socket, server_side=True)
        return server

    def answer(self, user: str | None, scopes: list[str], service: str) -> dict[str, Any]:
        """The token response for ``user`` (None: anonymous) asking for ``scopes``."""
        access = [a for a in (self._granted(user, s) for s in scopes) if a]
        with self._lock:
            self.requests.append({"user": user, "scopes": scopes, "service": service})
            expired = self.expired_first > 0
            if expired:
                self.expired_first -= 1
        # An expired token is also past the registry's 60 s leeway.
        token = self.make_token(user or "", access, -120 if expired else 600)
        body: dict[str, Any] = {self.token_field: token}
        if self.expires_in is not None:
            body["expires_in"] = self.expires_in
        return body
