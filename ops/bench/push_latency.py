"""Push-to-target latency: a push to the source registry until the tag answers on the target.

Usage (from the repository root, with PostgreSQL and Redis on 127.0.0.1):

    .venv/bin/python ops/bench/push_latency.py [--pushes 50] [--size-mib 2]

A docker-registry source notifies a real HTTP server running the Ferry API
(its `notifications` endpoint, as in production); a real Celery worker on all
queues copies. Each push is an image with a fresh random layer of --size-mib;
the clock starts when the tag's manifest PUT returns and stops when a HEAD of
the tag on the target answers with the same digest (polled every 5 ms). Pushes
are sequential, so each latency is measured alone.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

from ops.bench import harness  # noqa: E402
from tests.support import oci  # noqa: E402
from tests.support.liveserver import LiveServer  # noqa: E402
from tests.support.registry import RegistryServer  # noqa: E402

MiB = 1024 * 1024


def connect(f: harness.Ferry, src: RegistryServer, dst: RegistryServer, live: LiveServer) -> None:
    """Two instances, a rule from src's ``project`` to dst, and src notifying Ferry's API."""
    created = f.instance("src", src, "alice", "alice-pw")
    dst_id = f.instance("dst", dst, "bob", "bob-pw")["id"]
    f.call(
        "POST",
        "/rules",
        {
            "name": "on-push",
            "source": {"instance_id": created["id"], "namespace": "project"},
            "target": {"instance_id": dst_id},
        },
    )
    src.notify(
        f"{live.url}/api/v1/webhooks/{created['id']}",
        created["webhook_secret"],
        threshold=5,
        backoff="100ms",
    )


def push_and_wait(src: RegistryServer, dst: RegistryServer, pushes: int, size: int) -> list[float]:
    """Seconds from each push's manifest PUT until the tag answers on the target."""
    s_src, s_dst = src.session(), dst.session()
    latencies: list[float] = []
    for i in range(pushes):
        layer = os.urandom(size)
        pushed = oci.push_image(s_src, src.url, "project/app", f"v{i}", layers=[layer])
        start = time.monotonic()
        while True:
            r = s_dst.head(
                f"{dst.url}/v2/project/app/manifests/v{i}",
                headers={"Accept": oci.ACCEPT},
            )
            if r.headers.get("Docker-Content-Digest") == pushed.digest:
                break
            if time.monotonic() - start > 60:
                raise SystemExit(f"push {i} never reached the target")
            time.sleep(0.005)
        latencies.append(time.monotonic() - start)
    return latencies


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--pushes", type=int, default=50)
    parser.add_argument("--size-mib", type=float, default=2)
    parser.add_argument("--concurrency", type=int, default=4)
    args = parser.parse_args()

    src = RegistryServer(users={"alice": "alice-pw"}).start()
    dst = RegistryServer(users={"bob": "bob-pw"}).start()
    try:
        with harness.ferry() as f:
            live = LiveServer(f.app).start()
            connect(f, src, dst, live)
            worker = f.worker(args.concurrency)
            try:
                latencies = push_and_wait(src, dst, args.pushes, int(args.size_mib * MiB))
            finally:
                worker.stop()
                live.stop()
    finally:
        src.cleanup()
        dst.cleanup()

    ordered = sorted(latencies)
    p95 = ordered[max(0, round(0.95 * len(ordered)) - 1)]
    print(
        f"{len(latencies)} pushes of {args.size_mib:g} MiB: "
        f"p50 {statistics.median(ordered):.3f}s, p95 {p95:.3f}s, "
        f"min {ordered[0]:.3f}s, max {ordered[-1]:.3f}s"
    )


if __name__ == "__main__":
    main()
