"""Time of ``ferry copy`` for one multi-arch index between two local registries.

Usage (from the repository root):

    /work/venv/bin/python ops/bench/copy_index.py [--platforms 4] [--runs 3]

The source holds an OCI index with one image per platform (config + layers of
256 KiB, 4 MiB and 24 MiB of random bytes, so small, in-memory and streamed uploads
all occur). Both registries use htpasswd authentication. Each run is a fresh
``python -m common.cli.copy`` process:

* cold: into a new target repository (every blob crosses the wire);
* repeated: the same copy again (the target tag already has the digest: up-to-date);
* new tag: the same index to another tag of that repository (all blobs and
  children already there: only HEADs and one manifest PUT).

Wall time includes starting Python; "copy" is the copy itself (outcome.seconds).
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

from tests.support import oci  # noqa: E402
from tests.support.registry import RegistryServer  # noqa: E402

KiB, MiB = 1024, 1024 * 1024
LAYERS = (256 * KiB, 4 * MiB, 24 * MiB)
ARCHES = ("amd64", "arm64", "ppc64le", "s390x", "riscv64", "386", "mips64le", "arm")


def push_index(server: RegistryServer, repo: str, platforms: int) -> tuple[str, int]:
    """Push the benchmark index; (digest, total blob bytes)."""
    pushed = oci.push_index(
        server.session(),
        server.url,
        repo,
        "v1",
        platforms=ARCHES[:platforms],
        layer_sizes=LAYERS,
    )
    return pushed.digest, platforms * sum(LAYERS)


def ferry_copy(src: str, dst: str) -> tuple[dict, float]:
    env = {
        **os.environ,
        "PYTHONPATH": str(ROOT),
        "FERRY_SRC_CREDS": "alice:alice-bench-pw",
        "FERRY_DST_CREDS": "bob:bob-bench-pw",
    }
    started = time.monotonic()
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "common.cli.copy",
            src,
            dst,
            "--plain-http",
            "--json",
            "--no-progress",
        ],
        capture_output=True,
        text=True,
        env=env,
        cwd=ROOT,
    )
    wall = time.monotonic() - started
    if proc.returncode != 0:
        raise SystemExit(f"ferry copy failed: {proc.stderr}")
    return json.loads(proc.stdout), wall


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--platforms", type=int, default=4, choices=range(1, len(ARCHES) + 1))
    ap.add_argument("--runs", type=int, default=3)
    args = ap.parse_args()
    work = Path(tempfile.mkdtemp(prefix="ferry-bench-"))
    src = RegistryServer(users={"alice": "alice-bench-pw"}, root=work / "src").start()
    dst = RegistryServer(users={"bob": "bob-bench-pw"}, root=work / "dst").start()
    try:
        digest, total = push_index(src, "bench/app", args.platforms)
        print(
            f"index {digest}: {args.platforms} platforms, {args.platforms * 4} blobs, "
            f"{total / MiB:.1f} MiB"
        )
        rows: dict[str, list[tuple[float, float, dict]]] = {
            "cold": [],
            "repeated": [],
            "new tag": [],
        }
        for i in range(args.runs):
            target = f"{dst.host}/bench/app{i}"
            for label, ref in (
                ("cold", f"{target}:v1"),
                ("repeated", f"{target}:v1"),
                ("new tag", f"{target}:v2"),
            ):
                out, wall = ferry_copy(f"{src.host}/bench/app:v1", ref)
                assert out["digest"] == digest, out
                rows[label].append((wall, out["seconds"], out))
        print(
            f"{'run':<10} {'status':<11} {'wall s (median)':>16} {'copy s (median)':>16} "
            f"{'MiB sent':>9} {'blobs up/mnt/skip':>18}"
        )
        for label, results in rows.items():
            out = results[-1][2]
            print(
                f"{label:<10} {out['status']:<11} "
                f"{statistics.median(r[0] for r in results):16.3f} "
                f"{statistics.median(r[1] for r in results):16.3f} "
                f"{out['bytes_transferred'] / MiB:9.1f} "
                f"{out['blobs_uploaded']:>8}/{out['blobs_mounted']}/{out['blobs_skipped']}"
            )
    finally:
        src.cleanup()
        dst.cleanup()
        subprocess.run(["rm", "-rf", str(work)], check=False)


if __name__ == "__main__":
    main()
