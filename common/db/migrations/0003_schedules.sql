-- Full rescans claim a rule with a compare-and-set on this column, so two beat
-- processes never rescan the same rule twice in one interval.
ALTER TABLE rules ADD COLUMN last_rescan_at timestamptz;
