"""A registry front that adds only the OCI 1.1 referrers API to a real docker-registry.

Every request is forwarded to the registry (docker-registry 2.8 has no referrers
API) except ``GET /v2/<name>/referrers/<digest>``, which the front answers itself
from the registry's own storage: every manifest revision of the repository whose
``subject`` is that digest, as an OCI image index of descriptors, honouring the
``artifactType`` filter (and saying so in ``OCI-Filters-Applied``).
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from pathlib import Path
from typing import ClassVar
from urllib.parse import parse_qs, urlsplit

from tests.support.faultproxy import FaultProxy, ProxyHandler
from tests.support.servers import QuietHandler

OCI_INDEX = "application/vnd.oci.image.index.v1+json"
_REFERRERS = re.compile(r"^/v2/(?P<name>.+)/referrers/(?P<digest>sha256:[0-9a-f]{64})$")


def referrers_in_storage(storage: Path, name: str, digest: str) -> list[dict]:
    """Descriptors of the manifests in ``name`` (a docker-registry's filesystem storage)
    whose subject is ``digest``."""
    v2 = storage / "docker" / "registry" / "v2"
    revisions = v2 / "repositories" / name / "_manifests" / "revisions" / "sha256"
    found = []
    for link in sorted(revisions.glob("*/link")) if revisions.is_dir() else []:
        rev = link.read_text().strip()
        hex_part = rev.split(":", 1)[1]
        data = (v2 / "blobs" / "sha256" / hex_part[:2] / hex_part / "data").read_bytes()
        try:
            doc = json.loads(data)
        except ValueError:
            continue
        subject = doc.get("subject") if isinstance(doc, dict) else None
        if not isinstance(subject, dict) or subject.get("digest") != digest:
            continue
        config = doc.get("config") if isinstance(doc.get("config"), dict) else {}
        entry = {"mediaType": doc.get("mediaType"), "digest": rev, "size": len(data)}
        artifact_type = doc.get("artifactType") or config.get("mediaType")
        if artifact_type:
            entry["artifactType"] = artifact_type
        if doc.get("annotations"):
            entry["annotations"] = doc["annotations"]
        found.append(entry)
    return found


class ReferrersHandler(ProxyHandler):
    def _handle(self) -> None:
        parts = urlsplit(self.path)
        found = _REFERRERS.match(parts.path)
        if self.command != "GET" or found is None:
            super()._handle()
            return
        self.owner.record(self.command, self.path, "referrers")
        entries = referrers_in_storage(self.owner.storage, found["name"], found["digest"])
        wanted = parse_qs(parts.query).get("artifactType", [None])[0]
        headers = [("Content-Type", OCI_INDEX)]
        if wanted:
            entries = [e for e in entries if e.get("artifactType") == wanted]
            headers.append(("OCI-Filters-Applied", "artifactType"))
        body = {"schemaVersion": 2, "mediaType": OCI_INDEX, "manifests": entries}
        self._reply(200, headers, json.dumps(body).encode())

    do_GET = do_HEAD = do_PUT = do_POST = do_PATCH = do_DELETE = _handle


@dataclass
class ReferrersFront(FaultProxy):
    """The front of a running :class:`RegistryServer` (``upstream`` its host, ``storage``
    its storage directory); :meth:`start` it, then point clients at ``url``."""

    storage: Path = Path()

    handler: ClassVar[type[QuietHandler]] = ReferrersHandler
