"""Push-to-target latency: a push to the source registry until the tag answers on the target.

Usage (from the repository root, with PostgreSQL and Redis on 127.0.0.1):

    .venv/bin/python ops/bench/push_latency.py [--pushes 50] [--size-mib 2]
        [--timeout 60] [--during-rescan] [--rescan-repos 10] [--rescan-tags 30]
        [--rescan-kib 64]

A docker-registry source notifies the Ferry API served by gunicorn as `ferry up` runs it
(its `notifications` endpoint, as in production); a real Celery worker on all
queues copies. Each push is an image with a fresh random layer of --size-mib;
the clock starts when the tag's manifest PUT returns and stops when a HEAD of
the tag on the target answers with the same digest (polled every 5 ms). Pushes
are sequential, so each latency is measured alone; a push not on the target after
``--timeout`` seconds counts as infinitely late. The time of each push is also
split into stages from the timestamps Ferry stored (event received and
processed, item claimed and finished).

``--during-rescan``: the source also holds namespace ``bulk`` (``--rescan-repos``
repositories of ``--rescan-tags`` tags, each an image with a layer of its own of
``--rescan-kib``), seeded before notifications are on. While the pushes are
measured, a thread keeps syncing ``bulk`` through rules of its own: round N
creates a rule to the fresh target namespace ``mirror-N`` and triggers it twice,
a cold sync (every tag copied) and then a full rescan (every tag up to date).
The rounds' times are printed besides the latencies.

The source notifies Ferry of every event, pulls included (Ferry's own reads of
the source are pulls; Debian's docker-registry 2.8.2 sends them even with the
endpoint's ``ignore: {actions: [pull]}``). Those deliveries count against
FERRY_WEBHOOK_RATE_LIMIT (600/minute); refused ones (429) are retried by the
registry in order and hold back every push behind them, so the count of 429s
in the source's log is printed. Set FERRY_WEBHOOK_RATE_LIMIT in the
environment to run with another limit.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

from common.runtime.supervisor import DEFAULT_CONCURRENCY, DEFAULT_POOL, POOLS  # noqa: E402
from ops.bench import harness  # noqa: E402
from tests.support import oci  # noqa: E402
from tests.support.registry import RegistryServer  # noqa: E402

MiB = 1024 * 1024


def connect(
    f: harness.Ferry, src: RegistryServer, dst: RegistryServer, api_url: str
) -> tuple[str, str]:
    """Two instances, a rule from src's ``project`` to dst, and src notifying Ferry's API;
    the instances' ids."""
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
        f"{api_url}/api/v1/webhooks/{created['id']}",
        created["webhook_secret"],
        threshold=5,
        backoff="100ms",
    )
    return created["id"], dst_id


def push_and_wait(
    src: RegistryServer, dst: RegistryServer, pushes: int, size: int, timeout: float
) -> list[tuple[float, float]]:
    """(epoch of the manifest PUT's answer, seconds until the tag answers on the target) of
    each push; inf seconds for a push not there after ``timeout``."""
    s_src, s_dst = src.session(), dst.session()
    out: list[tuple[float, float]] = []
    for i in range(pushes):
        layer = os.urandom(size)
        pushed = oci.push_image(s_src, src.url, "project/app", f"v{i}", layers=[layer])
        start, wall = time.monotonic(), time.time()
        while True:
            r = s_dst.head(
                f"{dst.url}/v2/project/app/manifests/v{i}",
                headers={"Accept": oci.ACCEPT},
            )
            if r.headers.get("Docker-Content-Digest") == pushed.digest:
                out.append((wall, time.monotonic() - start))
                break
            if time.monotonic() - start > timeout:
                out.append((wall, float("inf")))
                break
            time.sleep(0.005)
    return out


def stages(f: harness.Ferry, pushed: list[tuple[float, float]]) -> None:
    """Where each push's time went, from the rows Ferry wrote (p50 / p95 / max seconds):
    PUT answered → event stored → event turned into a task → copy claimed → copy ended."""
    from common.db import transaction
    from common.domain.vocab import ItemStatus

    with transaction(f.settings) as conn:
        rows = conn.execute(
            """SELECT e.tag, extract(epoch FROM e.received_at) AS stored,
                      extract(epoch FROM e.processed_at) AS dispatched,
                      extract(epoch FROM i.started_at) AS claimed,
                      extract(epoch FROM i.finished_at) AS copied
               FROM webhook_events e JOIN sync_items i ON i.source_tag = e.tag
                    AND i.source_repository = e.repository AND i.status = %s
               WHERE e.repository = 'project/app' AND e.action = 'push'""",
            (ItemStatus.COPIED,),
        ).fetchall()
    by_tag = {r["tag"]: r for r in rows}
    print("where the time went (s): PUT answered → notified (event stored) → dispatched →")
    print("  claimed (copy started) → copied → seen (the target's HEAD answered)")
    names = ("notified", "dispatched", "claimed", "copied", "seen")
    spans: dict[str, list[float]] = {n: [] for n in names}
    for i, (wall, seconds) in enumerate(pushed):
        r = by_tag.get(f"v{i}")
        if r is None or seconds == float("inf"):
            continue
        marks = [wall, *(float(r[k]) for k in ("stored", "dispatched", "claimed", "copied"))]
        for name, a, b in zip(names, marks, [*marks[1:], wall + seconds], strict=True):
            spans[name].append(b - a)
    for name, got in spans.items():
        got.sort()
        if got:
            p95 = got[max(0, round(0.95 * len(got)) - 1)]
            print(f"  {name:10} p50 {statistics.median(got):.3f}  p95 {p95:.3f}  max {got[-1]:.3f}")


def seed_bulk(src: RegistryServer, repos: int, tags: int, kib: int) -> int:
    """Namespace ``bulk``: ``repos`` x ``tags`` images, each with a layer of its own."""

    def one(r: int) -> None:
        s = src.session()
        for t in range(tags):
            layer = os.urandom(kib * 1024)
            oci.push_image(s, src.url, f"bulk/app-{r:02d}", f"v{t}", layers=[layer])

    with ThreadPoolExecutor(8) as pool:
        list(pool.map(one, range(repos)))
    return repos * tags


class Rescans(threading.Thread):
    """Round after round until ``done``: a new rule from ``bulk`` to ``mirror-N``, synced
    cold, then rescanned; (kind, seconds, task) of each sync in ``runs``."""

    def __init__(self, f: harness.Ferry, src_id: str, dst_id: str) -> None:
        super().__init__(daemon=True, name="rescans")
        self.f, self.src_id, self.dst_id = f, src_id, dst_id
        self.done, self.triggered = threading.Event(), threading.Event()
        self.runs: list[tuple[str, float, dict]] = []
        self.error: BaseException | None = None

    def run(self) -> None:
        try:
            for n in range(1_000_000):
                rule = self.f.call(
                    "POST",
                    "/rules",
                    {
                        "name": f"bulk-{n}",
                        "source": {"instance_id": self.src_id, "namespace": "bulk"},
                        "target": {"instance_id": self.dst_id, "namespace": f"mirror-{n}"},
                    },
                )["id"]
                for kind in ("cold", "rescan"):
                    if self.done.is_set():
                        return
                    start = time.monotonic()
                    task_id = self.f.call("POST", f"/rules/{rule}/trigger")["task_id"]
                    self.triggered.set()
                    task = self.f.wait(task_id)
                    self.runs.append((kind, time.monotonic() - start, task))
        except BaseException as exc:  # reported by main
            self.error = exc


def report_rescans(runs: list[tuple[str, float, dict]]) -> None:
    for kind in ("cold", "rescan"):
        times = [s for k, s, _ in runs if k == kind]
        if times:
            tasks = [t for k, _, t in runs if k == kind]
            print(
                f"  {len(times)} {kind} syncs of bulk meanwhile: "
                f"{min(times):.1f}-{max(times):.1f}s each; "
                f"statuses {sorted({t['status'] for t in tasks})}, "
                f"copied {sum(t['copied'] for t in tasks)}, "
                f"up to date {sum(t['up_to_date'] for t in tasks)}"
            )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--pushes", type=int, default=50)
    parser.add_argument("--size-mib", type=float, default=2)
    # `ferry up`'s worker, unless told otherwise.
    parser.add_argument("--concurrency", type=int, default=DEFAULT_CONCURRENCY)
    parser.add_argument("--pool", default=DEFAULT_POOL, choices=POOLS)
    parser.add_argument("--timeout", type=float, default=60, help="per push, seconds")
    parser.add_argument("--during-rescan", action="store_true")
    parser.add_argument("--rescan-repos", type=int, default=10)
    parser.add_argument("--rescan-tags", type=int, default=30)
    parser.add_argument("--rescan-kib", type=int, default=64)
    args = parser.parse_args()

    src = RegistryServer(users={"alice": "alice-pw"}).start()
    dst = RegistryServer(users={"bob": "bob-pw"}).start()
    try:
        if args.during_rescan:
            tags = seed_bulk(src, args.rescan_repos, args.rescan_tags, args.rescan_kib)
            print(f"bulk: {tags} tags of {args.rescan_kib} KiB in {args.rescan_repos} repositories")
        with harness.ferry() as f:
            api, api_url = f.serve_api()
            src_id, dst_id = connect(f, src, dst, api_url)
            worker = f.worker(args.concurrency, args.pool)
            rescans = Rescans(f, src_id, dst_id)
            try:
                if args.during_rescan:
                    rescans.start()
                    rescans.triggered.wait(60)  # measure once the first cold sync is on
                size = int(args.size_mib * MiB)
                pushed = push_and_wait(src, dst, args.pushes, size, args.timeout)
                stages(f, pushed)
            finally:
                rescans.done.set()
                if rescans.is_alive():
                    rescans.join(600)
                worker.stop()
                api.stop()
        # Deliveries the API refused with 429 (FERRY_WEBHOOK_RATE_LIMIT), which the
        # registry retries in order, holding back every later event.
        refused = src.log_path.read_text(errors="replace").count("429 TOO MANY REQUESTS")
    finally:
        src.cleanup()
        dst.cleanup()

    print(f"webhook deliveries refused with 429 (source registry log): {refused}")
    ordered = sorted(seconds for _, seconds in pushed)
    p95 = ordered[max(0, round(0.95 * len(ordered)) - 1)]
    print(
        f"{len(ordered)} pushes of {args.size_mib:g} MiB: "
        f"p50 {statistics.median(ordered):.3f}s, p95 {p95:.3f}s, "
        f"min {ordered[0]:.3f}s, max {ordered[-1]:.3f}s"
        + (" (during full syncs of bulk)" if args.during_rescan else "")
    )
    late = sum(1 for s in ordered if s == float("inf"))
    print(f"pushes not on the target after {args.timeout:g}s: {late}")
    if args.during_rescan:
        report_rescans(rescans.runs)
        if rescans.error is not None:
            raise SystemExit(f"the rescan thread failed: {rescans.error!r}")


if __name__ == "__main__":
    main()
