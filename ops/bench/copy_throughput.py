"""Copy throughput of one large random layer between two local docker-registry instances.

Usage (from the repository root):

    /work/venv/bin/python ops/bench/copy_throughput.py [--size-mib 1024] [--runs 1]

For each upload mode the copy runs in a child process under ``/usr/bin/time -v``
(peak RSS of the copying process) and prints MB/s (1 MB = 10^6 bytes) and MiB/s.
The first row is ``ferry copy`` itself (``python -m common.cli.copy``, default
settings); the others call ``copy_artifact`` with an explicit upload mode, and
``skopeo`` (if installed) is a reference for what the two registries allow. Every
run goes to a fresh target registry so that all bytes cross the wire.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import requests

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

from common.domain.vocab import ItemStatus  # noqa: E402
from tests.support.registry import RegistryServer  # noqa: E402

MiB = 1024 * 1024
PIECE = 8 * MiB


def push_random_layer(base: str, repo: str, size: int) -> str:
    """Push ``size`` random bytes as an OCI image layer (+config, manifest); the digest."""
    s = requests.Session()
    h = hashlib.sha256()

    def gen():
        left = size
        while left:
            piece = os.urandom(min(PIECE, left))
            h.update(piece)
            left -= len(piece)
            yield piece

    r = s.post(f"{base}/v2/{repo}/blobs/uploads/")
    loc = r.headers["Location"]
    r = s.patch(loc, data=gen(), headers={"Content-Type": "application/octet-stream"})
    r.raise_for_status()
    layer = "sha256:" + h.hexdigest()
    s.put(r.headers["Location"] + f"&digest={layer}").raise_for_status()
    cfg = json.dumps(
        {"architecture": "amd64", "os": "linux", "rootfs": {"type": "layers", "diff_ids": []}}
    ).encode()
    cfg_digest = "sha256:" + hashlib.sha256(cfg).hexdigest()
    r = s.post(f"{base}/v2/{repo}/blobs/uploads/")
    s.put(r.headers["Location"] + f"&digest={cfg_digest}", data=cfg).raise_for_status()
    manifest = json.dumps(
        {
            "schemaVersion": 2,
            "mediaType": "application/vnd.oci.image.manifest.v1+json",
            "config": {
                "mediaType": "application/vnd.oci.image.config.v1+json",
                "digest": cfg_digest,
                "size": len(cfg),
            },
            "layers": [
                {
                    "mediaType": "application/vnd.oci.image.layer.v1.tar",
                    "digest": layer,
                    "size": size,
                }
            ],
        }
    ).encode()
    s.put(
        f"{base}/v2/{repo}/manifests/v1",
        data=manifest,
        headers={"Content-Type": "application/vnd.oci.image.manifest.v1+json"},
    ).raise_for_status()
    return layer


def child(src: str, dst: str, chunk: str) -> None:
    """Runs inside /usr/bin/time: one copy with the given upload mode."""
    from common.registry import RegistryClient, copy_artifact
    from common.settings import load_settings

    settings = load_settings({})
    if chunk == "stream":
        mode = {"chunked_threshold": None}
    else:
        mode = {"chunked_threshold": 0, "chunk_size": int(chunk) * MiB}
    with (
        RegistryClient(src, settings=settings) as s,
        RegistryClient(dst, settings=settings, **mode) as d,
    ):
        out = copy_artifact(s, "bench/big", "v1", d, "bench/big", "v1")
    print(json.dumps(out.to_dict()))


def timed(cmd: list[str]) -> tuple[dict | None, int, float]:
    """(outcome JSON, peak RSS in KiB, wall seconds) of a command under /usr/bin/time -v."""
    proc = subprocess.run(
        ["/usr/bin/time", "-v", *cmd],
        capture_output=True,
        text=True,
        cwd=ROOT,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
    )
    if proc.returncode != 0:
        raise SystemExit(f"copy failed: {proc.stdout}\n{proc.stderr[-3000:]}")
    rss = int(re.search(r"Maximum resident set size \(kbytes\): (\d+)", proc.stderr).group(1))
    wall = re.search(r"Elapsed \(wall clock\) time \(h:mm:ss or m:ss\): (.+)", proc.stderr)
    parts = [float(p) for p in wall.group(1).strip().split(":")]
    seconds = sum(p * 60**i for i, p in enumerate(reversed(parts)))
    return (json.loads(proc.stdout) if proc.stdout.startswith("{") else None), rss, seconds


def command(mode: str, src: RegistryServer, dst: RegistryServer) -> tuple[list[str], str] | None:
    """The command line and row label of one upload mode; None when it cannot run here."""
    if mode == "skopeo":
        if not Path("/usr/bin/skopeo").exists():
            return None
        cmd = [
            "/usr/bin/skopeo",
            "copy",
            "--src-tls-verify=false",
            "--dest-tls-verify=false",
            f"docker://{src.host}/bench/big:v1",
            f"docker://{dst.host}/bench/big:v1",
        ]
        return cmd, "skopeo (reference)"
    if mode == "cli":
        cmd = [
            sys.executable,
            "-m",
            "common.cli.copy",
            f"{src.host}/bench/big:v1",
            f"{dst.host}/bench/big:v1",
            "--plain-http",
            "--json",
            "--no-progress",
        ]
        return cmd, "ferry copy (defaults)"
    cmd = [sys.executable, __file__, "--child", src.url, dst.url, mode]
    return cmd, "one streamed PATCH" if mode == "stream" else f"chunked, {mode} MiB"


def run_mode(mode: str, src: RegistryServer, work: Path, size: int) -> bool:
    """One copy in ``mode`` to a fresh target, printed as a row; False when it cannot run."""
    dst = RegistryServer(root=Path(tempfile.mkdtemp(dir=work))).start()
    try:
        planned = command(mode, src, dst)
        if planned is None:
            return False
        cmd, label = planned
        out, rss, wall = timed(cmd)
        if out is None:  # skopeo: no outcome, the wall time is the copy time
            secs = wall
        else:
            assert out["status"] == ItemStatus.COPIED, out
            assert out["bytes_transferred"] >= size
            secs = out["seconds"]
        print(
            f"{label:<22} {secs:7.2f} {wall:7.2f} {size / secs / 1e6:7.1f} "
            f"{size / secs / MiB:7.1f} {rss / 1024:13.1f}",
            flush=True,
        )
        return True
    finally:
        dst.cleanup()


def parse_args() -> argparse.Namespace:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--size-mib", type=int, default=1024)
    ap.add_argument("--runs", type=int, default=1)
    ap.add_argument(
        "--modes",
        default="cli,16,64,stream,skopeo",
        help="cli (ferry copy), a chunk size in MiB, 'stream' or 'skopeo'",
    )
    ap.add_argument("--child", nargs=3, metavar=("SRC", "DST", "CHUNK"), help=argparse.SUPPRESS)
    return ap.parse_args()


def main() -> None:
    args = parse_args()
    if args.child:
        child(*args.child)
        return
    size = args.size_mib * MiB
    work = Path(tempfile.mkdtemp(prefix="ferry-bench-"))
    src = RegistryServer(root=work / "src").start()
    try:
        t0 = time.monotonic()
        push_random_layer(src.url, "bench/big", size)
        print(
            f"pushed {args.size_mib} MiB random layer to the source in {time.monotonic() - t0:.1f}s"
        )
        print(
            f"{'mode':<22} {'copy s':>7} {'wall s':>7} {'MB/s':>7} {'MiB/s':>7} "
            f"{'peak RSS MiB':>13}"
        )
        for mode in args.modes.split(","):
            for _ in range(args.runs):
                if not run_mode(mode, src, work, size):
                    break
    finally:
        src.cleanup()
        subprocess.run(["rm", "-rf", str(work)], check=False)


if __name__ == "__main__":
    main()
