-- Conversa PostgreSQL schema, migration 0011: signing in (issue 15). Credentials by email (unique
-- across the platform, one per user), the grants of bearer tokens by the token's SHA-256, and the
-- sessions holding them, per user.
CREATE TABLE credentials (
    email text PRIMARY KEY,
    tenant_id uuid NOT NULL,
    agent_id uuid NOT NULL,
    body json NOT NULL,
    UNIQUE (tenant_id, agent_id)
);

CREATE TABLE grants (
    token_sha256 bytea PRIMARY KEY,
    body json NOT NULL
);

CREATE TABLE sessions (
    tenant_id uuid NOT NULL,
    agent_id uuid NOT NULL,
    id uuid NOT NULL,
    body json NOT NULL,
    PRIMARY KEY (tenant_id, agent_id, id)
);
