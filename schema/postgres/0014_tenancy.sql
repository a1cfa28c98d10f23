-- Conversa PostgreSQL schema, migration 0014: plans, each tenant's account (plan, suspension) and
-- feature flags, usage per tenant, month and meter (issue 15), and the tenant's agents by tenant.
CREATE TABLE plans (
    name text PRIMARY KEY,
    body json NOT NULL
);

CREATE TABLE tenant_accounts (
    tenant_id uuid PRIMARY KEY,
    body json NOT NULL
);

CREATE TABLE feature_flags (
    tenant_id uuid PRIMARY KEY,
    body json NOT NULL
);

-- A tenant's own SMTP account; its password sealed (AES-256-GCM) before it reaches this table.
CREATE TABLE smtp_accounts (
    tenant_id uuid PRIMARY KEY,
    body json NOT NULL
);

CREATE TABLE usage (
    tenant_id uuid NOT NULL,
    month integer NOT NULL,
    meter uuid NOT NULL,
    conversations bigint NOT NULL,
    messages bigint NOT NULL,
    PRIMARY KEY (tenant_id, month, meter)
);

CREATE INDEX IF NOT EXISTS agents_by_tenant ON agents (tenant_id);
