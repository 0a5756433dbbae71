"""``ferry copy SRC DST`` through click's runner and once as a real subprocess."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from click.testing import CliRunner

from common.cli.copy import copy_command, parse_reference
from common.settings import get_settings
from tests.support import oci
from tests.support.copyenv import Tenants, secret, unique

pytestmark = pytest.mark.usefixtures("no_secret_logs")
ROOT = Path(__file__).resolve().parents[2]
SRC_CREDS = "alice:alice-Secr3t-pw"
DST_CREDS = "bob:bob-Secr3t-pw"


@pytest.fixture(autouse=True)
def fresh_settings(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """Each test reads the environment it sets (settings are cached per process)."""
    for name in ("FERRY_SRC_CREDS", "FERRY_DST_CREDS", "FERRY_TOKEN_REALM_HOSTS"):
        monkeypatch.delenv(name, raising=False)
    get_settings.cache_clear()
    yield
    get_settings.cache_clear()


def run(*args: str, env: dict[str, str] | None = None):
    return CliRunner().invoke(copy_command, list(args), env=env, catch_exceptions=False)


def same_tag(tenants: Tenants, repo: str, dst_creds: str = DST_CREDS) -> list[str]:
    """Arguments copying ``repo:v1`` from the source registry to the target, over plain HTTP."""
    return [
        f"{tenants.src.host}/{repo}:v1",
        f"{tenants.dst.host}/{repo}:v1",
        "--plain-http",
        "--src-creds",
        SRC_CREDS,
        "--dst-creds",
        dst_creds,
    ]


@pytest.mark.parametrize(
    ("text", "plain", "expected"),
    [
        ("reg.example/a/b:1", False, ("https://reg.example", "a/b", "1", None)),
        ("reg.example:5000/a/b/c", False, ("https://reg.example:5000", "a/b/c", None, None)),
        ("http://127.0.0.1:5000/x:v", False, ("http://127.0.0.1:5000", "x", "v", None)),
        ("reg.example/x:v", True, ("http://reg.example", "x", "v", None)),
        (
            "https://reg.example/x@sha256:" + "a" * 64,
            True,
            ("https://reg.example", "x", None, "sha256:" + "a" * 64),
        ),
        ("docker://reg.example/x", False, ("https://reg.example", "x", None, None)),
    ],
)
def test_parse_reference(text: str, plain: bool, expected: tuple) -> None:
    ref = parse_reference(text, plain_http=plain)
    assert (ref.url, ref.repository, ref.tag, ref.digest) == expected


@pytest.mark.parametrize("bad", ["noslash", "reg/UPPER", "reg/a:bad tag", "reg/x@sha256:12"])
def test_bad_references_are_usage_errors(bad: str) -> None:
    result = run(bad, "reg.example/x:1")
    assert result.exit_code == 2 and "Traceback" not in result.output


def test_copy_prints_the_outcome_and_second_run_is_up_to_date(tenants: Tenants) -> None:
    repo = unique("cli/")
    pushed = oci.push_index(tenants.src.session(), tenants.src.url, repo, "v1")
    src, dst = f"{tenants.src.host}/{repo}:v1", f"{tenants.dst.host}/{repo}/copy"
    result = run(src, dst, "--plain-http", "--src-creds", SRC_CREDS, "--dst-creds", DST_CREDS)
    assert result.exit_code == 0, result.output
    assert result.output.startswith(f"copied {src} -> {tenants.dst.host}/{repo}/copy:v1")
    assert pushed.digest in result.output and "(index)" in result.output
    got = oci.get_manifest(tenants.dst.session(), tenants.dst.url, f"{repo}/copy", "v1")
    assert got is not None and got.digest == pushed.digest

    again = run(
        src,
        dst + ":v1",
        "--plain-http",
        "--json",
        "--src-creds",
        SRC_CREDS,
        "--dst-creds",
        DST_CREDS,
    )
    assert again.exit_code == 0
    out = json.loads(again.output)
    assert out["status"] == "up-to-date" and out["bytes_transferred"] == 0


def test_credentials_from_the_environment_and_http_prefix(tenants: Tenants) -> None:
    repo = unique("env/")
    oci.push_image(tenants.src.session(), tenants.src.url, repo, "v1")
    env = {"FERRY_SRC_CREDS": SRC_CREDS, "FERRY_DST_CREDS": DST_CREDS}
    result = run(
        f"http://{tenants.src.host}/{repo}:v1",
        f"http://{tenants.dst.host}/{repo}:v1",
        "--progress",
        env=env,
    )
    assert result.exit_code == 0, result.output
    assert "copied" in result.output and "blobs" in result.output


def test_kept_and_override(tenants: Tenants) -> None:
    repo = unique("ov/")
    oci.push_image(tenants.src.session(), tenants.src.url, repo, "v1")
    oci.push_image(tenants.dst.session(), tenants.dst.url, repo, "v1")
    args = same_tag(tenants, repo)
    kept = run(*args)
    assert kept.exit_code == 0 and kept.output.startswith("kept") and "override" in kept.output
    replaced = run(*args, "--override")
    assert replaced.exit_code == 0 and replaced.output.startswith("copied")


def test_failure_prints_the_reason_without_traceback(tenants: Tenants) -> None:
    repo = unique("bad/")
    oci.push_image(tenants.src.session(), tenants.src.url, repo, "v1")
    wrong = secret("bob:Wr0ng-cli-pw")
    result = run(*same_tag(tenants, repo, dst_creds=wrong))
    assert result.exit_code == 1
    assert (
        f"error: target: {tenants.dst.host} refused the credentials for user bob" in result.output
    )
    assert "Traceback" not in result.output and "Wr0ng-cli-pw" not in result.output


def test_malformed_credentials_are_a_usage_error() -> None:
    result = run("reg.example/x:1", "reg.example/y:1", "--src-creds", "no-colon")
    assert result.exit_code == 2 and "USER:PASSWORD" in result.output


def test_unreachable_registry_is_an_error_not_a_traceback() -> None:
    result = run("127.0.0.1:9/x:1", "127.0.0.1:9/y:1", "--plain-http", "--retries", "2")
    assert result.exit_code == 1 and result.output.startswith("error: source: 127.0.0.1:9")


def test_network_policy_refusal_is_an_error() -> None:
    result = run("169.254.169.254/x:1", "127.0.0.1:9/y:1", "--plain-http")
    assert result.exit_code == 1 and "link-local" in result.output


def test_as_a_subprocess(tenants: Tenants) -> None:
    repo = unique("sub/")
    pushed = oci.push_chart(tenants.src.session(), tenants.src.url, repo, "0.1.0")
    env = {
        **os.environ,
        "FERRY_SRC_CREDS": SRC_CREDS,
        "FERRY_DST_CREDS": DST_CREDS,
        "PYTHONPATH": str(ROOT),
    }
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "common.cli.copy",
            f"{tenants.src.host}/{repo}:0.1.0",
            f"{tenants.dst.host}/{repo}",
            "--plain-http",
            "--json",
        ],
        capture_output=True,
        text=True,
        env=env,
        cwd=ROOT,
        timeout=60,
    )
    assert proc.returncode == 0, proc.stderr
    out = json.loads(proc.stdout)
    assert out["status"] == "copied" and out["kind"] == "chart"
    assert out["digest"] == pushed.digest
    bad = subprocess.run(
        [
            sys.executable,
            "-m",
            "common.cli.copy",
            f"{tenants.src.host}/{repo}:nope",
            f"{tenants.dst.host}/{repo}",
            "--plain-http",
        ],
        capture_output=True,
        text=True,
        env=env,
        cwd=ROOT,
        timeout=60,
    )
    assert bad.returncode == 1 and bad.stderr.startswith("error: source: ")
    assert "Traceback" not in bad.stderr
