-- What the plan read for a pending item, so that its first copy does not read
-- it again: the source manifest (exact bytes and media type; a manifest is at
-- most 4 MiB) and whether and where the target tag pointed then. The manifest
-- is cleared once the item has an outcome.
ALTER TABLE sync_items
    ADD COLUMN source_manifest   bytea,
    ADD COLUMN source_media_type text,
    ADD COLUMN target_checked    boolean NOT NULL DEFAULT false,
    ADD COLUMN target_digest     text;
