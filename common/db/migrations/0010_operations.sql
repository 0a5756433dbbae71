-- Operating Ferry (issue 15): drift reports, rule health, notifications.

-- The last health check of a rule. The live refusal (blocked, suspended) is read
-- from the rule itself; this row holds what a check found.
CREATE TABLE rule_health (
    rule_id     uuid PRIMARY KEY REFERENCES rules(id) ON DELETE CASCADE,
    state       text NOT NULL CHECK (state IN ('ok', 'degraded', 'broken')),
    reason      text NOT NULL DEFAULT '',
    -- Since when the state is what it is (kept while checks find the same state).
    since       timestamptz NOT NULL DEFAULT now(),
    checked_at  timestamptz NOT NULL DEFAULT now()
);

-- One drift check of a rule: what the rule selects compared with the target.
CREATE TABLE drift_reports (
    id           uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    tenant_id    uuid NOT NULL REFERENCES tenants(id) ON DELETE CASCADE,
    rule_id      uuid REFERENCES rules(id) ON DELETE CASCADE,
    status       text NOT NULL DEFAULT 'Pending'
                 CHECK (status IN ('Pending', 'InProgress', 'Succeeded', 'Failed')),
    message      text NOT NULL DEFAULT '',
    missing      integer NOT NULL DEFAULT 0,
    differs      integer NOT NULL DEFAULT 0,
    extra        integer NOT NULL DEFAULT 0,
    in_sync      integer NOT NULL DEFAULT 0,
    created_at   timestamptz NOT NULL DEFAULT now(),
    started_at   timestamptz,
    finished_at  timestamptz
);
CREATE INDEX drift_reports_rule ON drift_reports (rule_id, created_at DESC);

CREATE TABLE drift_entries (
    id                 bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    report_id          uuid NOT NULL REFERENCES drift_reports(id) ON DELETE CASCADE,
    kind               text NOT NULL CHECK (kind IN ('missing', 'differs', 'extra', 'in_sync')),
    source_repository  text,
    source_tag         text,
    target_repository  text NOT NULL,
    target_tag         text NOT NULL,
    source_digest      text,
    target_digest      text,
    -- For `differs`: whether a sync would replace the target tag (the rule's override).
    override_changes   boolean
);
CREATE INDEX drift_entries_report ON drift_entries (report_id, kind, id);

-- Where to tell people: apprise URLs (encrypted, FERRY_SECRET_KEYS), for a tenant's
-- every rule (rule_id NULL) or one rule.
CREATE TABLE notifications (
    id          uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    tenant_id   uuid NOT NULL REFERENCES tenants(id) ON DELETE CASCADE,
    rule_id     uuid REFERENCES rules(id) ON DELETE CASCADE,
    name        text NOT NULL,
    urls_enc    bytea NOT NULL,
    -- What a person may see of the addresses: their schemes only (e.g. {json,slack}).
    schemes     text[] NOT NULL,
    on_task     text NOT NULL DEFAULT 'not_succeeded'
                CHECK (on_task IN ('never', 'always', 'not_succeeded', 'failed_only')),
    on_health   boolean NOT NULL DEFAULT true,
    on_drift    boolean NOT NULL DEFAULT true,
    enabled     boolean NOT NULL DEFAULT true,
    created_at  timestamptz NOT NULL DEFAULT now(),
    updated_at  timestamptz NOT NULL DEFAULT now(),
    UNIQUE (tenant_id, name)
);
CREATE INDEX notifications_rule ON notifications (tenant_id, rule_id);

-- Every message sent (or tried): one row per notification and event, which also
-- makes each event go out once however many processes see it.
CREATE TABLE notification_deliveries (
    id               bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    notification_id  uuid NOT NULL REFERENCES notifications(id) ON DELETE CASCADE,
    event            text NOT NULL CHECK (event IN ('task_finished', 'health_changed',
                                                    'drift_found', 'test')),
    event_key        text NOT NULL,
    rule_id          uuid,
    title            text NOT NULL,
    body             text NOT NULL,
    status           text NOT NULL DEFAULT 'pending' CHECK (status IN ('pending', 'sent', 'failed')),
    attempts         integer NOT NULL DEFAULT 0,
    last_error       text NOT NULL DEFAULT '',
    created_at       timestamptz NOT NULL DEFAULT now(),
    updated_at       timestamptz NOT NULL DEFAULT now(),
    UNIQUE (notification_id, event_key)
);
CREATE INDEX notification_deliveries_log ON notification_deliveries (notification_id, id DESC);
