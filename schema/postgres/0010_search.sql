-- Conversa PostgreSQL schema, migration 0010: search by message text and the inbox counts (issue 14).
-- `message_terms` holds, per tenant, folded word and month, the conversations whose messages that
-- month had the word, written by the turn's transaction.
CREATE TABLE message_terms (
    tenant_id uuid NOT NULL,
    term text COLLATE "C" NOT NULL,
    month integer NOT NULL,
    conversation_id uuid NOT NULL,
    PRIMARY KEY (tenant_id, term, month, conversation_id)
);
-- The active tickets with what the views filter on, so the badge counts are an index-only scan of
-- the work in progress, never of the history.
CREATE INDEX conversations_active ON conversations (tenant_id, status, assignee, team, priority)
    INCLUDE (tags) WHERE status NOT IN ('resolved', 'cancelled');
