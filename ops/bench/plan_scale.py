"""Plan time of one rule selecting 20,000 tags, and the API's latency meanwhile.

Usage (from the repository root, with PostgreSQL and Redis on 127.0.0.1):

    .venv/bin/python ops/bench/plan_scale.py [--repos 20] [--tags 1000]
        [--concurrency N] [--pool threads|prefork]

Data set: ``--repos`` repositories under namespace ``scale`` with ``--tags`` tags
each, written straight into a docker-registry's filesystem storage (HTTP pushes
of 20,000 tags take too long): every tag has a manifest of its own (an
annotation differs), all share one config and one 512-byte layer. A GET of a
seeded tag checks the registry serves it. Two targets: one empty, one seeded
with the same files (so its tags are up to date).

Two tasks, each a manual trigger of its own rule through the API, planned by a
real Celery worker (``ferry up``'s defaults: prefork, 4 processes):
- no-op: the rule to the seeded target; every item is planned up to date;
- cold: the rule to the empty target; every item is planned pending. Once its
  plan ended the task is stopped (its 20,000 copies are not this benchmark).

Plan time: from the trigger's answer until the task's ``listed_at`` is set
(``common.db.tasks.record_listed``: every item is written and the plan step
ends), polled in PostgreSQL every 50 ms; items written per second are sampled
every 10 s. API latency: a thread GETs /api/v1/rules, /api/v1/instances, the
rule's tasks and the task through gunicorn (as ``ferry up`` runs it: 2 workers,
4 threads) in a loop, idle first (5 s) and then during each plan; p50/p99/max.

CPU seconds per component (registries, worker, API, PostgreSQL, Redis) are
printed for each plan. Last, the floor: the same GETs and HEADs a plan sends,
16 at a time, with no Ferry (and the registries' CPU meanwhile).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from itertools import pairwise
from pathlib import Path

import requests

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

from common.runtime.supervisor import DEFAULT_CONCURRENCY, DEFAULT_POOL, POOLS  # noqa: E402
from ops.bench import harness, procstat  # noqa: E402
from tests.support import oci  # noqa: E402
from tests.support.registry import RegistryServer  # noqa: E402


def _write(path: Path, data: bytes) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)


def seed_storage(roots: list[Path], repos: int, tags: int) -> str:
    """Write the data set into each Distribution storage root; a seeded tag's digest."""
    config = json.dumps({"architecture": "amd64", "os": "linux", "rootfs": {}}).encode()
    layer = os.urandom(512)
    blobs = {oci.sha256(config): config, oci.sha256(layer): layer}
    manifests: dict[str, list[tuple[str, str]]] = {}  # repository -> (tag, digest)
    cfg_ref = {"mediaType": oci.OCI_CONFIG, "digest": oci.sha256(config), "size": len(config)}
    layer_ref = {"mediaType": oci.OCI_LAYER, "digest": oci.sha256(layer), "size": len(layer)}
    for r in range(repos):
        repo = f"scale/app-{r:03d}"
        for t in range(tags):
            doc = {"schemaVersion": 2, "mediaType": oci.OCI_MANIFEST, "config": cfg_ref}
            doc |= {"layers": [layer_ref], "annotations": {"bench": f"{repo}:{t}"}}
            body = json.dumps(doc).encode()
            blobs[oci.sha256(body)] = body
            manifests.setdefault(repo, []).append((f"v{t}", oci.sha256(body)))
    for root in roots:
        v2 = root / "docker/registry/v2"
        for digest, data in blobs.items():
            _write(v2 / f"blobs/sha256/{digest[7:9]}/{digest[7:]}/data", data)
        for repo, tagged in manifests.items():
            top = v2 / "repositories" / repo
            for digest in (oci.sha256(config), oci.sha256(layer)):
                _write(top / f"_layers/sha256/{digest[7:]}/link", digest.encode())
            for tag, digest in tagged:
                link = digest.encode()
                _write(top / f"_manifests/revisions/sha256/{digest[7:]}/link", link)
                _write(top / f"_manifests/tags/{tag}/current/link", link)
                _write(top / f"_manifests/tags/{tag}/index/sha256/{digest[7:]}/link", link)
    return manifests["scale/app-000"][-1][1]


class ApiProbe(threading.Thread):
    """GETs a few endpoints in a loop; latencies (seconds) per phase name in ``seen``."""

    def __init__(self, url: str, token: str, paths: list[str]) -> None:
        super().__init__(daemon=True, name="api-probe")
        self.url, self.paths = url, paths
        self.session = requests.Session()
        self.session.headers["Authorization"] = f"Bearer {token}"
        self.phase: str | None = None
        self.seen: dict[str, list[float]] = {}
        self.done = threading.Event()
        self.errors = 0

    def run(self) -> None:
        while not self.done.is_set():
            for path in self.paths:
                phase, start = self.phase, time.monotonic()
                r = self.session.get(f"{self.url}/api/v1{path}", timeout=30)
                if phase is None:
                    continue
                if r.status_code != 200:
                    self.errors += 1
                else:
                    self.seen.setdefault(phase, []).append(time.monotonic() - start)

    def summary(self, phase: str) -> str:
        got = sorted(self.seen.get(phase, []))
        if not got:
            return "no requests"
        p50, p99 = (got[min(len(got) - 1, int(q * len(got)))] * 1000 for q in (0.5, 0.99))
        return f"{len(got)} GETs: p50 {p50:.0f} ms, p99 {p99:.0f} ms, max {got[-1] * 1000:.0f} ms"


def _listed(f: harness.Ferry, task_id: str, count: bool) -> tuple[bool, int]:
    """Whether the task's plan ended, and (when ``count``) how many items it has now."""
    from common.db import transaction
    from common.domain.vocab import OPEN_TASK_STATUSES

    n = "(SELECT count(*) FROM sync_items i WHERE i.task_id = t.id)" if count else "0"
    with transaction(f.settings) as conn:
        row = conn.execute(
            f"""SELECT t.listed_at IS NOT NULL AS listed, t.status, {n} AS n
                FROM sync_tasks t WHERE t.task_id = %s""",
            (task_id,),
        ).fetchone()
    return bool(row["listed"]) or row["status"] not in OPEN_TASK_STATUSES, row["n"]


def run_plan(f: harness.Ferry, rule: str, probe: ApiProbe, phase: str) -> tuple[str, float]:
    """Trigger ``rule``; (task id, seconds until its plan ended). Prints items/s by 10 s
    (items counted once per 10 s only: counting costs PostgreSQL time too)."""
    task_id = f.call("POST", f"/rules/{rule}/trigger")["task_id"]
    probe.paths[-1] = f"/tasks/{task_id}"
    start, probe.phase, marks = time.monotonic(), phase, [(0.0, 0)]
    while True:
        now = time.monotonic() - start
        listed, n = _listed(f, task_id, now - marks[-1][0] >= 10)
        if n:
            marks.append((now, n))
        if listed:
            break
        time.sleep(0.05)
    seconds = time.monotonic() - start
    probe.phase = None
    marks.append((seconds, _listed(f, task_id, True)[1]))
    rates = [f"{(b[1] - a[1]) / (b[0] - a[0]):.0f}" for a, b in pairwise(marks) if b[0] > a[0]]
    print(f"{phase}: plan {seconds:.1f}s for {marks[-1][1]} items; items/s by 10 s: {rates}")
    return task_id, seconds


def rule_to(f: harness.Ferry, name: str, src_id: str, dst: RegistryServer) -> str:
    dst_id = f.instance(name, dst, "bob", "bob-pw")["id"]
    source = {"instance_id": src_id, "namespace": "scale"}
    body = {"name": name, "source": source, "target": {"instance_id": dst_id}}
    return f.call("POST", "/rules", body)["id"]


def floor(src: RegistryServer, dst: RegistryServer, repos: int, tags: int) -> float:
    """Seconds for what a plan asks of the registries, alone: a GET of each source manifest
    and a HEAD of each target tag, 16 at a time (the plan's PLAN_THREADS)."""
    local = threading.local()

    def one(name: str) -> None:
        if not hasattr(local, "src"):
            local.src, local.dst = src.session(), dst.session()
        oci.get_manifest(local.src, src.url, name.split(":")[0], name.split(":")[1])
        local.dst.head(f"{dst.url}/v2/{name.replace(':', '/manifests/')}",
                       headers={"Accept": oci.ACCEPT})  # fmt: skip

    names = [f"scale/app-{r:03d}:v{t}" for r in range(repos) for t in range(tags)]
    start = time.monotonic()
    with ThreadPoolExecutor(16) as pool:
        list(pool.map(one, names))
    return time.monotonic() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repos", type=int, default=20)
    parser.add_argument("--tags", type=int, default=1000)
    # `ferry up`'s worker, unless told otherwise.
    parser.add_argument("--concurrency", type=int, default=DEFAULT_CONCURRENCY)
    parser.add_argument("--pool", default=DEFAULT_POOL, choices=POOLS)
    args = parser.parse_args()

    src = RegistryServer(users={"alice": "alice-pw"})
    full, empty = RegistryServer(users={"bob": "bob-pw"}), RegistryServer(users={"bob": "bob-pw"})
    try:
        t = time.monotonic()
        digest = seed_storage([src.storage, full.storage], args.repos, args.tags)
        for server in (src, full, empty):
            server.start()
        got = oci.get_manifest(src.session(), src.url, "scale/app-000", f"v{args.tags - 1}")
        assert got is not None and got.digest == digest, "the seeded registry serves no tag"
        print(f"seeded {args.repos * args.tags} tags in {time.monotonic() - t:.1f}s")
        with harness.ferry() as f:
            src_id = f.instance("src", src, "alice", "alice-pw")["id"]
            noop, cold = rule_to(f, "noop", src_id, full), rule_to(f, "cold", src_id, empty)
            cpu = procstat.CpuMeter(
                {
                    "registries": procstat.by_pids(*(r.process.pid for r in (src, full, empty))),
                    "postgresql": procstat.by_name("postgres"),
                    "redis": procstat.by_name("redis-server"),
                }
            )
            bench(f, args, noop, cold, cpu)
        cpu.start()
        seconds = floor(src, full, args.repos, args.tags)
        print(f"floor: GET + HEAD of every tag, 16 at a time, no Ferry: {seconds:.1f}s")
        print(f"  CPU seconds meanwhile: {cpu.stop()}")
    finally:
        for server in (src, full, empty):
            server.cleanup()


def bench(
    f: harness.Ferry, args: argparse.Namespace, noop: str, cold: str, cpu: procstat.CpuMeter
) -> None:
    api, url = f.serve_api()
    probe = ApiProbe(url, f.token, ["/rules", "/instances", f"/rules/{cold}/tasks", "/rules"])
    worker = None
    try:
        worker = f.worker(args.concurrency, args.pool)
        cpu.components["worker"] = procstat.by_group(worker.process.pid)
        cpu.components["api"] = procstat.by_group(api.process.pid)
        probe.start()
        probe.phase = "idle"
        time.sleep(5)  # the idle baseline is a span of time, not a condition to wait on
        probe.phase = None
        cpu.start()
        noop_task, noop_s = run_plan(f, noop, probe, "no-op")
        print(f"  CPU seconds: {cpu.stop()}")
        f.wait(noop_task)
        cpu.start()
        task_id, cold_s = run_plan(f, cold, probe, "cold")
        print(f"  CPU seconds: {cpu.stop()}")
        f.call("POST", f"/tasks/{task_id}/stop")  # its copies are not this benchmark
        f.wait(task_id)
    finally:
        probe.done.set()
        if probe.is_alive():
            probe.join(60)
        if worker is not None:
            worker.stop()
        api.stop()
    for phase in ("idle", "no-op", "cold"):
        print(f"API during {phase}: {probe.summary(phase)}")
    print(f"API answers other than 200: {probe.errors}")
    print(f"goal: plan <= 60 s (no-op {noop_s:.1f}s, cold {cold_s:.1f}s); API p99 <= 200 ms")


if __name__ == "__main__":
    main()
