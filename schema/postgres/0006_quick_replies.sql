-- Conversa PostgreSQL schema, migration 0006: quick replies (issue 14), each stored whole by id.
CREATE TABLE quick_replies (
    tenant_id uuid NOT NULL,
    id uuid NOT NULL,
    body json NOT NULL,
    PRIMARY KEY (tenant_id, id)
);
