"""Fixtures of the console's view tests: accounts, signed-in clients by role, registries."""

from __future__ import annotations

from collections.abc import Callable, Iterator

import pytest

from common.settings import Settings
from tests.support.api import Api, Tenant
from tests.support.console import Account, Console, add_user, make_account
from tests.support.registry import RegistryServer


@pytest.fixture
def account(settings: Settings) -> Account:
    return make_account(settings, "acme")


@pytest.fixture
def signed_in(app, settings: Settings, account: Account) -> Callable[[str], Console]:
    """A console signed in as a new user of ``account`` with the given role (admin: the
    account's own admin)."""

    def make(role: str = "admin") -> Console:
        console = Console(app.test_client())
        if role == "admin":
            password, name = account.admin_password, "admin"
        else:
            name = f"{role}-user"
            password = add_user(settings, account, name, role)
        r = console.sign_in(account, name, password)
        assert r.status_code == 302, r.get_data(as_text=True)
        return console

    return make


@pytest.fixture(scope="module")
def registry_pair() -> Iterator[tuple[RegistryServer, RegistryServer]]:
    """Two registries (``alice``/``alice-pw`` and ``bob``/``bob-pw``) shared by a module."""
    pair = (
        RegistryServer(users={"alice": "alice-pw"}).start(),
        RegistryServer(users={"bob": "bob-pw"}).start(),
    )
    yield pair
    for server in pair:
        server.cleanup()


@pytest.fixture
def acme_api(client, settings: Settings, account: Account) -> Api:
    """The JSON API as the account's admin, to build what a page shows."""
    from common.services import apikeys
    from common.services.users import list_users

    admin = next(u for u in list_users(settings, account.id, limit=10, offset=0)[0])
    key = apikeys.create_key(settings, account.id, admin.id)
    return Api(client, Tenant(account.id, key.token or ""))
