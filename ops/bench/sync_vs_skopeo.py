"""A namespace sync by Ferry next to `skopeo sync` and a raw parallel blob copy.

Usage (from the repository root, with PostgreSQL and Redis on 127.0.0.1):

    .venv/bin/python ops/bench/sync_vs_skopeo.py [--repos 50] [--tags 6] [--base-mib 30]
        [--unique-kib 600] [--indexes 4] [--charts 4] [--concurrency 8] [--pool threads]
        [--rtt-ms 0]

Data set: ``--repos`` repositories under namespace ``bench`` with ``--tags`` tags
each; every image has one of five shared base layers (``--base-mib``; 0: none) and
one layer of its own (``--unique-kib``); plus ``--indexes`` multi-arch index tags
(two platforms) in ``bench/multi/arch`` and ``--charts`` Helm charts in
``bench/charts/app``. Defaults: 52 repositories, 308 tags, about 340 MiB of
unique blobs. Four docker-registry servers with htpasswd users and access
logs: the source, and one fresh target each for Ferry, skopeo and the raw copy.

``--rtt-ms N`` puts a latency proxy (ops/bench/latency.py) in front of each
target, delaying each direction by N/2 ms; the source stays local.

Figures printed:
- Ferry cold sync and no-op resync wall time (trigger → task finished), with a
  real Celery worker (``ferry up``'s defaults: a threads pool of 8), real
  PostgreSQL and Redis; bytes uploaded ÷ unique bytes;
- ``skopeo sync --all`` of the same repositories, cold and repeated;
- a raw parallel copy of the unique blobs (GET → POST → PUT, 8 threads), the
  floor any replicator on this machine can reach;
- registry requests by kind and side, from the registries' access logs, next to
  the minimum an exact sync needs (tests/support/requestlog.py), and the ratio;
- CPU seconds per component (registries, worker, API, PostgreSQL, Redis,
  latency proxies) from /proc, and the worker's CPU per tag.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

from common.runtime.supervisor import DEFAULT_CONCURRENCY, DEFAULT_POOL, POOLS  # noqa: E402
from ops.bench import harness, procstat, sync_report  # noqa: E402
from ops.bench.latency import LatencyProxy  # noqa: E402
from tests.support import oci, requestlog  # noqa: E402
from tests.support.registry import RegistryServer  # noqa: E402

KiB, MiB = 1024, 1024 * 1024
RAW_THREADS = 8


@dataclass
class Target:
    """A target registry as the clients see it: directly, or behind a latency proxy."""

    server: RegistryServer
    url: str
    host: str

    def session(self) -> Any:
        return self.server.session()


@dataclass
class DataSet:
    repos: list[str]
    tags: int
    unique_bytes: int
    blobs: list[tuple[str, str]]  # (repository, digest) of each unique blob


def _push_repo(
    src: RegistryServer, repo: str, base: bytes, tags: int, unique_kib: int
) -> tuple[int, list[tuple[str, str]]]:
    s = src.session()
    total, ds = 0, []
    for t in range(tags):
        own = os.urandom(unique_kib * KiB)
        config = {
            "architecture": "amd64",
            "os": "linux",
            "repo": repo,
            "tag": t,
            "rootfs": {"type": "layers", "diff_ids": []},
        }
        pushed = oci.push_image(
            s, src.url, repo, f"v{t}", layers=[base, own] if base else [own], config=config
        )
        doc = json.loads(pushed.body)
        total += len(own) + doc["config"]["size"]
        ds += [(repo, doc["layers"][-1]["digest"]), (repo, doc["config"]["digest"])]
    return total, ds


def _push_extras(src: RegistryServer, indexes: int, charts: int) -> tuple[int, list]:
    """Multi-arch indexes and Helm charts in multi-level repositories; (bytes, blobs)."""
    s, total, ds, seen = src.session(), 0, [], set()

    def add(repo: str, d: dict) -> None:
        nonlocal total
        if d["digest"] not in seen:  # an amd64 child's config may repeat
            seen.add(d["digest"])
            total += d["size"]
            ds.append((repo, d["digest"]))

    for i in range(indexes):
        pushed = oci.push_index(s, src.url, "bench/multi/arch", f"{i}.0", layer_sizes=(200 * KiB,))
        for child in json.loads(pushed.body)["manifests"]:
            got = oci.get_manifest(s, src.url, "bench/multi/arch", child["digest"])
            assert got is not None
            doc = json.loads(got.body)
            for d in [doc["config"], *doc["layers"]]:
                add("bench/multi/arch", d)
    for i in range(charts):
        pushed = oci.push_chart(s, src.url, "bench/charts/app", f"0.{i}.0")
        doc = json.loads(pushed.body)
        for d in [doc["config"], *doc["layers"]]:
            add("bench/charts/app", d)
    return total, ds


def seed(src: RegistryServer, args: argparse.Namespace) -> DataSet:
    """Push the data set."""
    bases = [os.urandom(int(args.base_mib * MiB)) for _ in range(5)]
    repo_names = [f"bench/app-{i:02d}" for i in range(args.repos)]
    unique_bytes, digests = 0, []
    with ThreadPoolExecutor(8) as pool:
        jobs = [
            pool.submit(_push_repo, src, repo, bases[i % 5], args.tags, args.unique_kib)
            for i, repo in enumerate(repo_names)
        ]
        for job in jobs:
            total, ds = job.result()
            unique_bytes += total
            digests += ds
    if args.base_mib > 0:
        unique_bytes += sum(len(b) for b in bases[: args.repos])
        digests += [
            (repo_names[i], "sha256:" + hashlib.sha256(b).hexdigest())
            for i, b in enumerate(bases[: args.repos])
        ]
    extra_bytes, extra = _push_extras(src, args.indexes, args.charts)
    tags = len(repo_names) * args.tags + args.indexes + args.charts
    if args.indexes:
        repo_names.append("bench/multi/arch")
    if args.charts:
        repo_names.append("bench/charts/app")
    return DataSet(repo_names, tags, unique_bytes + extra_bytes, digests + extra)


class Phase:
    """Wall time, CPU per component and registry requests of one step of a run."""

    def __init__(self, meter: procstat.CpuMeter, src: RegistryServer, dst: RegistryServer):
        self.meter, self.src, self.dst = meter, src, dst

    def __enter__(self) -> Phase:
        self.marks = self.src.mark(), self.dst.mark()
        self.meter.start()
        self.started = time.monotonic()
        return self

    def __exit__(self, *exc: object) -> None:
        self.seconds = time.monotonic() - self.started
        self.cpu = self.meter.stop()
        self.source = requestlog.count(self.src.requests_between(self.marks[0], self.src.mark()))
        self.target = requestlog.count(self.dst.requests_between(self.marks[1], self.dst.mark()))


def ferry_sync(
    src: RegistryServer, dst: Target, args: argparse.Namespace, meter: dict
) -> dict[str, Any]:
    """Cold sync and no-op resync through the API and a real worker."""
    from common.db import transaction
    from common.domain.vocab import ItemStatus, TaskStatus

    figures: dict[str, Any] = {}
    with harness.ferry() as f:
        src_id = f.instance("src", src, "alice", "alice-pw")["id"]
        dst_id = f.instance("dst", dst, "bob", "bob-pw")["id"]
        rule = f.call(
            "POST",
            "/rules",
            {
                "name": "bench",
                "source": {"instance_id": src_id, "namespace": "bench"},
                "target": {"instance_id": dst_id},
            },
        )["id"]
        worker = f.worker(args.concurrency, args.pool)
        components = {**meter, "worker": procstat.by_group(worker.process.pid)}
        cpu = procstat.CpuMeter(components)
        try:
            for label in ("cold", "noop"):
                with Phase(cpu, src, dst.server) as phase:
                    task = f.wait(f.call("POST", f"/rules/{rule}/trigger")["task_id"])
                figures[label] = phase
                figures[f"{label}_bytes"] = task["bytes_transferred"]
                assert task["status"] == TaskStatus.SUCCEEDED, task
                with transaction(f.settings) as conn:
                    stats = conn.execute(
                        """SELECT sum(blobs_uploaded) AS up, sum(blobs_mounted) AS mounted,
                                  sum(blobs_skipped) AS skipped, max(attempts) AS attempts,
                                  avg(extract(epoch FROM i.finished_at - i.started_at)) AS avg_s
                           FROM sync_items i JOIN sync_tasks t ON t.id = i.task_id
                           WHERE t.task_id = %s AND i.status <> %s""",
                        (task["task_id"], ItemStatus.UP_TO_DATE),
                    ).fetchone()
                figures[f"{label}_stats"] = {
                    k: (round(float(v), 2) if v is not None else None) for k, v in stats.items()
                }
        finally:
            worker.stop()
    return figures


def skopeo_sync(
    src: RegistryServer, dst: Target, repos: list[str], meter: procstat.CpuMeter
) -> dict[str, Phase]:
    """`skopeo sync --all` of the same repositories (all tags), cold and repeated."""
    if not shutil.which("skopeo"):
        return {}
    work = Path(tempfile.mkdtemp(prefix="ferry-skopeo-"))
    spec = {
        src.host: {
            "tls-verify": False,
            "credentials": {"username": "alice", "password": "alice-pw"},
            "images": {repo: [] for repo in repos},
        }
    }
    (work / "sync.yaml").write_text(json.dumps(spec))
    figures = {}
    for label in ("cold", "noop"):
        with Phase(meter, src, dst.server) as phase:
            subprocess.run(
                [
                    "skopeo", "sync", "--all", "--src", "yaml", "--dest", "docker",
                    "--dest-tls-verify=false", "--dest-creds", "bob:bob-pw",
                    str(work / "sync.yaml"), f"{dst.host}/bench",
                ],
                check=True,
                stdout=subprocess.DEVNULL,
                stderr=subprocess.PIPE,
                env={**os.environ, "HOME": str(work)},
            )  # fmt: skip
        figures[label] = phase
    shutil.rmtree(work, ignore_errors=True)
    return figures


def raw_copy(
    src: RegistryServer, dst: Target, blobs: list[tuple[str, str]], meter: procstat.CpuMeter
) -> Phase:
    """GET every unique blob and POST + PUT it to a fresh registry, in parallel."""
    local = threading.local()

    def one(blob: tuple[str, str]) -> None:
        repo, digest = blob
        if not hasattr(local, "src"):
            local.src, local.dst = src.session(), dst.session()
        s_src, s_dst = local.src, local.dst
        r = s_src.get(f"{src.url}/v2/{repo}/blobs/{digest}", stream=True)
        r.raise_for_status()
        up = s_dst.post(f"{dst.url}/v2/raw/blobs/uploads/")
        loc = up.headers["Location"]
        loc = loc if loc.startswith("http") else dst.url + loc
        sep = "&" if "?" in loc else "?"
        done = s_dst.put(
            f"{loc}{sep}digest={digest}",
            data=r.iter_content(1 << 20),
            headers={"Content-Type": "application/octet-stream"},
        )
        assert done.status_code == 201, done.text

    with Phase(meter, src, dst.server) as phase, ThreadPoolExecutor(RAW_THREADS) as pool:
        list(pool.map(one, blobs))
    return phase


def _target(server: RegistryServer, rtt_ms: float, proxies: list[LatencyProxy]) -> Target:
    if rtt_ms <= 0:
        return Target(server, server.url, server.host)
    proxy = LatencyProxy(server.host, rtt_ms)
    proxies.append(proxy)
    return Target(server, proxy.url, proxy.host)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repos", type=int, default=50)
    parser.add_argument("--tags", type=int, default=6)
    parser.add_argument("--base-mib", type=float, default=30, help="0: no base layer")
    parser.add_argument("--unique-kib", type=int, default=600)
    parser.add_argument("--indexes", type=int, default=4)
    parser.add_argument("--charts", type=int, default=4)
    # `ferry up`'s worker, unless told otherwise.
    parser.add_argument("--concurrency", type=int, default=DEFAULT_CONCURRENCY)
    parser.add_argument("--pool", default=DEFAULT_POOL, choices=POOLS, help="Celery worker pool")
    parser.add_argument("--rtt-ms", type=float, default=0.0, help="target round trip added")
    parser.add_argument("--skip-skopeo", action="store_true")
    args = parser.parse_args()

    servers = [RegistryServer(users={"alice": "alice-pw"}, access_log=True).start()] + [
        RegistryServer(users={"bob": "bob-pw"}, access_log=True).start() for _ in range(3)
    ]
    src = servers[0]
    proxies: list[LatencyProxy] = []
    try:
        dst_ferry, dst_skopeo, dst_raw = (_target(s, args.rtt_ms, proxies) for s in servers[1:])
        meter = {
            "registries": procstat.by_pids(*(s.process.pid for s in servers if s.process)),
            "driver: API, skopeo, raw": procstat.by_pids(os.getpid()),
            "postgresql": procstat.by_name("postgres"),
            "redis": procstat.by_name("redis-server"),
            "latency proxies": procstat.by_pids(*(p.pid for p in proxies)),
        }
        t = time.monotonic()
        data = seed(src, args)
        least = requestlog.minimum_for(src.session(), src.url, {r: r for r in data.repos})
        print(
            f"data set: {len(data.repos)} repositories, {data.tags} tags, "
            f"{data.unique_bytes / MiB:.0f} MiB unique in {len(data.blobs)} blobs "
            f"(seeded in {time.monotonic() - t:.1f}s); target round trip +{args.rtt_ms:g} ms"
        )
        ferry = ferry_sync(src, dst_ferry, args, meter)
        plain = procstat.CpuMeter(meter)
        skopeo = {} if args.skip_skopeo else skopeo_sync(src, dst_skopeo, data.repos, plain)
        raw = raw_copy(src, dst_raw, data.blobs, plain)
    finally:
        for proxy in proxies:
            proxy.stop()
        for server in servers:
            server.cleanup()
    sync_report.print_report(args, data, least, ferry, skopeo, raw)


if __name__ == "__main__":
    main()
