-- Issue 14: tag selection by semantic version and age, referrers, delete propagation.
--   semver: a constraint such as '>=1.2 <2' on tags that parse as semantic versions ('' = off)
--   latest: keep only the N newest selected tags per repository (NULL = all)
--   include_referrers: copy signatures, SBOMs and attestations with their subject
--   deletion: propagate deletions of what this rule copied (off, as in the product)
ALTER TABLE rules
    ADD COLUMN semver            text NOT NULL DEFAULT '' CHECK (length(semver) <= 256),
    ADD COLUMN latest            integer CHECK (latest IS NULL OR latest BETWEEN 1 AND 100000),
    ADD COLUMN include_referrers boolean NOT NULL DEFAULT true,
    ADD COLUMN deletion          boolean NOT NULL DEFAULT false;

-- Referrers are items of their own kind; deletions are items with status 'deleted'.
ALTER TABLE sync_items DROP CONSTRAINT sync_items_kind_check;
ALTER TABLE sync_items ADD CONSTRAINT sync_items_kind_check
    CHECK (kind IN ('image', 'index', 'chart', 'artifact', 'referrer'));
ALTER TABLE sync_items DROP CONSTRAINT sync_items_status_check;
ALTER TABLE sync_items ADD CONSTRAINT sync_items_status_check
    CHECK (status IN ('pending', 'running', 'copied', 'up-to-date', 'kept', 'failed',
                      'stopped', 'deleted'));
ALTER TABLE sync_tasks ADD COLUMN deleted integer NOT NULL DEFAULT 0;

-- Webhook events are pushes or deletions of tags (Distribution, Harbor, TCR).
ALTER TABLE webhook_events
    ADD COLUMN action text NOT NULL DEFAULT 'push' CHECK (action IN ('push', 'delete'));

-- What this rule last put at a target tag: the newest copied or up-to-date item.
CREATE INDEX sync_items_target_tag ON sync_items (target_repository, target_tag)
    WHERE status IN ('copied', 'up-to-date', 'deleted');
