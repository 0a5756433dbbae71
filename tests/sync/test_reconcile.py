"""Reconciliation's housekeeping: lost events re-sent, old processed events purged."""

from __future__ import annotations

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
    left = {r["dedup_key"] for r in db.execute("SELECT dedup_key FROM webhook_events")}
    assert left == {"lost", "fresh", "recent"}
