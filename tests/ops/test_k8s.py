"""ops/k8s: every manifest valid against the Kubernetes schemas (offline), every command a
real ``ferry`` command, every variable one Ferry reads, and the shape the README promises."""

from __future__ import annotations

from typing import Any

import kubernetes_validate
import pytest
import yaml
from cryptography.fernet import Fernet

from common.settings import load_settings
from tests.ops.contract import ROOT, assert_ferry_command, assert_known_variables

K8S = ROOT / "ops" / "k8s"
KUSTOMIZATION = yaml.safe_load((K8S / "kustomization.yaml").read_text())
MANIFESTS = sorted(p for p in K8S.glob("*.yaml") if p.name != "kustomization.yaml")
DOCS: list[tuple[str, dict[str, Any]]] = [
    (path.name, doc)
    for path in MANIFESTS
    for doc in yaml.safe_load_all(path.read_text())
    if doc is not None
]
# The oldest Kubernetes the manifests are written for, and the newest schemas shipped.
VERSIONS = ("1.30.0", kubernetes_validate.latest_version())
UID = 10001


def _kind(kind: str) -> dict[str, dict[str, Any]]:
    return {doc["metadata"]["name"]: doc for _, doc in DOCS if doc["kind"] == kind}


def _pod_specs() -> dict[str, dict[str, Any]]:
    """Each workload's pod spec, by workload name."""
    specs = {name: d["spec"]["template"]["spec"] for name, d in _kind("Deployment").items()}
    specs.update({name: d["spec"]["template"]["spec"] for name, d in _kind("Job").items()})
    return specs


def _containers() -> list[tuple[str, dict[str, Any]]]:
    return [(name, c) for name, spec in _pod_specs().items() for c in spec["containers"]]


@pytest.mark.parametrize("version", VERSIONS)
@pytest.mark.parametrize(("name", "doc"), DOCS, ids=[f"{n}:{d['kind']}" for n, d in DOCS])
def test_manifest_is_valid_kubernetes(name, doc, version):
    try:
        kubernetes_validate.validate(doc, version, strict=True)
    except kubernetes_validate.ValidationError as exc:
        pytest.fail(f"{name}: {exc.message} at {'.'.join(map(str, exc.path))}")


def test_kustomization_lists_every_manifest():
    assert sorted(KUSTOMIZATION["resources"]) == sorted(p.name for p in MANIFESTS)
    assert {doc["metadata"].get("namespace", "ferry") for _, doc in DOCS} == {"ferry"}


def test_every_role_runs():
    deployments = _kind("Deployment")
    assert set(deployments) == {
        "ferry-api",
        "ferry-worker-copy",
        "ferry-worker-push",
        "ferry-beat",
        "ferry-flower",
    }
    commands = {name: c["command"] for name, c in _containers()}
    assert commands["ferry-migrate"] == ["ferry", "db", "upgrade"]
    assert commands["ferry-beat"] == ["ferry", "beat"]

    def queues(name: str) -> set[str]:
        return set(commands[name][commands[name].index("--queues") + 1].split(","))

    assert queues("ferry-worker-copy") == {"plan", "copy"}
    assert queues("ferry-worker-push") == {"push"}


@pytest.mark.parametrize(("name", "container"), _containers(), ids=lambda v: str(v)[:40])
def test_commands_are_real_ferry_commands(name, container):
    assert_ferry_command(container["command"])


def test_variables_are_what_ferry_reads_and_valid():
    (config,) = _kind("ConfigMap").values()
    (secret,) = _kind("Secret").values()
    assert_known_variables(config["data"])
    assert_known_variables(secret["stringData"])
    for _, container in _containers():
        assert_known_variables(e["name"] for e in container.get("env", []))
        refs = sorted((kind, ref[kind]["name"]) for ref in container["envFrom"] for kind in ref)
        assert refs == [("configMapRef", "ferry"), ("secretRef", "ferry")], refs
    # With a real key in place of the placeholder, Ferry accepts the whole environment.
    env = {**config["data"], **secret["stringData"]}
    assert "FERRY_SECRET_KEYS" in env and "FERRY_DATABASE_URL" in env and "FERRY_REDIS_URL" in env
    env["FERRY_SECRET_KEYS"] = Fernet.generate_key().decode()
    settings = load_settings(env)
    assert not settings.embedded and settings.flower_basic_auth


def test_api_probes_service_and_ingress():
    (api,) = _kind("Deployment")["ferry-api"]["spec"]["template"]["spec"]["containers"]
    assert api["readinessProbe"]["httpGet"]["path"] == "/readyz"
    assert api["livenessProbe"]["httpGet"]["path"] == "/healthz"
    port = api["ports"][0]["containerPort"]
    (config,) = _kind("ConfigMap").values()
    assert config["data"]["FERRY_API_BIND"].endswith(f":{port}")
    service = _kind("Service")["ferry-api"]
    (ingress,) = _kind("Ingress").values()
    backends = [
        p["backend"]["service"] for rule in ingress["spec"]["rules"] for p in rule["http"]["paths"]
    ]
    assert {b["name"] for b in backends} == {"ferry-api"}
    assert {b["port"]["name"] for b in backends} <= {p["name"] for p in service["spec"]["ports"]}


def test_beat_is_single_and_never_overlaps():
    beat = _kind("Deployment")["ferry-beat"]["spec"]
    assert beat["replicas"] == 1
    assert beat["strategy"]["type"] == "Recreate"


def test_flower_stays_internal():
    assert _kind("Service")["ferry-flower"]["spec"].get("type", "ClusterIP") == "ClusterIP"
    (policy,) = _kind("NetworkPolicy").values()
    flower_labels = _kind("Deployment")["ferry-flower"]["spec"]["template"]["metadata"]["labels"]
    assert policy["spec"]["podSelector"]["matchLabels"].items() <= flower_labels.items()
    assert policy["spec"]["policyTypes"] == ["Ingress"]
    for rule in policy["spec"]["ingress"]:
        assert all(set(peer) == {"podSelector"} for peer in rule["from"]), rule


def test_hpa_scales_the_copy_workers():
    (hpa,) = _kind("HorizontalPodAutoscaler").values()
    assert hpa["spec"]["scaleTargetRef"]["name"] == "ferry-worker-copy"
    assert 1 <= hpa["spec"]["minReplicas"] <= hpa["spec"]["maxReplicas"]


@pytest.mark.parametrize("name", sorted(_pod_specs()))
def test_pods_run_as_the_image_user_with_resources(name):
    spec = _pod_specs()[name]
    ctx = spec["securityContext"]
    assert (ctx["runAsNonRoot"], ctx["runAsUser"], ctx["fsGroup"]) == (True, UID, UID)
    dockerfile = (ROOT / "ops" / "Dockerfile").read_text()
    assert f"--uid {UID}" in dockerfile and f"USER {UID}" in dockerfile
    for container in spec["containers"]:
        resources = container["resources"]
        assert {"cpu", "memory"} <= set(resources["requests"]), name
        assert "memory" in resources["limits"], name


def test_manifests_hold_no_real_secret():
    (secret,) = _kind("Secret").values()
    for key, value in secret["stringData"].items():
        assert "REPLACE-ME" in value, key


def test_readme_points_here():
    readme = (ROOT / "README.md").read_text()
    assert "## Running on Kubernetes" in readme
    assert "ops/k8s" in readme
