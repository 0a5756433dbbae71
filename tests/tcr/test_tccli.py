"""The real ``tccli tcr ...`` against ``ferry api`` serving HTTPS (FERRY_API_TLS_CERT/_KEY).

tccli always speaks HTTPS; its credentials come from the environment and its
configuration lives in a temporary HOME. The test's own CA goes in
REQUESTS_CA_BUNDLE, but the SDK under tccli hands ``certifi.where()`` to requests
itself, so requests never reads that variable: a two-line ``certifi`` on
PYTHONPATH returns it instead, as Debian's certifi returns the system's bundle.
tccli, the SDK and requests run unchanged.
"""

from __future__ import annotations

import json
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import requests

from common.settings import Settings, child_environment
from tests.support.registry import free_port
from tests.support.roles import RoleProcess
from tests.support.tls import ServerTls, make_server_tls
from tests.tcr.conftest import SecretPair, admin_id, secret_pair

pytestmark = pytest.mark.slow
TCCLI = str(Path(sys.executable).with_name("tccli"))


def _https_ready(url: str, ca: Path):
    def check(_: RoleProcess) -> bool:
        try:
            return requests.get(url, timeout=2, verify=str(ca)).status_code == 200
        except requests.RequestException:
            return False

    return check


@pytest.fixture
def tls(tmp_path: Path) -> ServerTls:
    return make_server_tls(tmp_path)


@pytest.fixture
def https_api(settings: Settings, tls: ServerTls) -> Iterator[str]:
    """``ferry api`` (gunicorn) serving HTTPS on a free port; its host:port."""
    host = f"127.0.0.1:{free_port()}"
    env = {
        **child_environment(settings),
        "FERRY_API_BIND": host,
        "FERRY_API_TLS_CERT": str(tls.cert),
        "FERRY_API_TLS_KEY": str(tls.key),
    }
    api = RoleProcess("api-tls", ["api"], env, _https_ready(f"https://{host}/healthz", tls.ca))
    api.start()
    try:
        api.wait_ready(time.monotonic() + 60)
        yield host
    finally:
        api.stop()


CERTIFI_FROM_ENV = """import os


def where():
    return os.environ["REQUESTS_CA_BUNDLE"]


def contents():
    with open(where()) as f:
        return f.read()
"""


def tccli(host: str, pair: SecretPair, home: Path, ca: Path, action: str, **params) -> dict:
    """``tccli tcr ACTION --Param value ... --endpoint HOST`` as a process; its JSON answer."""
    shim = home / "pythonpath" / "certifi"
    if not shim.exists():
        shim.mkdir(parents=True)
        (shim / "__init__.py").write_text(CERTIFI_FROM_ENV)
    env = {
        "PATH": str(Path(sys.executable).parent) + ":/usr/bin:/bin",
        "HOME": str(home),
        "PYTHONPATH": str(shim.parent),
        "TENCENTCLOUD_SECRET_ID": pair.secret_id,
        "TENCENTCLOUD_SECRET_KEY": pair.secret_key,
        "TENCENTCLOUD_REGION": "ap-guangzhou",
        "REQUESTS_CA_BUNDLE": str(ca),
    }
    argv = [TCCLI, "tcr", action, "--endpoint", host]
    for name, value in params.items():
        argv += [f"--{name}", value if isinstance(value, str) else json.dumps(value)]
    done = subprocess.run(argv, env=env, capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, (done.returncode, done.stdout, done.stderr)
    return json.loads(done.stdout)


def test_tccli_creates_describes_and_deletes_over_https(
    https_api, tls, settings, tmp_path, registry
):
    from tests.support.api import Api, make_tenant
    from tests.support.liveserver import HttpClient

    # The JSON API over the same HTTPS listener, checked against the same CA.
    client = HttpClient(f"https://{https_api}", verify=str(tls.ca))
    acme = Api(client, make_tenant(settings, "acme"))
    pair = secret_pair(acme, admin_id(acme))
    src_id, dst_id = acme.instance("src", registry), acme.instance("dst", registry)
    home = tmp_path / "home"
    home.mkdir()

    def run(action: str, **params) -> dict:
        return tccli(https_api, pair, home, tls.ca, action, **params)

    run(
        "ManageReplication",
        SourceRegistryId=src_id,
        DestinationRegistryId=dst_id,
        Rule={"Name": "cli-rule", "DestNamespace": "mirror", "Override": True,
              "Filters": [{"Type": "name", "Value": "project/app*"}]},
    )  # fmt: skip
    listed = run("DescribeReplicationPolicies", RegistryId=src_id)
    assert listed["TotalCount"] == 1
    [policy] = listed["ReplicationPolicyInfoList"]
    assert (policy["Name"], policy["Override"]) == ("cli-rule", True)
    assert policy["Filters"] == [{"Type": "name", "Value": "project/app*"}]
    assert acme.get("/rules")[0]["number"] == policy["ID"]

    deleted = run("DeleteReplicationRule", SourceRegistryId=src_id, RuleName="cli-rule")
    assert deleted["RequestId"] != listed["RequestId"]
    assert acme.get("/rules") == []
