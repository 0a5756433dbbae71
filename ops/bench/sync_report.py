"""What ops/bench/sync_vs_skopeo.py prints: times, the issue's goals, requests and CPU."""

from __future__ import annotations

import argparse
from collections import Counter
from typing import Any

from tests.support.requestlog import Minimum

MiB = 1024 * 1024
# (figure, goal on a LAN, goal with a 40 ms target round trip); None: no goal there.
GOALS = {
    "cold / skopeo cold": (0.40, 0.06),
    "cold / raw copy": (1.25, 1.3),
    "no-op / skopeo no-op": (0.15, 0.02),
    "requests / minimum (cold)": (1.10, 1.10),
    "worker CPU per tag (ms)": (15.0, 15.0),
    "bytes uploaded / unique": (1.0, 1.0),
}


def _total(c: Counter) -> int:
    return sum(c.values())


def _sides(**runs: tuple[Any, Any]) -> dict[str, Any]:
    """Request-count columns ``"<run> src"`` and ``"<run> dst"`` from (source, target) pairs."""
    return {
        f"{run} {side}": counts
        for run, pair in runs.items()
        for side, counts in zip(("src", "dst"), pair, strict=True)
    }


def _requests(title: str, columns: dict[str, Counter]) -> None:
    kinds = sorted({k for c in columns.values() for k in c})
    print(f"\n{title}")
    print(f"{'':16}" + "".join(f"{name:>13}" for name in columns))
    for kind in kinds:
        print(f"{kind:16}" + "".join(f"{c.get(kind, 0):>13}" for c in columns.values()))
    print(f"{'total':16}" + "".join(f"{_total(c):>13}" for c in columns.values()))


def _cpu(phases: dict[str, Any]) -> None:
    names = sorted({k for p in phases.values() for k in p.cpu})
    width = max(18, *(len(n) + 1 for n in names))
    print("\nCPU seconds by component")
    print(" " * width + "".join(f"{label:>14}" for label in phases))
    for name in names:
        print(f"{name:{width}}" + "".join(f"{p.cpu.get(name, 0):>14.2f}" for p in phases.values()))
    print(f"{'wall':{width}}" + "".join(f"{p.seconds:>14.2f}" for p in phases.values()))


def figures(
    data: Any, least: Minimum, ferry: dict, skopeo: dict, raw: Any
) -> dict[str, float | None]:
    """The issue's figures from one run (None where skopeo did not run)."""
    cold, noop = ferry["cold"], ferry["noop"]
    out: dict[str, float | None] = {
        "cold / skopeo cold": cold.seconds / skopeo["cold"].seconds if skopeo else None,
        "cold / raw copy": cold.seconds / raw.seconds,
        "no-op / skopeo no-op": noop.seconds / skopeo["noop"].seconds if skopeo else None,
        "requests / minimum (cold)": (_total(cold.source) + _total(cold.target)) / least.total,
        "worker CPU per tag (ms)": 1000 * cold.cpu.get("worker", 0.0) / data.tags,
        "bytes uploaded / unique": ferry["cold_bytes"] / data.unique_bytes,
    }
    return out


def print_report(
    args: argparse.Namespace, data: Any, least: Minimum, ferry: dict, skopeo: dict, raw: Any
) -> None:
    print(f"\n{'':28}{'cold (s)':>10}{'no-op (s)':>11}")
    print(f"{'ferry sync':28}{ferry['cold'].seconds:>10.1f}{ferry['noop'].seconds:>11.2f}")
    if skopeo:
        print(f"{'skopeo sync --all':28}{skopeo['cold'].seconds:>10.1f}"
              f"{skopeo['noop'].seconds:>11.2f}")  # fmt: skip
    print(f"{'raw 8-stream blob copy':28}{raw.seconds:>10.1f}")
    print(
        f"ferry bytes uploaded: {ferry['cold_bytes'] / MiB:.0f} MiB of "
        f"{data.unique_bytes / MiB:.0f} MiB unique; no-op uploaded {ferry['noop_bytes']} bytes; "
        f"cold items: {ferry['cold_stats']}"
    )
    lan = args.rtt_ms <= 0
    print(f"\n{'figure':30}{'measured':>10}{'goal':>8}  met")
    for name, value in figures(data, least, ferry, skopeo, raw).items():
        goal = GOALS[name][0 if lan else 1]
        if value is None:
            print(f"{name:30}{'-':>10}{goal:>8g}  not measured")
            continue
        met = value <= goal + (0.0005 if name.startswith("bytes") else 0)
        print(f"{name:30}{value:>10.3f}{goal:>8g}  {'yes' if met else 'NO'}")
    cold, noop = ferry["cold"], ferry["noop"]
    columns = _sides(ferry=(cold.source, cold.target), min=(least.source, least.target))
    if skopeo:
        columns |= _sides(skopeo=(skopeo["cold"].source, skopeo["cold"].target))
    columns |= _sides(raw=(raw.source, raw.target))
    _requests("registry requests, cold (access logs; 401 and retried 5xx left out)", columns)
    columns = _sides(ferry=(noop.source, noop.target), min=(least.noop_source, least.noop_target))
    if skopeo:
        columns |= _sides(skopeo=(skopeo["noop"].source, skopeo["noop"].target))
    _requests("registry requests, no-op rescan", columns)
    phases = {"ferry cold": cold, "ferry no-op": noop}
    if skopeo:
        phases |= {"skopeo cold": skopeo["cold"], "skopeo no-op": skopeo["noop"]}
    phases["raw copy"] = raw
    _cpu(phases)
