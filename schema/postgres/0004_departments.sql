-- Conversa PostgreSQL schema, migration 0004: departments (issue 14), each stored whole by key.
CREATE TABLE departments (
    tenant_id uuid NOT NULL,
    key text NOT NULL,
    body json NOT NULL,
    PRIMARY KEY (tenant_id, key)
);
