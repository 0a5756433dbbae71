-- The last registry check of an instance (console: health with last check and reason).
-- Every instance was checked when it was saved; a later check records its failure here.
ALTER TABLE instances
    ADD COLUMN checked_at timestamptz DEFAULT now(),
    ADD COLUMN check_error text CHECK (length(check_error) <= 2048);
UPDATE instances SET checked_at = updated_at;
