"""Counters and histograms that processes update as work happens.

With ``PROMETHEUS_MULTIPROC_DIR`` set (``ferry up`` sets it for every child),
each process writes its values to files in that directory and ``GET /metrics``
adds them up across the API, the workers and beat. Figures the database or
Redis hold exactly (tasks, items, rule health, queue depth, target slots) are
read at scrape time instead (``common.services.metrics``).

Labels are bounded words (outcomes, results, triggers), never names from a
registry or a tenant.
"""

from __future__ import annotations

from prometheus_client import Counter, Histogram, values

from common.settings import MULTIPROC_ENV, metrics_directory

__all__ = ["MULTIPROC_ENV"]


def _multiprocess_values() -> None:
    """Use the multiprocess value store when the directory is configured, even if
    prometheus_client was imported before the variable was set (it chooses at import)."""
    if metrics_directory() and values.ValueClass is values.MutexValue:
        values.ValueClass = values.MultiProcessValue()


_multiprocess_values()

_DURATION_BUCKETS = (0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300, 600, 1800)
_LATENCY_BUCKETS = (0.25, 0.5, 1, 2, 5, 10, 20, 30, 60, 120, 300, 600, 1800, 3600)

ITEMS_COPIED = Counter(
    "ferry_copy_items",
    "Items a copy worker finished, by outcome (copied, up-to-date, kept, failed, stopped).",
    ["outcome"],
)
COPY_RETRIES = Counter(
    "ferry_copy_retries", "Copy attempts that failed with a retryable error and were retried."
)
BYTES_COPIED = Counter("ferry_bytes_copied", "Bytes of blobs uploaded to targets.")
COPY_DURATION = Histogram(
    "ferry_copy_duration_seconds",
    "Time one item's copy took (claim to recorded outcome), by outcome.",
    ["outcome"],
    buckets=_DURATION_BUCKETS,
)
PUSH_TO_REPLICA = Histogram(
    "ferry_push_to_replica_seconds",
    "From a push webhook's arrival to its tag recorded on the target (push tasks).",
    buckets=_LATENCY_BUCKETS,
)
WEBHOOK_EVENTS = Counter(
    "ferry_webhook_events",
    "Webhook deliveries' push events: received (new), duplicate (de-duplicated), "
    "refused (bad secret, body or rate limit; counted per delivery).",
    ["result"],
)
WEBHOOK_RESULTS = ("received", "duplicate", "refused")


def item_finished(outcome: str, seconds: float, bytes_copied: int) -> None:
    """One item's copy ended with ``outcome`` after ``seconds``."""
    ITEMS_COPIED.labels(outcome).inc()
    COPY_DURATION.labels(outcome).observe(max(seconds, 0.0))
    if bytes_copied:
        BYTES_COPIED.inc(bytes_copied)


def copy_retried(bytes_copied: int) -> None:
    """A copy attempt failed retryably; what it uploaded still crossed the wire."""
    COPY_RETRIES.inc()
    if bytes_copied:
        BYTES_COPIED.inc(bytes_copied)


def replicated_after(seconds: float) -> None:
    """A pushed tag reached its target ``seconds`` after the webhook arrived."""
    PUSH_TO_REPLICA.observe(max(seconds, 0.0))


def webhook_events(result: str, count: int = 1) -> None:
    """``count`` push events of one delivery were received, duplicates, or refused."""
    if result not in WEBHOOK_RESULTS:
        raise ValueError(f"unknown webhook result {result!r}")
    if count:
        WEBHOOK_EVENTS.labels(result).inc(count)
