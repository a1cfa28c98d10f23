-- Conversa PostgreSQL schema, migration 0008: the priority, tag and unassigned inbox views (issue 14),
-- from columns of the conversation row written by the same statement as the turn.
ALTER TABLE conversations ADD COLUMN priority text NOT NULL DEFAULT 'normal';
ALTER TABLE conversations ADD COLUMN tags text[] NOT NULL DEFAULT '{}';
-- Conversations stored before this migration take their values from their bodies.
UPDATE conversations SET
    priority = COALESCE(body->>'priority', 'normal'),
    tags = ARRAY(SELECT json_array_elements_text(COALESCE(body->'tags', '[]'::json)));
CREATE INDEX conversations_by_priority ON conversations (tenant_id, priority, last_activity_us DESC);
CREATE INDEX conversations_by_tag ON conversations USING gin (tags);
CREATE INDEX conversations_unassigned ON conversations (tenant_id, last_activity_us DESC)
    WHERE assignee IS NULL AND status NOT IN ('resolved', 'cancelled');
-- An agent's active tickets (the Mine view, and each member's load for distribution) without
-- walking their resolved ones.
CREATE INDEX conversations_mine ON conversations (tenant_id, assignee, last_activity_us DESC)
    WHERE assignee IS NOT NULL AND status NOT IN ('resolved', 'cancelled');
