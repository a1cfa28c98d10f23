-- Conversa PostgreSQL schema, migration 0005: the due index (issue 14). When a conversation next
-- needs its owner without a message (a snooze ending, an SLA target coming due) is a column of its own
-- row, written by the same statement as the turn; the shard lets a cluster node sweep only its own.
ALTER TABLE conversations ADD COLUMN due_us bigint;
ALTER TABLE conversations ADD COLUMN shard smallint;
CREATE INDEX conversations_due ON conversations (due_us) WHERE due_us IS NOT NULL;
CREATE INDEX conversations_due_by_shard ON conversations (shard, due_us) WHERE due_us IS NOT NULL;
