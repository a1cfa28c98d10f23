-- Conversa PostgreSQL schema, migration 0012: each tenant's permissions per role (issue 15), where
-- its admins changed the defaults; one row per tenant, stored whole.
CREATE TABLE role_permissions (
    tenant_id uuid PRIMARY KEY,
    body json NOT NULL
);
