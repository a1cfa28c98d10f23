-- Conversa PostgreSQL schema, migration 0007: agents' presence (issue 14), renewed by the node the
-- agent is connected to; readers ignore rows past their `until`.
CREATE TABLE presence (
    tenant_id uuid NOT NULL,
    agent_id uuid NOT NULL,
    body json NOT NULL,
    PRIMARY KEY (tenant_id, agent_id)
);
