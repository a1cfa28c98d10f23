-- Conversa PostgreSQL schema, migration 0001. Applied by `conversa migrate` (and on every start) through
-- sqlx's migrator, which records each version with its checksum in `_sqlx_migrations` and takes an
-- advisory lock, so concurrent starts apply it once.
--
-- Same shape as the CQL tables (schema/cql/): every conversation table leads with tenant_id, records
-- the engine reads whole are a `body` beside the columns queries need, and activity times used for
-- ordering are bigint microseconds so ordering and cursors are exact across backends. Bodies are
-- `json`, not `jsonb`: jsonb refuses the escaped NUL (\u0000) a message text may carry, which would
-- turn one odd message into a webhook that fails forever.

CREATE TABLE tenants (
    tenant_id uuid PRIMARY KEY,
    body json NOT NULL
);

-- Secrets inside `body` are sealed with AES-256-GCM before they reach this table.
CREATE TABLE connections (
    connection_id uuid PRIMARY KEY,
    tenant_id uuid NOT NULL REFERENCES tenants (tenant_id),
    provider text NOT NULL,
    address text NOT NULL,
    body json NOT NULL,
    CONSTRAINT connections_address_unique UNIQUE (provider, address)
);
CREATE INDEX connections_by_tenant ON connections (tenant_id, connection_id);

CREATE TABLE agents (
    agent_id uuid PRIMARY KEY,
    tenant_id uuid NOT NULL REFERENCES tenants (tenant_id),
    body json NOT NULL
);

-- Only the SHA-256 of an agent token is stored.
CREATE TABLE agent_tokens (
    token_sha256 bytea PRIMARY KEY,
    agent_id uuid NOT NULL REFERENCES agents (agent_id),
    tenant_id uuid NOT NULL
);

CREATE TABLE conversations (
    tenant_id uuid NOT NULL,
    conversation_id uuid NOT NULL,
    last_seq bigint NOT NULL,
    last_activity_us bigint NOT NULL,
    status text NOT NULL,
    assignee uuid,
    team text,
    body json NOT NULL,
    PRIMARY KEY (tenant_id, conversation_id)
);
-- The inbox: newest activity first, ties by id; the filtered views the agent UI lists.
CREATE INDEX conversations_inbox ON conversations (tenant_id, last_activity_us DESC, conversation_id);
CREATE INDEX conversations_by_status ON conversations (tenant_id, status, last_activity_us DESC);
CREATE INDEX conversations_by_assignee ON conversations (tenant_id, assignee, last_activity_us DESC)
    WHERE assignee IS NOT NULL;
CREATE INDEX conversations_by_team ON conversations (tenant_id, team, last_activity_us DESC)
    WHERE team IS NOT NULL;

CREATE TABLE conversation_events (
    tenant_id uuid NOT NULL,
    conversation_id uuid NOT NULL,
    seq bigint NOT NULL,
    body json NOT NULL,
    PRIMARY KEY (tenant_id, conversation_id, seq)
);

-- A message row is rewritten when its status moves; status_rank lets the upsert refuse to go backwards.
CREATE TABLE messages (
    tenant_id uuid NOT NULL,
    conversation_id uuid NOT NULL,
    seq bigint NOT NULL,
    message_id uuid NOT NULL,
    direction text NOT NULL,
    status_rank smallint NOT NULL,
    body json NOT NULL,
    PRIMARY KEY (tenant_id, conversation_id, seq)
);

-- Idempotency and status routing: provider ids and agents' client_message_id → message.
CREATE TABLE message_keys (
    tenant_id uuid NOT NULL,
    conversation_id uuid NOT NULL,
    kind text NOT NULL,
    key text NOT NULL,
    message_id uuid NOT NULL,
    seq bigint NOT NULL,
    PRIMARY KEY (tenant_id, conversation_id, kind, key)
);

-- Outbound messages still pending; recovery reads the oldest first.
CREATE TABLE outbox (
    tenant_id uuid NOT NULL,
    conversation_id uuid NOT NULL,
    seq bigint NOT NULL,
    queued_us bigint NOT NULL,
    PRIMARY KEY (tenant_id, conversation_id, seq)
);
CREATE INDEX outbox_by_age ON outbox (queued_us, tenant_id, conversation_id, seq);
