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

-- A rotated-out webhook secret works until this time (FERRY_WEBHOOK_SECRET_GRACE,
-- or never when the rotation revoked it). Secrets rotated out before this
-- migration get the default grace from now.
ALTER TABLE instances ADD COLUMN webhook_secret_prev_expires_at timestamptz;
UPDATE instances SET webhook_secret_prev_expires_at = now() + interval '24 hours'
WHERE webhook_secret_prev_hash IS NOT NULL;
