"""Worker memory copying one big layer: peak RSS of the pool child that copied and of the
worker's main process, the wall time and the throughput.

Usage (from the repository root, with PostgreSQL and Redis on 127.0.0.1):

    .venv/bin/python ops/bench/big_layer.py [--size-mib 1024]
        [--concurrency N] [--pool threads|prefork]

One image whose single layer is ``--size-mib`` of random bytes is pushed to a
docker-registry source, streamed (POST, one PATCH fed 1 MiB at a time while
hashing, PUT with the digest), so this process never holds the layer. A rule
syncs it to an empty docker-registry target through a real Celery worker
(``ferry up``'s defaults: prefork, 4 processes). Wall time: from the trigger's
answer until the task is finished. Peak RSS is each process's VmHWM from
/proc/<pid>/status, read before the trigger and after the task ends (the
worker is still running then); the pool child that copied is the one that used
the most CPU meanwhile (it hashes the layer as it streams; /proc/<pid>/io is
not readable here and Celery's log names no pid). The target's manifest digest
and the layer's digest (the target's bytes hashed as they stream back) must
equal the source's.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import sys
import time
from collections.abc import Iterator
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

from common.runtime.supervisor import DEFAULT_CONCURRENCY, DEFAULT_POOL, POOLS  # noqa: E402
from ops.bench import harness, procstat  # noqa: E402
from tests.support import oci  # noqa: E402
from tests.support.registry import RegistryServer  # noqa: E402
from tests.support.roles import peak_rss_kib  # noqa: E402

MiB = 1024 * 1024


def push_big_layer(src: RegistryServer, repo: str, size: int) -> tuple[str, oci.Pushed]:
    """Stream ``size`` random bytes as a blob, then an image using it; (layer, manifest)."""
    s = src.session()
    hasher = hashlib.sha256()

    def body() -> Iterator[bytes]:
        left = size
        while left:
            chunk = os.urandom(min(MiB, left))
            hasher.update(chunk)
            left -= len(chunk)
            yield chunk

    r = s.post(f"{src.url}/v2/{repo}/blobs/uploads/")
    r.raise_for_status()
    loc = r.headers["Location"]
    loc = loc if loc.startswith("http") else src.url + loc
    r = s.patch(loc, data=body(), headers={"Content-Type": "application/octet-stream"})
    r.raise_for_status()
    loc = r.headers["Location"]
    loc = loc if loc.startswith("http") else src.url + loc
    layer = "sha256:" + hasher.hexdigest()
    sep = "&" if "?" in loc else "?"
    r = s.put(f"{loc}{sep}digest={layer}", headers={"Content-Length": "0"})
    assert r.status_code == 201, (r.status_code, r.text)
    cfg = json.dumps({"architecture": "amd64", "os": "linux", "rootfs": {}}).encode()
    manifest = {
        "schemaVersion": 2,
        "mediaType": oci.OCI_MANIFEST,
        "config": {
            "mediaType": oci.OCI_CONFIG,
            "digest": oci.push_blob(s, src.url, repo, cfg),
            "size": len(cfg),
        },
        "layers": [{"mediaType": oci.OCI_LAYER, "digest": layer, "size": size}],
    }
    body_bytes = json.dumps(manifest).encode()
    return layer, oci.push_manifest(s, src.url, repo, "v1", body_bytes, oci.OCI_MANIFEST)


def hash_blob(reg: RegistryServer, repo: str, digest: str) -> tuple[str, int]:
    """sha256 and length of a blob as the registry serves it, streamed."""
    r = reg.session().get(f"{reg.url}/v2/{repo}/blobs/{digest}", stream=True)
    r.raise_for_status()
    hasher, n = hashlib.sha256(), 0
    for chunk in r.iter_content(MiB):
        hasher.update(chunk)
        n += len(chunk)
    return "sha256:" + hasher.hexdigest(), n


def children(pid: int) -> list[int]:
    """The direct children of ``pid`` (a prefork worker's pool)."""
    out = []
    for task in Path(f"/proc/{pid}/task").iterdir():
        with open(task / "children") as fh:
            out += [int(c) for c in fh.read().split()]
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size-mib", type=int, default=1024)
    # `ferry up`'s worker, unless told otherwise.
    parser.add_argument("--concurrency", type=int, default=DEFAULT_CONCURRENCY)
    parser.add_argument("--pool", default=DEFAULT_POOL, choices=POOLS)
    args = parser.parse_args()
    size = args.size_mib * MiB

    src = RegistryServer(users={"alice": "alice-pw"}).start()
    dst = RegistryServer(users={"bob": "bob-pw"}).start()
    try:
        t = time.monotonic()
        layer, pushed = push_big_layer(src, "big/app", size)
        print(f"pushed {args.size_mib} MiB layer {layer} in {time.monotonic() - t:.1f}s")
        with harness.ferry() as f:
            src_id = f.instance("src", src, "alice", "alice-pw")["id"]
            dst_id = f.instance("dst", dst, "bob", "bob-pw")["id"]
            source = {"instance_id": src_id, "namespace": "big"}
            body = {"name": "big", "source": source, "target": {"instance_id": dst_id}}
            rule = f.call("POST", "/rules", body)["id"]
            worker = f.worker(args.concurrency, args.pool)
            try:
                main_pid = worker.process.pid
                pids = [main_pid, *children(main_pid)]
                before = {pid: peak_rss_kib(pid) for pid in pids}
                cpu = {pid: procstat.cpu_seconds(pid) for pid in pids}
                start = time.monotonic()
                task = f.wait(f.call("POST", f"/rules/{rule}/trigger")["task_id"])
                wall = time.monotonic() - start
                after = {pid: peak_rss_kib(pid) for pid in [main_pid, *children(main_pid)]}
                cpu = {pid: procstat.cpu_seconds(pid) - cpu.get(pid, 0) for pid in after}
            finally:
                worker.stop()
        assert task["status"] == "Succeeded", task
        got = oci.get_manifest(dst.session(), dst.url, "big/app", "v1")
        assert got is not None and got.digest == pushed.digest, "target manifest differs"
        there, n = hash_blob(dst, "big/app", layer)
        assert (there, n) == (layer, size), ("target layer differs", there, n)
    finally:
        src.cleanup()
        dst.cleanup()

    print(f"copied in {wall:.1f}s: {args.size_mib / wall:.0f} MiB/s; digests equal on the target")
    # prefork: the child that used the most CPU copied; threads: the main process did.
    pool = {pid: kib for pid, kib in after.items() if pid != main_pid} or after
    grew = max(pool, key=lambda pid: cpu[pid])
    for pid, kib in sorted(after.items()):
        role = "main" if pid == main_pid else ("copier" if pid == grew else "child")
        was = before.get(pid, 0) / 1024
        print(
            f"  {role:6} pid {pid}: VmHWM {was:.0f} -> {kib / 1024:.0f} MiB, "
            f"{cpu[pid]:.1f} CPU s meanwhile"
        )
    print(f"goal: copier peak RSS <= 120 MiB: {pool[grew] / 1024:.0f} MiB")


if __name__ == "__main__":
    main()
