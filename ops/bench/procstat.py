"""CPU seconds of the processes a benchmark runs on, read from /proc.

A component is a set of processes found at each reading (by pid, process
group or command name); its CPU time is user + system of each process plus
that of its children already waited for, so backends and pool children that
exited count through their parent. :class:`CpuMeter` takes a reading before
and after a phase and reports the difference per component.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path

TICK = os.sysconf("SC_CLK_TCK")

# A component's processes: a function from nothing to pids, evaluated at each reading.
Finder = Callable[[], set[int]]


def _stat(pid: int) -> list[str] | None:
    try:
        text = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    # The command name is in parentheses and may contain spaces.
    return text[text.rindex(")") + 2 :].split()


def cpu_seconds(pid: int) -> float:
    """utime + stime + cutime + cstime of ``pid`` (0 when it is gone)."""
    fields = _stat(pid)
    if fields is None:
        return 0.0
    # After the name: state(0) ppid(1) pgrp(2) ... utime(11) stime(12) cutime(13) cstime(14).
    return sum(int(fields[i]) for i in (11, 12, 13, 14)) / TICK


def _all_pids() -> list[int]:
    return [int(p) for p in os.listdir("/proc") if p.isdigit()]


def by_group(pgid: int) -> Finder:
    """Every process of the process group ``pgid`` (a worker and its pool)."""

    def find() -> set[int]:
        out = set()
        for pid in _all_pids():
            fields = _stat(pid)
            if fields is not None and int(fields[2]) == pgid:
                out.add(pid)
        return out

    return find


def by_pids(*pids: int) -> Finder:
    return lambda: set(pids)


def by_name(*names: str) -> Finder:
    """Every process whose command name (``/proc/PID/comm``) starts with one of ``names``."""

    def find() -> set[int]:
        out = set()
        for pid in _all_pids():
            try:
                comm = Path(f"/proc/{pid}/comm").read_text().strip()
            except OSError:
                continue
            if comm.startswith(names):
                out.add(pid)
        return out

    return find


class CpuMeter:
    """CPU seconds per component between :meth:`start` and :meth:`stop`."""

    def __init__(self, components: dict[str, Finder]) -> None:
        self.components = components
        self._before: dict[str, dict[int, float]] = {}

    def _read(self) -> dict[str, dict[int, float]]:
        return {
            name: {pid: cpu_seconds(pid) for pid in find()}
            for name, find in self.components.items()
        }

    def start(self) -> None:
        self._before = self._read()

    def stop(self) -> dict[str, float]:
        """Seconds used by each component since :meth:`start` (processes that started
        meanwhile count in full; those that ended count through their parent)."""
        after = self._read()
        out = {}
        for name, pids in after.items():
            before = self._before.get(name, {})
            out[name] = round(sum(t - before.get(pid, 0.0) for pid, t in pids.items()), 2)
        return out
