-- Conversa PostgreSQL schema, migration 0013: each tenant's hash-chained audit log (issue 15) and the
-- head of its chain. Appends lock the head row, so one tenant's entries are numbered one at a time.
-- The log is append-only: a trigger refuses UPDATE and DELETE (someone who can disable triggers can
-- still change rows, which `conversa audit verify` then reports).
CREATE TABLE audit_log (
    tenant_id uuid NOT NULL,
    seq bigint NOT NULL,
    body text NOT NULL,
    prev_hash bytea NOT NULL,
    hash bytea NOT NULL,
    PRIMARY KEY (tenant_id, seq)
);

CREATE TABLE audit_heads (
    tenant_id uuid PRIMARY KEY,
    seq bigint NOT NULL,
    hash bytea NOT NULL
);

CREATE FUNCTION audit_log_append_only() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'the audit log is append-only';
END;
$$;

CREATE TRIGGER audit_log_append_only BEFORE UPDATE OR DELETE ON audit_log
    FOR EACH ROW EXECUTE FUNCTION audit_log_append_only();
