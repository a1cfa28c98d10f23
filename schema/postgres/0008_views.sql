-- Conversa PostgreSQL schema, migration 0008: the priority, tag and unassigned inbox views (issue 14),
-- from columns of the conversation row written by the same statement as the turn.
ALTER TABLE conversations ADD COLUMN priority text NOT NULL DEFAULT 'normal';
ALTER TABLE conversations ADD COLUMN tags text[] NOT NULL DEFAULT '{}';
CREATE INDEX conversations_by_priority ON conversations (tenant_id, priority, last_activity_us DESC);
CREATE INDEX conversations_by_tag ON conversations USING gin (tags);
CREATE INDEX conversations_unassigned ON conversations (tenant_id, last_activity_us DESC)
    WHERE assignee IS NULL AND status NOT IN ('resolved', 'cancelled');
