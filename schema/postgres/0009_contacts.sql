-- Conversa PostgreSQL schema, migration 0009: contacts (issue 14). Each contact is stored whole with
-- its version; `contact_addresses` gives each address (`whatsapp:5511…`) to at most one contact and
-- `contact_terms` holds each contact's folded search words (byte order, so a prefix is a range).
CREATE TABLE contacts (
    tenant_id uuid NOT NULL,
    id uuid NOT NULL,
    version bigint NOT NULL,
    body json NOT NULL,
    PRIMARY KEY (tenant_id, id)
);

CREATE TABLE contact_addresses (
    tenant_id uuid NOT NULL,
    address text NOT NULL,
    contact_id uuid NOT NULL,
    PRIMARY KEY (tenant_id, address)
);

CREATE TABLE contact_terms (
    tenant_id uuid NOT NULL,
    term text COLLATE "C" NOT NULL,
    contact_id uuid NOT NULL,
    PRIMARY KEY (tenant_id, term, contact_id)
);
