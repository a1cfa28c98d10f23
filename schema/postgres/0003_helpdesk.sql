-- Conversa PostgreSQL schema, migration 0003: the helpdesk's foundations (issue 14).
--
-- tenant_feed: every conversation event of a tenant, appended by the turn's own transaction. Readers
-- page by (txid, position) and only see rows whose transaction id is below the oldest transaction still
-- running (pg_snapshot_xmin of their snapshot): every row below that line is final, so a commit that
-- takes long can delay the feed but never be skipped by a reader that moved past it. A retried turn
-- cannot append twice: its conversation row no longer follows, so the whole transaction is refused.
CREATE TABLE tenant_feed (
    tenant_id uuid NOT NULL,
    txid xid8 NOT NULL DEFAULT pg_current_xact_id(),
    position bigint GENERATED ALWAYS AS IDENTITY,
    conversation_id uuid NOT NULL,
    seq bigint NOT NULL,
    body json NOT NULL,
    PRIMARY KEY (tenant_id, txid, position)
);

-- Ticket numbers: one row per tenant, bumped in its own short transaction (never held by a turn).
CREATE TABLE ticket_counters (
    tenant_id uuid PRIMARY KEY,
    last bigint NOT NULL
);
