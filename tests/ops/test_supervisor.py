"""The supervisor restarts a dead child with backoff and stops only on a crash loop."""

from __future__ import annotations

import sys

from common.runtime import supervisor as sup
from common.settings import load_settings


def test_a_crash_looping_child_stops_everything_and_says_which(tmp_path, monkeypatch):
    monkeypatch.setattr(sup, "BACKOFF_BASE", 0.01)
    monkeypatch.setattr(sup, "BACKOFF_MAX", 0.05)
    said: list[str] = []
    settings = load_settings({"FERRY_DATA_DIR": str(tmp_path)})
    runner = sup.Supervisor(settings, "u:p", said.append)
    runner.children = [
        sup.Child("steady", [sys.executable, "-c", "import time; time.sleep(60)"]),
        sup.Child("flaky", [sys.executable, "-c", "import sys; sys.exit(3)"]),
    ]
    assert runner.run() == 1
    restarts = [m for m in said if m.startswith("flaky exited with 3; restarting it in")]
    assert len(restarts) == sup.MAX_RESTARTS
    assert said[-1].startswith(
        f"flaky died {sup.MAX_RESTARTS + 1} times within {sup.CRASH_WINDOW:.0f}s "
        "(last exit status 3)"
    )
    assert not any(m.startswith("steady") for m in said)  # the others kept running
    assert all(c.process is None or c.process.poll() is not None for c in runner.children)
