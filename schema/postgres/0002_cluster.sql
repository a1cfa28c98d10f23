-- Conversa PostgreSQL schema, migration 0002: cluster membership and shard leases (issue 13).
--
-- Times are bigint microseconds by this database's clock (`now()`), so every node judges heartbeats
-- and lease expiry by one clock. A lease's epoch only grows: it is the fencing token every conversation
-- commit checks (under a share lock on the lease row, in the commit's transaction).

CREATE TABLE cluster_members (
    node_id uuid PRIMARY KEY,
    name text NOT NULL,
    rpc_url text NOT NULL,
    started_us bigint NOT NULL,
    heartbeat_us bigint NOT NULL
);

CREATE TABLE shard_leases (
    shard integer PRIMARY KEY CHECK (shard >= 0 AND shard < 256),
    owner uuid,
    epoch bigint NOT NULL DEFAULT 0,
    expires_us bigint NOT NULL DEFAULT 0
);

INSERT INTO shard_leases (shard) SELECT generate_series(0, 255);
