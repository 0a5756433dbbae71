"""``GET /metrics``: Prometheus text, counters of every process plus exact figures read
from PostgreSQL and Redis at scrape time."""

from __future__ import annotations

from collections.abc import Iterator

import redis
from prometheus_client import (
    CONTENT_TYPE_LATEST,
    REGISTRY,
    CollectorRegistry,
    generate_latest,
    multiprocess,
)
from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from common import db as database
from common.db import observe as figures
from common.domain.vocab import QueueName
from common.security.tokens import hash_token, matches
from common.services.rule_health import health_of_rules
from common.settings import Settings, metrics_directory
from common.sync.leases import PREFIX

# kombu's Redis transport keeps a queue's priorities in lists named queue + these suffixes.
_PRIORITY_SUFFIXES = ("", "\x06\x163", "\x06\x166", "\x06\x169")
HEALTH_STATES = ("ok", "degraded", "broken")


class StoredFigures(Collector):
    """Gauges read when scraped: the task log, items, rule health, queues, copy slots."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings

    def collect(self) -> Iterator[Metric]:
        with database.transaction(self.settings) as conn:
            tasks = figures.tasks_by_trigger_and_status(conn)
            items = figures.items_by_outcome(conn)
            rules = figures.rules(conn)
            targets = figures.target_instances(conn)
        health = health_of_rules(self.settings, rules)
        yield _family(
            "ferry_tasks",
            "Sync tasks in the task log, by trigger and status.",
            ["trigger", "status"],
            [((r["trigger"], r["status"]), r["n"]) for r in tasks],
        )
        yield _family(
            "ferry_items",
            "Items of every task in the task log, by outcome.",
            ["outcome"],
            [((r["status"],), r["n"]) for r in items],
        )
        yield _family(
            "ferry_rule_health",
            "1 for each rule's health state: ok, degraded (last task failed or partly "
            "succeeded, or its webhook went silent) or broken (credentials refused, registry "
            "unreachable, blocked or suspended), as the API shows it.",
            ["rule", "state", "enabled"],
            [((str(r.id), health[r.id].state.value, str(r.enabled).lower()), 1) for r in rules],
        )
        yield from self._redis_figures(targets)

    def _redis_figures(self, targets: list[str]) -> Iterator[Metric]:
        client = redis.Redis.from_url(self.settings.require_redis_url())
        try:
            depth = [
                ((str(q),), sum(client.llen(str(q) + s) for s in _PRIORITY_SUFFIXES))
                for q in QueueName
            ]
            now = float(client.time()[0])
            slots = [((t,), client.zcount(f"{PREFIX}sem:{t}", now, "+inf")) for t in targets]
        finally:
            client.close()
        yield _family("ferry_queue_depth", "Messages waiting per queue.", ["queue"], depth)
        yield _family(
            "ferry_target_copy_slots_in_use",
            "Copies running into each target instance (its max_concurrent_copies semaphore).",
            ["instance"],
            slots,
        )


def _family(
    name: str, doc: str, labels: list[str], samples: list[tuple[tuple[str, ...], float]]
) -> GaugeMetricFamily:
    family = GaugeMetricFamily(name, doc, labels=labels)
    for values, value in samples:
        family.add_metric(list(values), value)
    return family


def process_counters() -> bytes:
    """Counters and histograms: every process's (multiprocess mode) or this one's."""
    directory = metrics_directory()
    if directory:
        registry = CollectorRegistry()
        multiprocess.MultiProcessCollector(registry, path=directory)
        return generate_latest(registry)
    return generate_latest(REGISTRY)


def render(settings: Settings) -> tuple[bytes, str]:
    """The whole exposition and its content type."""
    stored = CollectorRegistry()
    stored.register(StoredFigures(settings))
    return process_counters() + generate_latest(stored), CONTENT_TYPE_LATEST


def token_allows(settings: Settings, authorization: str | None) -> bool:
    """True when no FERRY_METRICS_TOKEN is set, or the header carries it as a Bearer token."""
    if not settings.metrics_token:
        return True
    scheme, _, token = (authorization or "").partition(" ")
    return scheme.lower() == "bearer" and matches(token.strip(), hash_token(settings.metrics_token))
