-- Conversa PostgreSQL schema, migration 0007: agents' presence (issue 14), renewed by the node the
-- agent is connected to (readers ignore rows past their `until`), and the index of agents' active
-- tickets.
CREATE TABLE presence (
    tenant_id uuid NOT NULL,
    agent_id uuid NOT NULL,
    body json NOT NULL,
    PRIMARY KEY (tenant_id, agent_id)
);

-- An agent's active tickets (the Mine view, and each member's load for distribution) without
-- walking their resolved ones.
CREATE INDEX conversations_mine ON conversations (tenant_id, assignee, last_activity_us DESC)
    WHERE assignee IS NOT NULL AND status NOT IN ('resolved', 'cancelled');
