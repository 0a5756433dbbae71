-- The worker (Celery hostname) whose copy last claimed an item, so a task's
-- items show how its copies spread over the workers.
ALTER TABLE sync_items ADD COLUMN worker text;

-- Reconciliation claims a task before re-queueing its items or its plan with
-- a compare-and-set on this column, so a second beat started by mistake (or
-- a slow tick) never sends the same work twice.
ALTER TABLE sync_tasks ADD COLUMN requeued_at timestamptz;

-- Likewise for webhook events whose processing message was lost.
ALTER TABLE webhook_events ADD COLUMN requeued_at timestamptz;
