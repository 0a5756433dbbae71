"""docker-compose.yml: every command is a real entry point, every variable one Ferry reads."""

from __future__ import annotations

import re

import pytest
import yaml

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


@pytest.mark.parametrize("name", sorted(FERRY_SERVICES))
def test_environment_is_what_ferry_reads_and_valid(name):
    env = {k: str(v) for k, v in FERRY_SERVICES[name]["environment"].items()}
    assert_known_variables(env)
    # Interpolate defaults the way compose does, then let Ferry parse it all.
    resolved = {k: re.sub(r"\$\{[A-Z_]+:-([^}]*)\}", r"\1", v) for k, v in env.items()}
    settings = load_settings(resolved)
    assert not settings.embedded and settings.secret_keys


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
