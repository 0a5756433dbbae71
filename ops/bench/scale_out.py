"""Sync throughput with one versus several copy workers, and the memory of every role.

Usage (from the repository root, with PostgreSQL and Redis on 127.0.0.1):

    .venv/bin/python ops/bench/scale_out.py [--copy-workers 1,2] [--rounds 1]
        [--repos 20] [--tags 10] [--base-mib 10] [--unique-kib 600] [--concurrency 8]

Every role runs as its own ``ferry`` process, as on separate hosts: ``ferry api``,
a push worker, N ``ferry worker --queues plan,copy --concurrency C`` processes with
distinct hostnames, ``ferry beat`` and ``ferry flower``, sharing one PostgreSQL
database and one Redis database. The data set (as in sync_vs_skopeo.py) is pushed
once; each run syncs it into a fresh target registry and a fresh database.

Figures printed, per run: wall time trigger → task finished, items/s and MiB/s,
how the items spread over the copy workers (the items' ``worker``), and each
role's memory: the peak RSS (VmHWM) summed over the role's processes (an upper
bound: a prefork pool shares pages with its parent) and the PSS sum at the end.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import sys
import time
from pathlib import Path
from typing import Any

import requests

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

from ops.bench import harness  # noqa: E402
from ops.bench.sync_vs_skopeo import seed  # noqa: E402
from tests.support.registry import RegistryServer, free_port  # noqa: E402
from tests.support.roles import RoleProcess, http_ready, log_ready  # noqa: E402

MiB = 1024 * 1024


def pss_kib(pids: list[int]) -> int:
    """Proportional set size of the processes now, in KiB (shared pages split fairly)."""
    total = 0
    for pid in pids:
        with contextlib.suppress(OSError):
            for line in Path(f"/proc/{pid}/smaps_rollup").read_text().splitlines():
                if line.startswith("Pss:"):
                    total += int(line.split()[1])
    return total


def family(proc: RoleProcess) -> list[int]:
    import psutil

    assert proc.process is not None
    parent = psutil.Process(proc.process.pid)
    return [parent.pid] + [c.pid for c in parent.children(recursive=True)]


def start_roles(workers: int, concurrency: int, data: Path) -> tuple[list[RoleProcess], str]:
    """Every role as a ``ferry`` process; the roles and the API's base URL."""
    api_bind = f"127.0.0.1:{free_port()}"

    def env(name: str, **extra: str) -> dict[str, str]:
        (data / name).mkdir(parents=True, exist_ok=True)
        return {
            **os.environ,
            "FERRY_DATA_DIR": str(data / name),
            "FERRY_LOG_LEVEL": "INFO",
            **extra,
        }

    def worker(name: str, queues: str, n: int) -> RoleProcess:
        args = ["worker", "--queues", queues, "--concurrency", str(n), "--hostname", name]
        return RoleProcess(name, args, env(name), log_ready(" ready."))

    flower_env = env(
        "flower",
        FERRY_FLOWER_BIND=f"127.0.0.1:{free_port()}",
        FERRY_FLOWER_BASIC_AUTH="bench:bench",
    )
    roles = [
        RoleProcess(
            "api",
            ["api"],
            env("api", FERRY_API_BIND=api_bind),
            http_ready(f"http://{api_bind}/readyz"),
        ),
        worker("push@bench", "push", 4),
        *(worker(f"copy-{i}@bench", "plan,copy", concurrency) for i in range(workers)),
        RoleProcess("beat", ["beat"], env("beat"), log_ready("beat: Starting")),
        RoleProcess("flower", ["flower"], flower_env, log_ready("Visit me at")),
    ]
    for role in roles:
        role.start()
    deadline = time.monotonic() + 120
    for role in roles:
        role.wait_ready(deadline)
    return roles, f"http://{api_bind}/api/v1"


def one_run(src: RegistryServer, workers: int, concurrency: int) -> dict[str, Any]:
    """Sync the data set into a fresh target with ``workers`` copy workers; the figures."""
    dst = RegistryServer(users={"bob": "bob-pw"}).start()
    try:
        with harness.ferry() as f:
            src_id = f.instance("src", src, "alice", "alice-pw")["id"]
            dst_id = f.instance("dst", dst, "bob", "bob-pw")["id"]
            # The cap across all workers must not be what limits the figure.
            f.call("PATCH", f"/instances/{dst_id}", {"max_concurrent_copies": 64})
            body = {
                "name": "bench",
                "source": {"instance_id": src_id, "namespace": "bench"},
                "target": {"instance_id": dst_id},
            }
            rule = f.call("POST", "/rules", body)["id"]
            roles, api = start_roles(workers, concurrency, Path(f.settings.data_dir))
            try:
                return _sync(f, api, rule, roles)
            finally:
                for role in roles:
                    role.terminate()
                for role in roles:
                    role.stop()
    finally:
        dst.cleanup()


def _sync(f: Any, api: str, rule: str, roles: list[RoleProcess]) -> dict[str, Any]:
    """Trigger through the API process, poll it until the end; figures and memory."""
    headers = {"Authorization": f"Bearer {f.token}"}
    start = time.monotonic()
    r = requests.post(f"{api}/rules/{rule}/trigger", headers=headers, timeout=30)
    r.raise_for_status()
    task_id = r.json()["task_id"]
    while True:
        task = requests.get(f"{api}/tasks/{task_id}", headers=headers, timeout=30).json()
        if task["finished_at"]:
            break
        time.sleep(0.1)
    seconds = time.monotonic() - start
    assert task["status"] == "Succeeded", task
    spread: dict[str, int] = {}
    page = 1
    while True:
        batch = requests.get(
            f"{api}/tasks/{task_id}/items",
            headers=headers,
            timeout=30,
            params={"page": page, "page_size": 100},
        ).json()
        for item in batch:
            spread[item["worker"]] = spread.get(item["worker"], 0) + 1
        if len(batch) < 100:
            break
        page += 1
    memory = {
        role.name: (role.peak_rss_kib() // 1024, pss_kib(family(role)) // 1024) for role in roles
    }
    return {
        "seconds": seconds,
        "items": task["total"],
        "bytes": task["bytes_transferred"],
        "spread": spread,
        "memory_mib": memory,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--copy-workers", default="1,2", help="comma-separated counts to run")
    parser.add_argument("--rounds", type=int, default=1, help="runs of each count, alternated")
    parser.add_argument("--repos", type=int, default=20)
    parser.add_argument("--tags", type=int, default=10)
    parser.add_argument("--base-mib", type=int, default=10)
    parser.add_argument("--unique-kib", type=int, default=600)
    parser.add_argument("--concurrency", type=int, default=8, help="per copy worker")
    args = parser.parse_args()
    counts = [int(n) for n in args.copy_workers.split(",")]

    src = RegistryServer(users={"alice": "alice-pw"}).start()
    try:
        repos, unique, blobs = seed(src, args.repos, args.tags, args.base_mib, args.unique_kib, 8)
        print(
            f"data set: {len(repos) * args.tags} tags, {unique / MiB:.0f} MiB unique "
            f"in {len(blobs)} blobs"
        )
        for round_ in range(args.rounds):
            for n in counts:
                fig = one_run(src, n, args.concurrency)
                rate = fig["items"] / fig["seconds"]
                mib = fig["bytes"] / MiB / fig["seconds"]
                print(
                    f"round {round_ + 1}, {n} copy worker(s) x {args.concurrency}: "
                    f"{fig['seconds']:.1f} s, {rate:.1f} items/s, {mib:.1f} MiB/s; "
                    f"items by worker {sorted(fig['spread'].values(), reverse=True)}"
                )
                for name, (peak, pss) in fig["memory_mib"].items():
                    print(f"    {name:18} peak RSS {peak:5d} MiB   PSS now {pss:5d} MiB")
    finally:
        src.cleanup()


if __name__ == "__main__":
    main()
