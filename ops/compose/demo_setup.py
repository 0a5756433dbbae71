"""Registers the demo registries and a rule with Ferry, then enables push notifications.

Run by docker compose (service demo-setup). Idempotent: a second run finds
/shared/demo.json and only prints what it holds.
"""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path

import requests

from common.db import connect
from common.db.tenants import create_tenant
from common.settings import load_settings

SHARED = Path("/shared")
SOURCE, TARGET = "http://registry-source:5000", "http://registry-target:5000"


def wait(url: str, ok: tuple[int, ...] = (200, 401)) -> None:
    for _ in range(120):
        try:
            if requests.get(url, timeout=2).status_code in ok:
                return
        except requests.RequestException:
            pass
        time.sleep(1)
    sys.exit(f"demo-setup: {url} did not answer")


def main() -> None:
    state_path = SHARED / "demo.json"
    if state_path.exists():
        print(f"demo-setup: already done: {state_path.read_text()}")
        return
    settings = load_settings()
    api = settings.client_url or settings.api_url
    wait(f"{api}/readyz", ok=(200,))
    wait(f"{SOURCE}/v2/")
    wait(f"{TARGET}/v2/")
    with connect(settings.require_database_url()) as conn:
        tenant_id, token = create_tenant(conn, "demo")
    s = requests.Session()
    s.headers["Authorization"] = f"Bearer {token}"

    def post(path: str, body: dict) -> dict:
        r = s.post(f"{api}/api/v1{path}", json=body, timeout=30)
        if r.status_code >= 300:
            sys.exit(f"demo-setup: POST {path}: {r.status_code} {r.text}")
        return r.json()

    source = post("/instances", {"name": "source", "url": SOURCE})
    target = post("/instances", {"name": "target", "url": TARGET})
    rule = post(
        "/rules",
        {
            "name": "library-to-mirror",
            "source": {"instance_id": source["id"], "namespace": "library"},
            "target": {"instance_id": target["id"], "namespace": "mirror"},
        },
    )
    config = {
        "version": 0.1,
        "storage": {
            "filesystem": {"rootdirectory": "/var/lib/registry"},
            "delete": {"enabled": True},
        },
        "http": {"addr": ":5000"},
        "notifications": {
            "endpoints": [
                {
                    "name": "ferry",
                    "url": f"http://api:8000/api/v1/webhooks/{source['id']}",
                    "headers": {"Authorization": [f"Bearer {source['webhook_secret']}"]},
                    "timeout": "2s",
                    "threshold": 5,
                    "backoff": "1s",
                }
            ]
        },
    }
    # JSON is YAML; written last so the registry restarts only when all is ready.
    (SHARED / "source-config.yml").write_text(json.dumps(config))
    state = {"tenant_id": str(tenant_id), "token": token, "rule_id": rule["id"]}
    state_path.write_text(json.dumps(state))
    print(f"demo-setup: done. FERRY_URL=http://localhost:8000 FERRY_TOKEN={token}")
    print(
        "demo-setup: push to localhost:5001/library/<name>:<tag>; "
        "it appears on localhost:5002/mirror/<name>:<tag>"
    )


if __name__ == "__main__":
    main()
