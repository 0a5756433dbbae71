-- Accounts (issue 11): users with roles and instance grants, API keys of
-- users (bearer tokens and SecretId/SecretKey pairs) and the audit log.
-- Every existing tenant gets a user "admin" owning its existing tokens, so
-- today's tokens keep working with every right.

CREATE TABLE users (
    id             uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    tenant_id      uuid NOT NULL REFERENCES tenants(id) ON DELETE CASCADE,
    name           text NOT NULL CHECK (name ~ '^[a-z0-9][a-z0-9._@-]{0,63}$'),
    -- argon2id hash in PHC form; NULL: no console password.
    password_hash  text CHECK (password_hash IS NULL OR password_hash LIKE '$argon2id$%'),
    role           text NOT NULL CHECK (role IN ('admin', 'operator', 'viewer')),
    -- Instance ids (as text) or the single element '*'.
    grants         text[] NOT NULL DEFAULT ARRAY['*'] CHECK (cardinality(grants) > 0),
    created_at     timestamptz NOT NULL DEFAULT now(),
    updated_at     timestamptz NOT NULL DEFAULT now(),
    UNIQUE (tenant_id, name),
    UNIQUE (id, tenant_id),
    -- An admin limited to some instances could grant itself the rest.
    CHECK (role <> 'admin' OR grants = ARRAY['*'])
);

INSERT INTO users (tenant_id, name, role) SELECT id, 'admin', 'admin' FROM tenants;

-- api_tokens becomes the table of every API key of a user.
ALTER TABLE api_tokens ADD COLUMN user_id uuid;
UPDATE api_tokens k SET user_id = u.id
  FROM users u WHERE u.tenant_id = k.tenant_id AND u.name = 'admin';
ALTER TABLE api_tokens ALTER COLUMN user_id SET NOT NULL;
ALTER TABLE api_tokens ADD FOREIGN KEY (user_id, tenant_id)
    REFERENCES users(id, tenant_id) ON DELETE CASCADE;
CREATE INDEX api_tokens_user ON api_tokens (user_id);
ALTER TABLE api_tokens
    ADD COLUMN kind text NOT NULL DEFAULT 'bearer' CHECK (kind IN ('bearer', 'secret_pair')),
    -- What a person recognises a key by: the token's first characters, or the SecretId.
    ADD COLUMN prefix text NOT NULL DEFAULT '',
    ADD COLUMN secret_id text UNIQUE,
    -- Fernet token (FERRY_SECRET_KEYS): a signature check needs the SecretKey itself.
    ADD COLUMN secret_key_enc bytea,
    ADD COLUMN expires_at timestamptz,
    ALTER COLUMN token_hash DROP NOT NULL,
    ADD CHECK ((kind = 'bearer' AND token_hash IS NOT NULL AND secret_id IS NULL
                AND secret_key_enc IS NULL)
               OR (kind = 'secret_pair' AND token_hash IS NULL AND secret_id IS NOT NULL
                   AND secret_key_enc IS NOT NULL));

CREATE TABLE audit_log (
    id           bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    tenant_id    uuid NOT NULL REFERENCES tenants(id) ON DELETE CASCADE,
    -- Kept as text too: the record outlives a deleted user.
    user_id      uuid,
    user_name    text NOT NULL,
    at           timestamptz NOT NULL DEFAULT now(),
    object_type  text NOT NULL,
    object_id    text NOT NULL,
    action       text NOT NULL,
    source_ip    text NOT NULL DEFAULT '',
    -- Names and changed field names; never a secret.
    details      jsonb NOT NULL DEFAULT '{}'
);
CREATE INDEX audit_log_tenant ON audit_log (tenant_id, id DESC);

-- Incoming cross-tenant rules: the target account may block one, and a rule is
-- suspended (with the reason its owner reads) when the target account deletes
-- the instance or changes the URL or TLS setting its credentials were checked
-- against. A same-tenant rule's target still cannot be deleted from under it.
ALTER TABLE rules
    ADD COLUMN blocked_at timestamptz,
    ADD COLUMN suspended_reason text,
    ADD COLUMN target_bound_url text,
    ADD COLUMN target_bound_verify_tls boolean,
    ALTER COLUMN target_instance_id DROP NOT NULL,
    DROP CONSTRAINT rules_target_instance_id_fkey,
    ADD CONSTRAINT rules_target_instance_id_fkey FOREIGN KEY (target_instance_id)
        REFERENCES instances(id) ON DELETE SET NULL,
    ADD CONSTRAINT rules_same_tenant_target CHECK (cross_tenant OR target_instance_id IS NOT NULL);
UPDATE rules r SET target_bound_url = i.url, target_bound_verify_tls = i.verify_tls
  FROM instances i WHERE i.id = r.target_instance_id AND r.cross_tenant;
CREATE INDEX rules_incoming ON rules (target_account_id) WHERE cross_tenant;
