"""Ferry's tests.

Prometheus values of a test process and of every worker it starts add up in one
directory of its own: prometheus-client chooses multiprocess mode when the variable
is set before it is imported, so it is set here, before any conftest imports Ferry.
"""

import atexit
import os
import shutil
import tempfile

METRICS_DIR = tempfile.mkdtemp(prefix="ferry-test-metrics-")
os.environ["PROMETHEUS_MULTIPROC_DIR"] = METRICS_DIR
atexit.register(shutil.rmtree, METRICS_DIR, ignore_errors=True)
