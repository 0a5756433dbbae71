"""Figures of the sync log: a task's progress, and the chart of the last tasks as inline SVG
coordinates (drawn by the template; no chart library)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from common.domain.models import Task
from common.domain.vocab import OPEN_TASK_STATUSES

WIDTH, HEIGHT, PAD = 600, 120, 4
SLOTS = 30  # the chart always has room for the last 30 tasks; the newest is on the right


def finished_items(task: Task) -> int:
    return task.copied + task.up_to_date + task.kept + task.failed + task.stopped


def progress(task: Task) -> dict[str, Any]:
    """What the progress bar and the log's row show of a task, as the polling JSON sends it."""
    done = finished_items(task)
    percent = 100 if task.status not in OPEN_TASK_STATUSES else 0
    if task.total and task.status in OPEN_TASK_STATUSES:
        percent = int(100 * done / task.total)
    return {
        "task_id": task.task_id,
        "status": task.status.value if hasattr(task.status, "value") else str(task.status),
        "open": task.status in OPEN_TASK_STATUSES,
        "total": task.total,
        "done": done,
        "percent": percent,
        "success_rate": rate(task),
        "time_spent": seconds(task.time_spent_seconds),
        "repositories_count": task.repositories_count,
        "bytes": size(task.bytes_transferred),
        "failed": task.failed,
    }


def rate(task: Task) -> str:
    return "—" if task.success_rate is None else f"{float(task.success_rate) * 100:.1f}%"


def seconds(value: float | None) -> str:
    if value is None:
        return "—"
    if value < 60:
        return f"{value:.1f} s"
    minutes, secs = divmod(int(value), 60)
    return f"{minutes} min {secs} s" if minutes < 60 else f"{minutes // 60} h {minutes % 60} min"


def size(value: int) -> str:
    amount = float(value)
    for unit in ("B", "KiB", "MiB", "GiB"):
        if amount < 1024 or unit == "GiB":
            return f"{amount:.0f} {unit}" if unit == "B" else f"{amount:.1f} {unit}"
        amount /= 1024
    return f"{amount:.1f} GiB"


def throughput(task: Task) -> str:
    if not task.time_spent_seconds:
        return "—"
    return size(int(task.bytes_transferred / task.time_spent_seconds)) + "/s"


@dataclass(frozen=True)
class Bar:
    x: float
    y: float
    w: float
    h: float
    status: str
    label: str


@dataclass(frozen=True)
class Chart:
    """The last tasks, oldest on the left: bars for durations, a line for success rates."""

    width: int
    height: int
    bars: list[Bar]
    rate_points: str
    dots: list[tuple[float, float]]
    longest: str


def chart(tasks: list[Task]) -> Chart | None:
    """The chart of ``tasks`` (newest first, as the log lists them), or None without any."""
    if not tasks:
        return None
    ordered = list(reversed(tasks))
    longest = max((t.time_spent_seconds or 0.0) for t in ordered) or 1.0
    ordered = ordered[-SLOTS:]
    step = WIDTH / SLOTS
    usable = HEIGHT - 2 * PAD
    bars, points, dots = [], [], []
    for i, t in enumerate(ordered, start=SLOTS - len(ordered)):
        h = max(1.0, usable * (t.time_spent_seconds or 0.0) / longest)
        x = i * step + step * 0.15
        bars.append(
            Bar(
                x=round(x, 1),
                y=round(HEIGHT - PAD - h, 1),
                w=round(step * 0.7, 1),
                h=round(h, 1),
                status=str(t.status),
                label=f"{t.task_id}: {t.status}, {seconds(t.time_spent_seconds)}, {rate(t)}",
            )
        )
        if t.success_rate is not None:
            y = HEIGHT - PAD - usable * float(t.success_rate)
            dots.append((round(x + step * 0.35, 1), round(y, 1)))
            points.append(f"{dots[-1][0]},{dots[-1][1]}")
    return Chart(WIDTH, HEIGHT, bars, " ".join(points), dots, seconds(longest))
