"""docker-compose.yml: every command is a real entry point, every variable one Ferry reads."""

from __future__ import annotations

import re

import pytest
import yaml
from cryptography.fernet import Fernet

from common.settings import load_settings
from tests.ops.contract import ROOT, assert_ferry_command, assert_known_variables

COMPOSE = yaml.safe_load((ROOT / "docker-compose.yml").read_text())
SERVICES = COMPOSE["services"]
FERRY_SERVICES = {name: svc for name, svc in SERVICES.items() if svc.get("image") == "ferry:local"}


def test_the_stack_has_every_part():
    assert {
        "postgres",
        "redis",
        "api",
        "worker",
        "push-worker",
        "beat",
        "flower",
        "registry-source",
        "registry-target",
    } <= set(SERVICES)
    for name in ("api", "worker", "push-worker", "beat", "flower"):
        assert name in FERRY_SERVICES
    assert SERVICES["registry-source"]["image"].startswith("registry:2")


@pytest.mark.parametrize("name", sorted(FERRY_SERVICES))
def test_ferry_commands_are_real_entry_points(name):
    command = FERRY_SERVICES[name]["command"]
    if command[0] == "ferry":
        assert_ferry_command(command)
    else:
        assert command[0] == "python"
        script = command[1].removeprefix("/app/")
        assert (ROOT / script).is_file(), script


def test_workers_cover_every_queue_with_push_apart():
    def queues(service):
        cmd = SERVICES[service]["command"]
        return set(cmd[cmd.index("--queues") + 1].split(","))

    assert queues("worker") == {"plan", "copy"}
    assert queues("push-worker") == {"push"}


# What an operator sets for the required variables (compose refuses to start without them).
OPERATOR_SETS = {
    "FERRY_SECRET_KEYS": Fernet.generate_key().decode(),
    "FERRY_FLOWER_BASIC_AUTH": "admin:an-operators-password",
}
SECRETS = ("FERRY_SECRET_KEYS", "FERRY_FLOWER_BASIC_AUTH")


def _interpolate(value: str) -> str:
    """Compose's ${VAR:-default} and ${VAR:?error}, with OPERATOR_SETS as the environment."""
    value = re.sub(r"\$\{([A-Z_]+):-([^}]*)\}", r"\2", value)
    return re.sub(r"\$\{([A-Z_]+):\?[^}]*\}", lambda m: OPERATOR_SETS[m.group(1)], value)


@pytest.mark.parametrize("name", sorted(FERRY_SERVICES))
def test_environment_is_what_ferry_reads_and_valid(name):
    env = {k: str(v) for k, v in FERRY_SERVICES[name]["environment"].items()}
    assert_known_variables(env)
    settings = load_settings({k: _interpolate(v) for k, v in env.items()})
    assert not settings.embedded and settings.secret_keys


def test_no_secret_has_a_default_and_compose_says_what_is_missing():
    text = (ROOT / "docker-compose.yml").read_text()
    for name in SECRETS:
        uses = re.findall(r"\$\{" + name + r"(:?[-?])?([^}]*)\}", text)
        assert uses, name
        for op, message in uses:
            # ${VAR:?message}: compose stops with the message when VAR is unset or empty.
            assert op == ":?" and name in message, (name, op, message)
    assert "change-me" not in text


def test_flower_is_published_on_localhost_unless_told_otherwise():
    (port,) = SERVICES["flower"]["ports"]
    assert _interpolate(port) == "127.0.0.1:5555:5555"
    assert SERVICES["flower"]["environment"]["FERRY_FLOWER_BIND"] == "0.0.0.0:5555"  # in-container


def test_registry_entrypoint_scripts_exist():
    for name, svc in SERVICES.items():
        entry = svc.get("entrypoint") or []
        scripts = [e for e in entry if e.startswith("/ferry/")]
        for script in scripts:
            mounts = [v.split(":")[0] for v in svc.get("volumes", []) if ":/ferry" in v]
            assert mounts, name
            assert (ROOT / mounts[0] / script.removeprefix("/ferry/")).is_file(), script


def test_dockerfile_copies_the_packages():
    dockerfile = (ROOT / "ops" / "Dockerfile").read_text()
    for pkg in ("api", "worker", "common", "ops/compose"):
        assert f"COPY {pkg} " in dockerfile
