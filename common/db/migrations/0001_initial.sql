-- The whole data model of DESIGN.md: tenants, tokens, instances, rules,
-- sync tasks, items and webhook events. Constraints protect it so that a bug
-- in the application cannot store what the model forbids.

CREATE TABLE tenants (
    id          uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    name        text NOT NULL UNIQUE CHECK (length(name) BETWEEN 1 AND 128),
    created_at  timestamptz NOT NULL DEFAULT now()
);

-- Only a SHA-256 of the token is stored; the token is shown once.
CREATE TABLE api_tokens (
    id            uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    tenant_id     uuid NOT NULL REFERENCES tenants(id) ON DELETE CASCADE,
    token_hash    bytea NOT NULL UNIQUE CHECK (length(token_hash) = 32),
    description   text NOT NULL DEFAULT '',
    created_at    timestamptz NOT NULL DEFAULT now(),
    last_used_at  timestamptz,
    revoked_at    timestamptz
);
CREATE INDEX api_tokens_tenant ON api_tokens (tenant_id);

CREATE TABLE instances (
    id                    uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    tenant_id             uuid NOT NULL REFERENCES tenants(id) ON DELETE CASCADE,
    name                  text NOT NULL CHECK (length(name) BETWEEN 1 AND 128),
    url                   text NOT NULL CHECK (url ~ '^https?://'),
    region                text NOT NULL DEFAULT '',
    kind                  text NOT NULL DEFAULT 'distribution'
                          CHECK (kind IN ('distribution', 'harbor')),
    verify_tls            boolean NOT NULL DEFAULT true,
    username              text,
    -- Fernet token (MultiFernet, FERRY_SECRET_KEYS); never plain text.
    password_enc          bytea,
    -- Webhook secrets: hashes of the current and the previous secret, so a
    -- rotation does not break a registry still sending the old one.
    webhook_secret_hash       bytea,
    webhook_secret_prev_hash  bytea,
    max_concurrent_copies integer NOT NULL DEFAULT 8 CHECK (max_concurrent_copies BETWEEN 1 AND 256),
    task_seq              bigint NOT NULL DEFAULT 0,
    created_at            timestamptz NOT NULL DEFAULT now(),
    updated_at            timestamptz NOT NULL DEFAULT now(),
    UNIQUE (tenant_id, name),
    UNIQUE (id, tenant_id),
    CHECK (password_enc IS NULL OR username IS NOT NULL)
);

CREATE TABLE rules (
    id                  uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    tenant_id           uuid NOT NULL REFERENCES tenants(id) ON DELETE CASCADE,
    name                text NOT NULL CHECK (name ~ '^[a-z0-9][a-z0-9._-]{0,63}$'),
    description         text NOT NULL DEFAULT '',
    source_instance_id  uuid NOT NULL,
    source_namespace    text NOT NULL CHECK (source_namespace <> '' AND source_namespace !~ '/'),
    repository_filter   text NOT NULL DEFAULT '',
    tag_filter          text NOT NULL DEFAULT '',
    repository_exclude  text NOT NULL DEFAULT '',
    tag_exclude         text NOT NULL DEFAULT '',
    filter_syntax       text NOT NULL DEFAULT 'regex' CHECK (filter_syntax IN ('regex', 'glob')),
    resource_types      text[] NOT NULL DEFAULT ARRAY['image', 'chart']
                        CHECK (cardinality(resource_types) > 0
                               AND resource_types <@ ARRAY['image', 'chart']),
    target_instance_id  uuid NOT NULL REFERENCES instances(id) ON DELETE RESTRICT,
    target_namespace    text NOT NULL DEFAULT '' CHECK (target_namespace !~ '/'),
    cross_tenant        boolean NOT NULL DEFAULT false,
    target_account_id   uuid REFERENCES tenants(id) ON DELETE CASCADE,
    target_username     text,
    target_password_enc bytea,
    override            boolean NOT NULL DEFAULT false,
    enabled             boolean NOT NULL DEFAULT true,
    schedule            text,
    schedule_timezone   text NOT NULL DEFAULT 'UTC',
    next_run_at         timestamptz,
    created_at          timestamptz NOT NULL DEFAULT now(),
    updated_at          timestamptz NOT NULL DEFAULT now(),
    -- A rule's source always belongs to the rule's own tenant.
    FOREIGN KEY (source_instance_id, tenant_id) REFERENCES instances(id, tenant_id)
        ON DELETE RESTRICT,
    UNIQUE (source_instance_id, name),
    CHECK (NOT cross_tenant OR (target_account_id IS NOT NULL
                                AND target_username IS NOT NULL
                                AND target_password_enc IS NOT NULL)),
    CHECK (cross_tenant OR (target_account_id IS NULL AND target_password_enc IS NULL))
);
CREATE INDEX rules_tenant ON rules (tenant_id);
CREATE INDEX rules_target ON rules (target_instance_id);
CREATE INDEX rules_due ON rules (next_run_at) WHERE enabled AND schedule IS NOT NULL;

CREATE TABLE sync_tasks (
    id                  uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    -- Readable id, unique in the source instance and (with its prefix) globally.
    task_id             text NOT NULL UNIQUE,
    tenant_id           uuid NOT NULL REFERENCES tenants(id) ON DELETE CASCADE,
    rule_id             uuid REFERENCES rules(id) ON DELETE SET NULL,
    source_instance_id  uuid NOT NULL REFERENCES instances(id) ON DELETE CASCADE,
    trigger             text NOT NULL CHECK (trigger IN ('manual', 'push', 'schedule', 'retry')),
    status              text NOT NULL DEFAULT 'Pending'
                        CHECK (status IN ('Pending', 'InProgress', 'Succeeded',
                                          'PartiallySucceeded', 'Failed', 'Stopped', 'Skipped')),
    message             text NOT NULL DEFAULT '',
    stop_requested      boolean NOT NULL DEFAULT false,
    retry_of            uuid REFERENCES sync_tasks(id) ON DELETE SET NULL,
    total               integer NOT NULL DEFAULT 0,
    copied              integer NOT NULL DEFAULT 0,
    up_to_date          integer NOT NULL DEFAULT 0,
    kept                integer NOT NULL DEFAULT 0,
    failed              integer NOT NULL DEFAULT 0,
    stopped             integer NOT NULL DEFAULT 0,
    repositories_count  integer NOT NULL DEFAULT 0,
    bytes_transferred   bigint NOT NULL DEFAULT 0,
    success_rate        numeric(5, 4) CHECK (success_rate BETWEEN 0 AND 1),
    created_at          timestamptz NOT NULL DEFAULT now(),
    started_at          timestamptz,
    finished_at         timestamptz
);
CREATE INDEX sync_tasks_rule ON sync_tasks (rule_id, created_at DESC);
CREATE INDEX sync_tasks_open ON sync_tasks (status) WHERE status IN ('Pending', 'InProgress');

CREATE TABLE sync_items (
    id                 bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    task_id            uuid NOT NULL REFERENCES sync_tasks(id) ON DELETE CASCADE,
    source_repository  text NOT NULL,
    source_tag         text NOT NULL,
    target_repository  text NOT NULL,
    target_tag         text NOT NULL,
    kind               text CHECK (kind IN ('image', 'index', 'chart', 'artifact')),
    source_digest      text,
    digest             text,
    status             text NOT NULL DEFAULT 'pending'
                       CHECK (status IN ('pending', 'running', 'copied', 'up-to-date',
                                         'kept', 'failed', 'stopped')),
    reason             text,
    attempts           integer NOT NULL DEFAULT 0,
    -- A running item's claim expires; reconciliation re-queues it after that.
    lease_until        timestamptz,
    bytes_transferred  bigint NOT NULL DEFAULT 0,
    blobs_skipped      integer NOT NULL DEFAULT 0,
    blobs_mounted      integer NOT NULL DEFAULT 0,
    blobs_uploaded     integer NOT NULL DEFAULT 0,
    started_at         timestamptz,
    finished_at        timestamptz,
    UNIQUE (task_id, source_repository, source_tag)
);
CREATE INDEX sync_items_open ON sync_items (task_id) WHERE status IN ('pending', 'running');

CREATE TABLE webhook_events (
    id           bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    instance_id  uuid NOT NULL REFERENCES instances(id) ON DELETE CASCADE,
    dedup_key    text NOT NULL,
    repository   text NOT NULL,
    tag          text NOT NULL,
    digest       text,
    payload      jsonb NOT NULL,
    received_at  timestamptz NOT NULL DEFAULT now(),
    processed_at timestamptz,
    UNIQUE (instance_id, dedup_key)
);
CREATE INDEX webhook_events_unprocessed ON webhook_events (received_at) WHERE processed_at IS NULL;
