"""The fault suite: real processes, real registries, one fault per test.

Every case checks three things (:class:`FaultCase`): the task ends with a
truthful status and reasons, nothing already on the target is lost or wrong
(a ``keeper`` image pushed there first is still exactly there), and no secret
(registry passwords, the encryption key, tokens) appears in any log.

Each case records a row (case, outcome, time to recover) with
``record_property`` and in ``$FERRY_FAULT_TABLE`` (default
``<tmp>/ferry-fault-table.md``), rewritten after every case, so the table
survives ``pytest -n``.
"""

from __future__ import annotations

import json
import os
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from common.settings import Settings
from tests.conftest import TEST_KEY
from tests.support.api import Api, tenant_api
from tests.support.oci import get_manifest, push_image
from tests.support.registry import RegistryServer
from tests.support.worker import WorkerProcess

pytestmark = pytest.mark.slow

# The passwords of the src and dst fixtures, and the Fernet key of the test session.
SECRETS = ("alice-pw", "bob-pw", TEST_KEY)
TABLE = Path(
    os.environ.get("FERRY_FAULT_TABLE", Path(tempfile.gettempdir()) / "ferry-fault-table.md")
)
_ROWS = TABLE.with_suffix(".jsonl")


def _write_table() -> None:
    rows: dict[str, dict[str, Any]] = {}
    for line in _ROWS.read_text().splitlines() if _ROWS.exists() else []:
        row = json.loads(line)
        rows[row["case"]] = row  # the latest run of a case wins
    lines = ["| case | outcome | time to recover |", "| --- | --- | --- |"]
    for row in sorted(rows.values(), key=lambda r: r["order"]):
        lines.append(f"| {row['case']} | {row['outcome']} | {row['recover']} |")
    TABLE.write_text("\n".join(lines) + "\n")


class FaultCase:
    """One case of the suite: its row in the table and the three checks."""

    def __init__(self, request: pytest.FixtureRequest, caplog: pytest.LogCaptureFixture) -> None:
        self.request, self.caplog = request, caplog
        self.logs: list[Path] = []
        self.started = time.monotonic()

    def watch_log(self, *paths: Path) -> None:
        """Also scan these log files for secrets at the end."""
        self.logs.extend(paths)

    def record(self, case: str, outcome: str, recover: float | None) -> None:
        """The table's row for this case (``recover`` in seconds, None: not applicable)."""
        text = "-" if recover is None else f"{recover:.1f} s"
        self.request.node.user_properties.append(("fault_case", case))
        self.request.node.user_properties.append(("fault_outcome", outcome))
        self.request.node.user_properties.append(("fault_recover", text))
        order = self.request.node.nodeid
        row = {"case": case, "outcome": outcome, "recover": text, "order": order}
        with open(_ROWS, "a") as out:
            out.write(json.dumps(row) + "\n")
        _write_table()

    def no_secret_in_logs(self, *texts: str, secrets: tuple[str, ...] = ()) -> None:
        """No secret (of :data:`SECRETS` and ``secrets``) in the captured logs, the watched
        log files, or ``texts``."""
        corpus = [self.caplog.text, *texts]
        corpus += [p.read_text(errors="replace") for p in self.logs if p.exists()]
        joined = "\n".join(corpus)
        for secret in (*SECRETS, *secrets):
            assert secret not in joined, f"a secret appears in the logs ({secret[:3]}...)"
        assert "Bearer ey" not in joined and "Basic " not in joined


@pytest.fixture
def case(request: pytest.FixtureRequest, caplog: pytest.LogCaptureFixture) -> FaultCase:
    return FaultCase(request, caplog)


@pytest.fixture
def worker(settings: Settings, case: FaultCase) -> Iterator[WorkerProcess]:
    """A real Celery worker on every queue; its log is scanned for secrets."""
    proc = WorkerProcess(settings, name="faults").start()
    case.watch_log(proc.log_path)
    yield proc
    proc.stop()


@pytest.fixture
def api(client, settings: Settings) -> Api:
    return tenant_api(client, settings, "faults")


@pytest.fixture
def keeper(dst: RegistryServer) -> Keeper:
    """An image already on the target before the case: it must stay exactly as it is."""
    return Keeper(dst)


class Keeper:
    def __init__(self, dst: RegistryServer) -> None:
        self.dst = dst
        self.pushed = push_image(dst.session(), dst.url, "keep/app", "v1")

    def intact(self) -> None:
        now = get_manifest(self.dst.session(), self.dst.url, "keep/app", "v1")
        assert now is not None and now.digest == self.pushed.digest, "the keeper changed"
