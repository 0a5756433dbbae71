"""Pushes test artifacts to a registry with its own HTTP API (no Ferry code)."""

from __future__ import annotations

import hashlib
import json
import os
from dataclasses import dataclass

import requests

OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
OCI_INDEX = "application/vnd.oci.image.index.v1+json"
OCI_CONFIG = "application/vnd.oci.image.config.v1+json"
OCI_LAYER = "application/vnd.oci.image.layer.v1.tar+gzip"
DOCKER_MANIFEST = "application/vnd.docker.distribution.manifest.v2+json"
DOCKER_LIST = "application/vnd.docker.distribution.manifest.list.v2+json"
DOCKER_CONFIG = "application/vnd.docker.container.image.v1+json"
DOCKER_LAYER = "application/vnd.docker.image.rootfs.diff.tar.gzip"
HELM_CONFIG = "application/vnd.cncf.helm.config.v1+json"
HELM_CHART = "application/vnd.cncf.helm.chart.content.v1.tar+gzip"
ACCEPT = ", ".join([OCI_INDEX, DOCKER_LIST, OCI_MANIFEST, DOCKER_MANIFEST])


def sha256(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


@dataclass
class Pushed:
    digest: str
    media_type: str
    body: bytes


def push_blob(s: requests.Session, base: str, repo: str, data: bytes) -> str:
    digest = sha256(data)
    if s.head(f"{base}/v2/{repo}/blobs/{digest}").status_code == 200:
        return digest
    r = s.post(f"{base}/v2/{repo}/blobs/uploads/")
    r.raise_for_status()
    loc = r.headers["Location"]
    if loc.startswith("/"):
        loc = base + loc
    sep = "&" if "?" in loc else "?"
    r = s.put(
        f"{loc}{sep}digest={digest}",
        data=data,
        headers={"Content-Type": "application/octet-stream"},
    )
    r.raise_for_status()
    return digest


def push_manifest(
    s: requests.Session, base: str, repo: str, ref: str, body: bytes, media_type: str
) -> Pushed:
    r = s.put(f"{base}/v2/{repo}/manifests/{ref}", data=body, headers={"Content-Type": media_type})
    r.raise_for_status()
    return Pushed(sha256(body), media_type, body)


def push_image(
    s: requests.Session,
    base: str,
    repo: str,
    tag: str | None,
    *,
    layers: list[bytes] | None = None,
    oci: bool = True,
    config: dict | None = None,
) -> Pushed:
    """An image manifest (OCI or Docker schema2) with the given layers."""
    layers = layers if layers is not None else [os.urandom(1024)]
    cfg = json.dumps(
        config
        or {"architecture": "amd64", "os": "linux", "rootfs": {"type": "layers", "diff_ids": []}}
    ).encode()
    layer_type, config_type, mtype = (
        (OCI_LAYER, OCI_CONFIG, OCI_MANIFEST)
        if oci
        else (DOCKER_LAYER, DOCKER_CONFIG, DOCKER_MANIFEST)
    )
    manifest = {
        "schemaVersion": 2,
        "mediaType": mtype,
        "config": {
            "mediaType": config_type,
            "digest": push_blob(s, base, repo, cfg),
            "size": len(cfg),
        },
        "layers": [
            {"mediaType": layer_type, "digest": push_blob(s, base, repo, layer), "size": len(layer)}
            for layer in layers
        ],
    }
    body = json.dumps(manifest, indent=3).encode()  # unusual formatting: bytes must survive
    return push_manifest(s, base, repo, tag or sha256(body), body, mtype)


def push_index(
    s: requests.Session,
    base: str,
    repo: str,
    tag: str,
    *,
    platforms: tuple[str, ...] = ("amd64", "arm64"),
    oci: bool = True,
    layer_sizes: tuple[int, ...] = (2048,),
) -> Pushed:
    """A multi-arch index (OCI index or Docker manifest list) with one child per platform,
    each child an image of random layers of ``layer_sizes`` bytes."""
    children = []
    for arch in platforms:
        child = push_image(
            s,
            base,
            repo,
            None,
            oci=oci,
            layers=[os.urandom(n) for n in layer_sizes],
            config={
                "architecture": arch,
                "os": "linux",
                "rootfs": {"type": "layers", "diff_ids": []},
            },
        )
        children.append(
            {
                "mediaType": child.media_type,
                "digest": child.digest,
                "size": len(child.body),
                "platform": {"architecture": arch, "os": "linux"},
            }
        )
    mtype = OCI_INDEX if oci else DOCKER_LIST
    body = json.dumps({"schemaVersion": 2, "mediaType": mtype, "manifests": children}).encode()
    return push_manifest(s, base, repo, tag, body, mtype)


def push_chart(s: requests.Session, base: str, repo: str, tag: str) -> Pushed:
    """A Helm chart as an OCI artifact (config media type = Helm config)."""
    cfg = json.dumps({"name": repo.rsplit("/", 1)[-1], "version": tag, "apiVersion": "v2"}).encode()
    chart = os.urandom(4096)
    manifest = {
        "schemaVersion": 2,
        "config": {
            "mediaType": HELM_CONFIG,
            "digest": push_blob(s, base, repo, cfg),
            "size": len(cfg),
        },
        "layers": [
            {"mediaType": HELM_CHART, "digest": push_blob(s, base, repo, chart), "size": len(chart)}
        ],
    }
    body = json.dumps(manifest).encode()
    return push_manifest(s, base, repo, tag, body, OCI_MANIFEST)


def get_manifest(s: requests.Session, base: str, repo: str, ref: str) -> Pushed | None:
    """Independent read of a manifest: its bytes, media type and sha256 of the bytes."""
    r = s.get(f"{base}/v2/{repo}/manifests/{ref}", headers={"Accept": ACCEPT})
    if r.status_code == 404:
        return None
    r.raise_for_status()
    return Pushed(sha256(r.content), r.headers.get("Content-Type", ""), r.content)


OCI_EMPTY = "application/vnd.oci.empty.v1+json"


def push_referrer(
    s: requests.Session,
    base: str,
    repo: str,
    subject: Pushed,
    artifact_type: str,
    payload: bytes | None = None,
) -> Pushed:
    """An OCI 1.1 artifact whose ``subject`` is ``subject`` (a signature, an SBOM),
    pushed by digest as ORAS and cosign 2 do."""
    payload = payload if payload is not None else os.urandom(256)
    manifest = {
        "schemaVersion": 2,
        "mediaType": OCI_MANIFEST,
        "artifactType": artifact_type,
        "config": {"mediaType": OCI_EMPTY, "digest": push_blob(s, base, repo, b"{}"), "size": 2},
        "layers": [
            {
                "mediaType": "application/octet-stream",
                "digest": push_blob(s, base, repo, payload),
                "size": len(payload),
            }
        ],
        "subject": {
            "mediaType": subject.media_type,
            "digest": subject.digest,
            "size": len(subject.body),
        },
        "annotations": {"org.opencontainers.image.created": "2026-11-29T10:00:00Z"},
    }
    body = json.dumps(manifest).encode()
    return push_manifest(s, base, repo, sha256(body), body, OCI_MANIFEST)


def push_fallback_index(
    s: requests.Session, base: str, repo: str, subject_digest: str, entries: list[Pushed]
) -> Pushed:
    """The referrers tag schema's index ``sha256-<hex>`` listing ``entries``, as a client
    pushing referrers to a registry without the referrers API maintains it."""
    manifests = []
    for e in entries:
        doc = json.loads(e.body)
        manifests.append(
            {
                "mediaType": e.media_type,
                "digest": e.digest,
                "size": len(e.body),
                "artifactType": doc.get("artifactType"),
            }
        )
    body = json.dumps({"schemaVersion": 2, "mediaType": OCI_INDEX, "manifests": manifests}).encode()
    tag = subject_digest.replace(":", "-", 1)
    return push_manifest(s, base, repo, tag, body, OCI_INDEX)


def push_cosign(
    s: requests.Session, base: str, repo: str, subject_digest: str, suffix: str = "sig"
) -> Pushed:
    """A cosign-style signature (``.sig``), attestation (``.att``) or SBOM (``.sbom``) at
    the tag cosign derives from the subject's digest (``sha256-<hex>.<suffix>``)."""
    layer_type = {
        "sig": "application/vnd.dev.cosign.simplesigning.v1+json",
        "att": "application/vnd.dsse.envelope.v1+json",
        "sbom": "text/spdx+json",
    }[suffix]
    payload = json.dumps(
        {"critical": {"image": {"docker-manifest-digest": subject_digest}}, "optional": None}
    ).encode()
    cfg = json.dumps({"architecture": "", "os": "", "rootfs": {"type": "layers"}}).encode()
    manifest = {
        "schemaVersion": 2,
        "mediaType": OCI_MANIFEST,
        "config": {
            "mediaType": OCI_CONFIG,
            "digest": push_blob(s, base, repo, cfg),
            "size": len(cfg),
        },
        "layers": [
            {
                "mediaType": layer_type,
                "digest": push_blob(s, base, repo, payload),
                "size": len(payload),
                "annotations": {"dev.cosignproject.cosign/signature": "MEUCIQ=="},
            }
        ],
    }
    body = json.dumps(manifest).encode()
    tag = subject_digest.replace(":", "-", 1) + "." + suffix
    return push_manifest(s, base, repo, tag, body, OCI_MANIFEST)
