"""Bearer tokens against a real docker-registry that trusts a token server written here."""

from __future__ import annotations

import hashlib
import os
from collections.abc import Iterator

import pytest

from common.errors import AuthError, FerryError, NetworkPolicyError, PermissionDenied
from common.registry import InProcessCoordinator, TokenCache, copy_artifact
from common.registry.copier import CopyStatus
from tests.support import oci
from tests.support.copyenv import Tenants, client, register_user, settings, unique
from tests.support.registry import RegistryServer
from tests.support.tokenserver import TokenServer, User

pytestmark = pytest.mark.usefixtures("no_secret_logs")

CAROL_PW = "carol-T0ken-pw"
READER_PW = "reader-T0ken-pw"
ADMIN_PW = "admin-T0ken-pw"


def sha(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


def _users() -> dict[str, User]:
    for user, pw in (("carol", CAROL_PW), ("reader", READER_PW), ("admin", ADMIN_PW)):
        register_user(user, pw)
    return {
        "carol": User(CAROL_PW, [("team/*", {"pull", "push"}), ("catalog", {"*"})]),
        "reader": User(READER_PW, [("team/*", {"pull"})]),
        "admin": User(ADMIN_PW, [("*", {"*"})]),
    }


class TokenRegistry:
    def __init__(self, **token_kw) -> None:
        self.tokens = TokenServer(
            users=_users(), anonymous_grants=[("public/*", {"pull"})], **token_kw
        ).start()
        self.registry = RegistryServer(extra_config=self.tokens.registry_config()).start()

    def client(self, user: str | None = None, password: str | None = None, **kw):
        if user and password is None:
            password = self.tokens.users[user].password
        kw.setdefault("token_cache", TokenCache())
        return client(self.registry.url, user, password, **kw)

    def token_requests(self) -> int:
        return len(self.tokens.requests)

    def stop(self) -> None:
        self.registry.cleanup()
        self.tokens.stop()


@pytest.fixture(scope="module")
def treg() -> Iterator[TokenRegistry]:
    t = TokenRegistry()
    yield t
    t.stop()


@pytest.fixture
def tr(treg: TokenRegistry) -> Iterator[TokenRegistry]:
    """The module's token registry, with its knobs reset after each test."""
    yield treg
    treg.tokens.token_field, treg.tokens.expires_in, treg.tokens.expired_first = "token", 300, 0


def test_bearer_push_pull_and_one_token_per_scope_set(tr: TokenRegistry) -> None:
    repo = unique("team/")
    data = os.urandom(4000)
    with tr.client("carol") as c:
        c.ping()
        c.upload_blob(repo, sha(data), len(data), data)
        before = tr.token_requests()
        for _ in range(3):
            assert c.blob_exists(repo, sha(data))
        assert tr.token_requests() == before + 1  # one pull token, then the cache
        assert repo in list(c.iter_repositories(prefix="team"))


def test_access_token_field_and_default_expiry(tr: TokenRegistry) -> None:
    tr.tokens.token_field, tr.tokens.expires_in = "access_token", None
    now = [0.0]
    with tr.client("carol", token_cache=TokenCache(clock=lambda: now[0])) as c:
        repo = unique("team/")
        assert not c.blob_exists(repo, sha(b"x"))
        n = tr.token_requests()
        now[0] += 40  # < 60 s default lifetime minus the refresh margin
        assert not c.blob_exists(repo, sha(b"x"))
        assert tr.token_requests() == n
        now[0] += 10  # inside the refresh margin: a new token before the old one expires
        assert not c.blob_exists(repo, sha(b"x"))
        assert tr.token_requests() == n + 1


def test_token_refused_by_registry_is_refreshed_once(tr: TokenRegistry) -> None:
    tr.tokens.expired_first = 1  # the first token is already expired for the registry
    with tr.client("carol") as c:
        assert not c.blob_exists(unique("team/"), sha(b"y"))
    assert tr.token_requests() >= 2
    tr.tokens.expired_first = 100  # every token refused: an error, not a loop
    with tr.client("carol") as c:
        n = tr.token_requests()
        with pytest.raises(AuthError):
            c.blob_exists(unique("team/"), sha(b"y"))
        assert tr.token_requests() - n == 2


def test_pull_only_credentials_get_a_clear_push_error(tr: TokenRegistry) -> None:
    repo = unique("team/")
    with tr.client("reader") as c:
        c.ping()
        with pytest.raises(PermissionDenied) as e:
            c.check_push(repo)
        assert str(e.value) == (
            f"credentials for {tr.registry.host} have no push permission on {repo}"
        )
        n = tr.token_requests()
        with pytest.raises(PermissionDenied, match="no push permission"):
            c.upload_blob(repo, sha(b"z"), 1, b"z")
        assert tr.token_requests() - n <= 2
    with tr.client("carol") as c:
        c.check_push(repo)


def test_wrong_password_at_the_token_service(tr: TokenRegistry) -> None:
    with tr.client("carol", "not-Carols-pw") as c, pytest.raises(AuthError) as e:
        c.ping()
    assert "refused the credentials for user carol" in str(e.value)
    assert "not-Carols-pw" not in str(e.value)


def test_anonymous_pull_with_a_token(tr: TokenRegistry) -> None:
    repo = unique("public/")
    with tr.client("admin") as admin:
        admin.upload_blob(repo, sha(b"pub"), 3, b"pub")
    with tr.client() as anon:
        assert anon.blob_exists(repo, sha(b"pub"))
        with pytest.raises(AuthError):
            anon.upload_blob(repo, sha(b"pub2"), 4, b"pub2")


def test_realm_on_another_host_needs_the_allowlist_and_tls() -> None:
    t = TokenRegistry(realm_host="localhost")
    try:
        with t.client("carol") as c, pytest.raises(NetworkPolicyError) as e:
            c.ping()
        assert "FERRY_TOKEN_REALM_HOSTS" in str(e.value)
        allow = settings(FERRY_TOKEN_REALM_HOSTS="localhost")
        with t.client("carol", settings=allow) as c, pytest.raises(AuthError) as e:
            c.ping()
        assert "refusing to send credentials over plain http" in str(e.value)
        assert t.token_requests() == 0  # nothing was sent to the other host
        # Anonymous requests carry no credentials: plain http is fine for them.
        with t.client(settings=allow) as anon:
            assert not anon.blob_exists(unique("public/"), sha(b"q"))
    finally:
        t.stop()


def test_https_realm_on_another_host_is_used_when_allowed() -> None:
    t = TokenRegistry(realm_host="localhost", tls=True)
    try:
        allow = settings(FERRY_TOKEN_REALM_HOSTS="localhost")
        with t.client("carol", settings=allow, verify_tls=str(t.tokens.cert_path)) as c:
            c.ping()
            c.check_push(unique("team/"))
        assert t.token_requests() >= 1
    finally:
        t.stop()


def test_mount_refused_with_401_becomes_a_normal_upload(
    tr: TokenRegistry, tenants: Tenants
) -> None:
    src_repo, hidden, target = unique("src/"), unique("secret/"), unique("team/")
    layer = os.urandom(6000)
    oci.push_image(tenants.src.session(), tenants.src.url, src_repo, "v1", layers=[layer])
    with tr.client("admin") as admin:
        admin.upload_blob(hidden, sha(layer), len(layer), layer)
    coordinator = InProcessCoordinator()
    with tr.client("carol") as dst, tenants.src_client() as src:
        coordinator.remember(dst.key, sha(layer), hidden)  # carol may not read `hidden`
        out = copy_artifact(src, src_repo, "v1", dst, target, "v1", coordinator=coordinator)
    assert out.status == CopyStatus.COPIED, out.reason
    assert (out.blobs_mounted, out.blobs_uploaded) == (0, 2)


def test_errors_never_carry_tokens(tr: TokenRegistry) -> None:
    with tr.client("reader") as c:
        try:
            c.upload_blob(unique("team/"), sha(b"s"), 1, b"s")
        except FerryError as exc:
            assert all(tok not in str(exc) for tok in tr.tokens.issued)
            assert "Bearer" not in str(exc)
