"""Reconciliation's housekeeping: lost events re-sent, old processed events purged, and
re-queues claimed so that two beats send each piece of work once."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

from psycopg.types.json import Jsonb

from common.sync import runner


def test_reconcile_resends_lost_events_and_purges_old_ones(settings, db):
    tenant = db.execute("INSERT INTO tenants (name) VALUES ('t') RETURNING id").fetchone()["id"]
    inst = db.execute(
        "INSERT INTO instances (tenant_id, name, url) VALUES (%s, 'r', "
        "'http://r:5000') RETURNING id",
        (tenant,),
    ).fetchone()["id"]

    def event(key, received_ago, processed_ago=None):
        return db.execute(
            "INSERT INTO webhook_events (instance_id, dedup_key, repository, tag, payload, "
            "received_at, processed_at) VALUES (%s, %s, 'p/a', 'v1', %s, "
            "now() - make_interval(secs => %s), now() - make_interval(secs => %s)) RETURNING id",
            (inst, key, Jsonb({}), received_ago, processed_ago),
        ).fetchone()["id"]

    lost = event("lost", received_ago=600)  # never processed: its message was lost
    event("fresh", received_ago=5)  # not processed yet, but young: leave it
    event("old", received_ago=9 * 86400, processed_ago=8 * 86400)
    event("recent", received_ago=86400, processed_ago=86400)
    resent: list[int] = []
    counts = runner.reconcile(
        settings, lambda i, t: None, lambda t, trig: None, resent.append, stale_seconds=120
    )
    assert resent == [lost]
    assert counts["requeued_events"] == 1 and counts["purged_events"] == 1
    # Re-sent once: a second beat's reconcile within the stale window sends nothing.
    again = runner.reconcile(
        settings, lambda i, t: None, lambda t, trig: None, resent.append, stale_seconds=120
    )
    assert again["requeued_events"] == 0 and resent == [lost]
    left = {r["dedup_key"] for r in db.execute("SELECT dedup_key FROM webhook_events")}
    assert left == {"lost", "fresh", "recent"}


def _stranded_work(db):
    """A task with pending items and no activity for ten minutes, and a lost plan."""
    tenant = db.execute("INSERT INTO tenants (name) VALUES ('t2') RETURNING id").fetchone()["id"]
    inst = db.execute(
        "INSERT INTO instances (tenant_id, name, url) VALUES (%s, 'r', 'http://r:5000') "
        "RETURNING id",
        (tenant,),
    ).fetchone()["id"]
    rule = db.execute(
        "INSERT INTO rules (tenant_id, name, source_instance_id, source_namespace, "
        "target_instance_id) VALUES (%s, 'r', %s, 'p', %s) RETURNING id",
        (tenant, inst, inst),
    ).fetchone()["id"]

    def task(task_id, status):
        return db.execute(
            "INSERT INTO sync_tasks (rule_id, tenant_id, source_instance_id, task_id, trigger, "
            "status, created_at, started_at) VALUES (%s, %s, %s, %s, 'manual', %s, "
            "now() - interval '10 minutes', now() - interval '10 minutes') RETURNING id",
            (rule, tenant, inst, task_id, status),
        ).fetchone()["id"]

    stranded = task("t-1", "InProgress")
    for tag in ("v1", "v2", "v3"):
        db.execute(
            "INSERT INTO sync_items (task_id, source_repository, source_tag, target_repository, "
            "target_tag) VALUES (%s, 'p/a', %s, 'p/a', %s)",
            (stranded, tag, tag),
        )
    unplanned = task("t-2", "Pending")
    return stranded, unplanned


def test_two_reconciles_at_once_send_each_piece_of_work_once(settings, db):
    _, unplanned = _stranded_work(db)
    copies, plans = [], []

    def one_beat(_):
        return runner.reconcile(
            settings, lambda i, t: copies.append(i), lambda t, trig: plans.append(t)
        )

    with ThreadPoolExecutor(4) as pool:
        results = list(pool.map(one_beat, range(4)))
    assert sum(r["requeued_items"] for r in results) == 3
    assert sum(r["replanned_tasks"] for r in results) == 1
    assert len(copies) == len(set(copies)) == 3
    assert plans == [unplanned]
    # The next tick, within the stale window, finds nothing left to send.
    again = one_beat(0)
    assert (again["requeued_items"], again["replanned_tasks"]) == (0, 0)
