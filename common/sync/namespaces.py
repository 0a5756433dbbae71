"""Target namespaces that must exist before a push: Harbor projects.

Plain Distribution creates repositories on first push; Harbor refuses a push
into a project that does not exist, so Ferry creates it (private) first.
"""

from __future__ import annotations

import base64
import json
import threading

from common.domain.vocab import InstanceKind
from common.errors import PermissionDenied, RegistryError
from common.registry import RegistryClient

_known: set[tuple[str, str]] = set()
_lock = threading.Lock()


def ensure_namespace(
    kind: str, client: RegistryClient, namespace: str, username: str | None, password: str | None
) -> None:
    """Make sure ``namespace`` exists on the target where its kind needs it (Harbor)."""
    if kind != InstanceKind.HARBOR:
        return
    key = (client.key, namespace)
    with _lock:
        if key in _known:
            return
    headers = {"Content-Type": "application/json", "Accept": "application/json"}
    if username is not None:
        pair = f"{username}:{password or ''}".encode()
        headers["Authorization"] = "Basic " + base64.b64encode(pair).decode()
    body = json.dumps({"project_name": namespace, "metadata": {"public": "false"}}).encode()
    resp = client.request(
        "POST", "/api/v2.0/projects", headers=headers, data=body, authenticate=False
    )
    resp.close()
    if resp.status_code in (201, 409):  # created, or already there
        with _lock:
            _known.add(key)
        return
    if resp.status_code in (401, 403):
        raise PermissionDenied(
            f"{client.display}: cannot create Harbor project {namespace!r} "
            f"({resp.status_code}); create it or give the account the right"
        )
    raise RegistryError(
        f"{client.display}: creating Harbor project {namespace!r} answered {resp.status_code}"
    )
