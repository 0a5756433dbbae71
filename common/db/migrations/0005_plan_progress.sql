-- A task may finish only once its plan has recorded that listing is complete
-- (listed_at): items written as up-to-date while the plan still lists must not
-- let reconciliation or the last copy close the task early. The plan holds a
-- lease while it runs (renewed by a heartbeat), so reconciliation re-plans only
-- a plan whose worker died, and plan_attempts caps how often a crashing plan
-- is retried before the task is Failed.
ALTER TABLE sync_tasks ADD COLUMN listed_at timestamptz;
ALTER TABLE sync_tasks ADD COLUMN plan_attempts integer NOT NULL DEFAULT 0;
ALTER TABLE sync_tasks ADD COLUMN plan_lease_until timestamptz;
-- Tasks already past planning keep the old behaviour; Pending ones are planned anew.
UPDATE sync_tasks SET listed_at = coalesce(finished_at, started_at, created_at)
WHERE status <> 'Pending';
