"""A namespace sync by Ferry next to `skopeo sync` and a raw parallel blob copy.

Usage (from the repository root, with PostgreSQL and Redis on 127.0.0.1):

    .venv/bin/python ops/bench/sync_vs_skopeo.py [--repos 50] [--tags 6] [--base-mib 30]
                                                 [--unique-kib 600] [--concurrency 8]

Data set: ``--repos`` repositories under namespace ``bench`` with ``--tags`` tags
each; every image has one of five shared base layers (``--base-mib``) and one
layer of its own (``--unique-kib``). Defaults: 50 repositories, 300 tags, about
340 MiB of unique blobs. Four docker-registry servers with htpasswd users: the
source, and one fresh target each for Ferry, skopeo and the raw copy.

Figures printed:
- Ferry cold sync and no-op resync wall time (trigger → task finished), with a
  real Celery worker (``--concurrency`` processes), real PostgreSQL and Redis;
- bytes Ferry uploaded ÷ unique bytes of the data set;
- ``skopeo sync`` of the same repositories, cold and repeated;
- a raw parallel copy of the unique blobs (GET → PUT, ``--concurrency`` threads),
  the floor any replicator on this machine can reach.
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
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

from ops.bench import harness  # noqa: E402
from tests.support import oci  # noqa: E402
from tests.support.registry import RegistryServer  # noqa: E402

KiB, MiB = 1024, 1024 * 1024


def seed(
    src: RegistryServer, repos: int, tags: int, base_mib: int, unique_kib: int, threads: int
) -> tuple[list[str], int, list[tuple[str, str]]]:
    """Push the data set; (repositories, unique bytes, (repository, digest) of each blob)."""
    session = src.session()
    bases = [os.urandom(base_mib * MiB) for _ in range(5)]
    repo_names = [f"bench/app-{i:02d}" for i in range(repos)]
    unique_bytes = 0
    digests: list[tuple[str, str]] = []

    def push_repo(index_repo: tuple[int, str]) -> tuple[int, list[tuple[str, str]]]:
        i, repo = index_repo
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
                s, src.url, repo, f"v{t}", layers=[bases[i % 5], own], config=config
            )
            doc = json.loads(pushed.body)
            total += len(own) + doc["config"]["size"]
            ds += [(repo, doc["layers"][1]["digest"]), (repo, doc["config"]["digest"])]
        return total, ds

    with ThreadPoolExecutor(threads) as pool:
        for total, ds in pool.map(push_repo, enumerate(repo_names)):
            unique_bytes += total
            digests += ds
    unique_bytes += sum(len(b) for b in bases)
    digests += [
        (repo_names[i], "sha256:" + hashlib.sha256(b).hexdigest())
        for i, b in enumerate(bases[:repos])
    ]
    session.close()
    return repo_names, unique_bytes, digests


def ferry_sync(
    src: RegistryServer, dst: RegistryServer, concurrency: int, pool: str
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
        worker = f.worker(concurrency, pool)
        try:
            for label in ("cold", "noop"):
                start = time.monotonic()
                task = f.wait(f.call("POST", f"/rules/{rule}/trigger")["task_id"])
                figures[f"{label}_seconds"] = time.monotonic() - start
                figures[f"{label}_bytes"] = task["bytes_transferred"]
                assert task["status"] == TaskStatus.SUCCEEDED, task
                with transaction(f.settings) as conn:
                    stats = conn.execute(
                        """SELECT sum(blobs_uploaded) AS up, sum(blobs_mounted) AS mounted,
                                  sum(blobs_skipped) AS skipped, max(attempts) AS attempts,
                                  avg(extract(epoch FROM i.finished_at - i.started_at)) AS avg_s,
                                  extract(epoch FROM max(i.finished_at) - min(i.started_at))
                                      AS span
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


def skopeo_sync(src: RegistryServer, dst: RegistryServer, repos: list[str]) -> dict[str, float]:
    """`skopeo sync` of the same repositories (all tags), cold and repeated."""
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
        start = time.monotonic()
        subprocess.run(
            [
                "skopeo",
                "sync",
                "--src",
                "yaml",
                "--dest",
                "docker",
                "--dest-tls-verify=false",
                "--dest-creds",
                "bob:bob-pw",
                str(work / "sync.yaml"),
                f"{dst.host}/bench",
            ],
            check=True,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            env={**os.environ, "HOME": str(work)},
        )
        figures[f"{label}_seconds"] = time.monotonic() - start
    shutil.rmtree(work, ignore_errors=True)
    return figures


def raw_copy(
    src: RegistryServer, dst: RegistryServer, blobs: list[tuple[str, str]], threads: int
) -> float:
    """Seconds to GET every unique blob and PUT it to a fresh registry, in parallel."""
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

    start = time.monotonic()
    with ThreadPoolExecutor(threads) as pool:
        list(pool.map(one, blobs))
    return time.monotonic() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repos", type=int, default=50)
    parser.add_argument("--tags", type=int, default=6)
    parser.add_argument("--base-mib", type=int, default=30)
    parser.add_argument("--unique-kib", type=int, default=600)
    parser.add_argument("--concurrency", type=int, default=8)
    parser.add_argument(
        "--pool", default="prefork", choices=("prefork", "threads"), help="Celery worker pool"
    )
    args = parser.parse_args()

    servers = [RegistryServer(users={"alice": "alice-pw"}).start()] + [
        RegistryServer(users={"bob": "bob-pw"}).start() for _ in range(3)
    ]
    src, dst_ferry, dst_skopeo, dst_raw = servers
    try:
        t = time.monotonic()
        repos, unique, digests = seed(
            src, args.repos, args.tags, args.base_mib, args.unique_kib, args.concurrency
        )
        print(
            f"data set: {len(repos)} repositories, {len(repos) * args.tags} tags, "
            f"{unique / MiB:.0f} MiB unique in {len(digests)} blobs "
            f"(seeded in {time.monotonic() - t:.1f}s)"
        )
        ferry = ferry_sync(src, dst_ferry, args.concurrency, args.pool)
        skopeo = skopeo_sync(src, dst_skopeo, repos)
        raw = raw_copy(src, dst_raw, digests, args.concurrency)
    finally:
        for server in servers:
            server.cleanup()

    print(f"{'':28}{'cold (s)':>10}{'no-op (s)':>11}")
    print(f"{'ferry sync':28}{ferry['cold_seconds']:>10.1f}{ferry['noop_seconds']:>11.2f}")
    if skopeo:
        print(f"{'skopeo sync':28}{skopeo['cold_seconds']:>10.1f}{skopeo['noop_seconds']:>11.2f}")
    print(f"{'raw parallel blob copy':28}{raw:>10.1f}")
    print(
        f"ferry bytes uploaded / unique bytes: {ferry['cold_bytes'] / unique:.3f} "
        f"({ferry['cold_bytes'] / MiB:.0f} MiB / {unique / MiB:.0f} MiB); "
        f"no-op resync uploaded {ferry['noop_bytes']} bytes"
    )
    if skopeo:
        print(
            f"skopeo / ferry: cold {skopeo['cold_seconds'] / ferry['cold_seconds']:.2f}x, "
            f"no-op {skopeo['noop_seconds'] / ferry['noop_seconds']:.2f}x"
        )
    print(f"ferry cold / raw copy: {ferry['cold_seconds'] / raw:.2f}")
    print(f"ferry cold items: {ferry['cold_stats']}")


if __name__ == "__main__":
    main()
