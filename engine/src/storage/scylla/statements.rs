//! Every statement the ScyllaDB backend runs, prepared once when the store opens: prepared statements
//! carry the partition key's position, so the driver routes each one to a replica that owns it
//! (token-aware, and shard-aware on ScyllaDB).

use super::driver_error;
use schema::store::StoreResult;
use scylla::client::session::Session;
use scylla::statement::prepared::PreparedStatement;

macro_rules! statements {
    ($($name:ident = $cql:expr;)*) => {
        pub struct Statements {
            $(pub $name: PreparedStatement,)*
        }

        impl Statements {
            /// Prepares every statement with table names qualified by `keyspace` (a session-wide
            /// `USE` would make prepared statements ambiguous).
            pub async fn prepare(session: &Session, keyspace: &str) -> StoreResult<Statements> {
                Ok(Statements {
                    $($name: session
                        .prepare($cql.replace("{ks}", keyspace))
                        .await
                        .map_err(driver_error)?,)*
                })
            }
        }
    };
}

statements! {
    insert_tenant = "INSERT INTO {ks}.tenants (tenant_id, body) VALUES (?, ?)";
    select_tenant = "SELECT body FROM {ks}.tenants WHERE tenant_id = ?";
    select_tenants = "SELECT body FROM {ks}.tenants LIMIT ?";
    select_tenants_after = "SELECT body FROM {ks}.tenants WHERE token(tenant_id) > token(?) LIMIT ?";

    claim_address = "INSERT INTO {ks}.connection_by_address (provider, address, connection_id) \
                     VALUES (?, ?, ?) IF NOT EXISTS";
    release_address = "DELETE FROM {ks}.connection_by_address WHERE provider = ? AND address = ? \
                       IF connection_id = ?";
    select_address = "SELECT connection_id FROM {ks}.connection_by_address \
                      WHERE provider = ? AND address = ?";
    insert_connection = "INSERT INTO {ks}.connections (connection_id, tenant_id, body) VALUES (?, ?, ?)";
    update_connection = "UPDATE {ks}.connections SET body = ? WHERE connection_id = ? IF body = ?";
    delete_connection = "DELETE FROM {ks}.connections WHERE connection_id = ?";
    select_connection = "SELECT body FROM {ks}.connections WHERE connection_id = ?";
    insert_tenant_connection = "INSERT INTO {ks}.connections_by_tenant (tenant_id, connection_id) \
                                VALUES (?, ?)";
    delete_tenant_connection = "DELETE FROM {ks}.connections_by_tenant \
                                WHERE tenant_id = ? AND connection_id = ?";
    select_tenant_connections = "SELECT connection_id FROM {ks}.connections_by_tenant WHERE tenant_id = ?";

    insert_agent = "INSERT INTO {ks}.agents (agent_id, tenant_id, body) VALUES (?, ?, ?)";
    insert_agent_token = "INSERT INTO {ks}.agent_tokens (token_sha256, agent_id, tenant_id, body) \
                          VALUES (?, ?, ?, ?)";
    select_agent_token = "SELECT body FROM {ks}.agent_tokens WHERE token_sha256 = ?";
    delete_agent_token = "DELETE FROM {ks}.agent_tokens WHERE token_sha256 = ?";
    select_agent = "SELECT tenant_id, body FROM {ks}.agents WHERE agent_id = ?";

    insert_presence = "INSERT INTO {ks}.presence (tenant_id, agent_id, body) VALUES (?, ?, ?) \
                       USING TTL ?";
    delete_presence = "DELETE FROM {ks}.presence WHERE tenant_id = ? AND agent_id = ?";
    select_presence = "SELECT body FROM {ks}.presence WHERE tenant_id = ?";

    insert_quick_reply = "INSERT INTO {ks}.quick_replies (tenant_id, id, body) VALUES (?, ?, ?)";
    select_quick_reply = "SELECT body FROM {ks}.quick_replies WHERE tenant_id = ? AND id = ?";
    select_quick_replies = "SELECT body FROM {ks}.quick_replies WHERE tenant_id = ?";
    delete_quick_reply = "DELETE FROM {ks}.quick_replies WHERE tenant_id = ? AND id = ?";

    select_contact = "SELECT body FROM {ks}.contacts WHERE tenant_id = ? AND bucket = ? AND id = ?";
    select_contacts_after = "SELECT body FROM {ks}.contacts WHERE tenant_id = ? AND bucket = ? \
                             AND id > ? LIMIT ?";
    create_contact = "INSERT INTO {ks}.contacts (tenant_id, bucket, id, version, body) \
                      VALUES (?, ?, ?, ?, ?) IF NOT EXISTS";
    update_contact = "UPDATE {ks}.contacts SET version = ?, body = ? \
                      WHERE tenant_id = ? AND bucket = ? AND id = ? IF version = ?";
    delete_contact_if = "DELETE FROM {ks}.contacts WHERE tenant_id = ? AND bucket = ? AND id = ? \
                         IF version = ?";
    select_contact_holder = "SELECT contact_id, WRITETIME(contact_id) FROM {ks}.contact_addresses \
                             WHERE tenant_id = ? AND address = ?";
    claim_contact_address = "INSERT INTO {ks}.contact_addresses (tenant_id, address, contact_id) \
                             VALUES (?, ?, ?) IF NOT EXISTS";
    move_contact_address = "UPDATE {ks}.contact_addresses SET contact_id = ? \
                            WHERE tenant_id = ? AND address = ? IF contact_id = ?";
    release_contact_address = "DELETE FROM {ks}.contact_addresses WHERE tenant_id = ? AND address = ? \
                               IF contact_id = ?";
    insert_contact_term = "INSERT INTO {ks}.contact_terms (tenant_id, prefix, term, contact_id) \
                           VALUES (?, ?, ?, ?)";
    delete_contact_term = "DELETE FROM {ks}.contact_terms WHERE tenant_id = ? AND prefix = ? \
                           AND term = ? AND contact_id = ?";
    search_contact_terms = "SELECT term, contact_id FROM {ks}.contact_terms WHERE tenant_id = ? \
                            AND prefix = ? AND term >= ? AND term < ? LIMIT ?";
    search_contact_terms_after = "SELECT term, contact_id FROM {ks}.contact_terms \
                                  WHERE tenant_id = ? AND prefix = ? \
                                  AND (term, contact_id) > (?, ?) AND (term) < (?) LIMIT ?";

    delete_message_term = "DELETE FROM {ks}.message_terms \
                           WHERE tenant_id = ? AND term = ? AND month = ? AND conversation_id = ?";
    insert_message_term = "INSERT INTO {ks}.message_terms (tenant_id, term, month, conversation_id) \
                           VALUES (?, ?, ?, ?)";
    search_message_terms = "SELECT conversation_id FROM {ks}.message_terms \
                            WHERE tenant_id = ? AND term = ? AND month = ? LIMIT ?";
    search_message_terms_after = "SELECT conversation_id FROM {ks}.message_terms \
                                  WHERE tenant_id = ? AND term = ? AND month = ? \
                                  AND conversation_id > ? LIMIT ?";
    has_message_term = "SELECT conversation_id FROM {ks}.message_terms \
                        WHERE tenant_id = ? AND term = ? AND month = ? AND conversation_id = ?";
    insert_active_view = "INSERT INTO {ks}.active_views (tenant_id, inbox_view, conversation_id) \
                          VALUES (?, ?, ?)";
    delete_active_view = "DELETE FROM {ks}.active_views \
                          WHERE tenant_id = ? AND inbox_view = ? AND conversation_id = ?";
    count_active_view = "SELECT COUNT(*) FROM {ks}.active_views WHERE tenant_id = ? AND inbox_view = ?";

    claim_email = "INSERT INTO {ks}.credentials (email, tenant_id, agent_id, body) VALUES (?, ?, ?, ?) \
                   IF NOT EXISTS";
    update_credentials = "UPDATE {ks}.credentials SET body = ? WHERE email = ? IF agent_id = ?";
    release_email = "DELETE FROM {ks}.credentials WHERE email = ? IF agent_id = ?";
    select_credentials = "SELECT agent_id, body FROM {ks}.credentials WHERE email = ?";
    insert_agent_email = "INSERT INTO {ks}.agent_emails (tenant_id, agent_id, email) VALUES (?, ?, ?)";
    select_agent_email = "SELECT email FROM {ks}.agent_emails WHERE tenant_id = ? AND agent_id = ?";
    insert_grant = "INSERT INTO {ks}.grants (token_sha256, kind, body) VALUES (?, ?, ?) USING TTL ?";
    spend_grant = "UPDATE {ks}.grants USING TTL ? SET kind = ?, body = ? \
                   WHERE token_sha256 = ? IF kind = ?";
    select_grant = "SELECT body FROM {ks}.grants WHERE token_sha256 = ?";
    delete_grant = "DELETE FROM {ks}.grants WHERE token_sha256 = ?";
    insert_session = "INSERT INTO {ks}.sessions (tenant_id, agent_id, id, body) VALUES (?, ?, ?, ?)";
    select_session = "SELECT body FROM {ks}.sessions WHERE tenant_id = ? AND agent_id = ? AND id = ?";
    select_sessions = "SELECT body FROM {ks}.sessions WHERE tenant_id = ? AND agent_id = ?";
    delete_session = "DELETE FROM {ks}.sessions WHERE tenant_id = ? AND agent_id = ? AND id = ?";

    insert_role_permissions = "INSERT INTO {ks}.role_permissions (tenant_id, body) VALUES (?, ?)";
    select_role_permissions = "SELECT body FROM {ks}.role_permissions WHERE tenant_id = ?";

    claim_audit_entry = "INSERT INTO {ks}.audit_log (tenant_id, bucket, seq, body, prev_hash, hash) \
                         VALUES (?, ?, ?, ?, ?, ?) IF NOT EXISTS";
    select_audit_entry = "SELECT seq, body, prev_hash, hash FROM {ks}.audit_log \
                          WHERE tenant_id = ? AND bucket = ? AND seq = ?";
    select_audit_after = "SELECT seq, body, prev_hash, hash FROM {ks}.audit_log \
                          WHERE tenant_id = ? AND bucket = ? AND seq > ? LIMIT ?";
    select_audit_before = "SELECT seq, body, prev_hash, hash FROM {ks}.audit_log \
                           WHERE tenant_id = ? AND bucket = ? AND seq < ? ORDER BY seq DESC LIMIT ?";
    create_audit_head = "INSERT INTO {ks}.audit_heads (tenant_id, seq, hash) VALUES (?, 0, ?) IF NOT EXISTS";
    move_audit_head = "UPDATE {ks}.audit_heads SET seq = ?, hash = ? WHERE tenant_id = ? IF seq = ?";
    select_audit_head = "SELECT seq, hash FROM {ks}.audit_heads WHERE tenant_id = ?";

    select_plans = "SELECT body FROM {ks}.plans WHERE bucket = 0 LIMIT ?";
    insert_plan = "INSERT INTO {ks}.plans (bucket, name, body) VALUES (0, ?, ?)";
    select_tenant_account = "SELECT body FROM {ks}.tenant_accounts WHERE tenant_id = ?";
    insert_tenant_account = "INSERT INTO {ks}.tenant_accounts (tenant_id, body) VALUES (?, ?)";
    select_feature_flags = "SELECT body FROM {ks}.feature_flags WHERE tenant_id = ?";
    insert_feature_flags = "INSERT INTO {ks}.feature_flags (tenant_id, body) VALUES (?, ?)";
    select_smtp_account = "SELECT body FROM {ks}.smtp_accounts WHERE tenant_id = ?";
    insert_smtp_account = "INSERT INTO {ks}.smtp_accounts (tenant_id, body) VALUES (?, ?)";
    delete_smtp_account = "DELETE FROM {ks}.smtp_accounts WHERE tenant_id = ?";
    insert_usage = "INSERT INTO {ks}.usage (tenant_id, month, meter, conversations, messages) \
                    VALUES (?, ?, ?, ?, ?)";
    select_usage = "SELECT conversations, messages FROM {ks}.usage WHERE tenant_id = ? AND month = ?";
    insert_tenant_agent = "INSERT INTO {ks}.agents_by_tenant (tenant_id, agent_id, body) VALUES (?, ?, ?)";
    select_tenant_agents = "SELECT body FROM {ks}.agents_by_tenant WHERE tenant_id = ? LIMIT ?";

    insert_department = "INSERT INTO {ks}.departments (tenant_id, key, body) VALUES (?, ?, ?)";
    create_department = "INSERT INTO {ks}.departments (tenant_id, key, body) VALUES (?, ?, ?) \
                         IF NOT EXISTS";
    select_department = "SELECT body FROM {ks}.departments WHERE tenant_id = ? AND key = ?";
    select_departments = "SELECT body FROM {ks}.departments WHERE tenant_id = ?";
    delete_department = "DELETE FROM {ks}.departments WHERE tenant_id = ? AND key = ?";

    select_conversation = "SELECT body FROM {ks}.conversations \
                           WHERE tenant_id = ? AND conversation_id = ?";
    select_last_seq = "SELECT last_seq FROM {ks}.conversations WHERE tenant_id = ? AND conversation_id = ?";
    upsert_conversation = "INSERT INTO {ks}.conversations (tenant_id, conversation_id, last_seq, \
                           last_activity_us, status, assignee, team, body) \
                           VALUES (?, ?, ?, ?, ?, ?, ?, ?) USING TIMESTAMP ?";

    insert_event = "INSERT INTO {ks}.conversation_events (tenant_id, conversation_id, bucket, seq, body) \
                    VALUES (?, ?, ?, ?, ?)";
    select_events_after = "SELECT body FROM {ks}.conversation_events \
                           WHERE tenant_id = ? AND conversation_id = ? AND bucket = ? AND seq > ? \
                           LIMIT ?";

    insert_message = "INSERT INTO {ks}.messages (tenant_id, conversation_id, bucket, seq, message_id, \
                      direction, status, body) VALUES (?, ?, ?, ?, ?, ?, ?, ?) USING TIMESTAMP ?";
    select_message = "SELECT body FROM {ks}.messages \
                      WHERE tenant_id = ? AND conversation_id = ? AND bucket = ? AND seq = ?";
    select_messages_after = "SELECT body FROM {ks}.messages \
                             WHERE tenant_id = ? AND conversation_id = ? AND bucket = ? AND seq > ? \
                             LIMIT ?";
    select_messages_before = "SELECT body FROM {ks}.messages \
                              WHERE tenant_id = ? AND conversation_id = ? AND bucket = ? AND seq < ? \
                              ORDER BY seq DESC LIMIT ?";

    insert_message_key = "INSERT INTO {ks}.message_keys (tenant_id, conversation_id, kind, key, \
                          message_id, seq) VALUES (?, ?, ?, ?, ?, ?)";
    select_message_key = "SELECT message_id, seq FROM {ks}.message_keys \
                          WHERE tenant_id = ? AND conversation_id = ? AND kind = ? AND key = ?";

    insert_inbox = "INSERT INTO {ks}.inbox (tenant_id, inbox_view, day, last_activity_us, conversation_id) \
                    VALUES (?, ?, ?, ?, ?)";
    delete_inbox = "DELETE FROM {ks}.inbox WHERE tenant_id = ? AND inbox_view = ? AND day = ? \
                    AND last_activity_us = ? AND conversation_id = ?";
    insert_inbox_day = "INSERT INTO {ks}.inbox_days (tenant_id, inbox_view, day) VALUES (?, ?, ?)";
    select_inbox_days = "SELECT day FROM {ks}.inbox_days \
                         WHERE tenant_id = ? AND inbox_view = ? AND day <= ?";
    select_inbox_day = "SELECT last_activity_us, conversation_id FROM {ks}.inbox \
                        WHERE tenant_id = ? AND inbox_view = ? AND day = ? LIMIT ?";
    select_inbox_older = "SELECT last_activity_us, conversation_id FROM {ks}.inbox \
                          WHERE tenant_id = ? AND inbox_view = ? AND day = ? AND last_activity_us < ? LIMIT ?";
    select_inbox_ties = "SELECT last_activity_us, conversation_id FROM {ks}.inbox \
                         WHERE tenant_id = ? AND inbox_view = ? AND day = ? AND last_activity_us = ? \
                         AND conversation_id > ? LIMIT ?";

    // The horizon is a one-element tuple: ScyllaDB refuses single- and multi-column relations on
    // clustering columns in one query (scylladb#4244).
    insert_feed = "INSERT INTO {ks}.tenant_feed (tenant_id, hour, at_us, conversation_id, seq) \
                   VALUES (?, ?, ?, ?, ?)";
    select_feed = "SELECT at_us, conversation_id, seq FROM {ks}.tenant_feed \
                   WHERE tenant_id = ? AND hour = ? AND (at_us, conversation_id, seq) > (?, ?, ?) \
                   AND (at_us) < (?) LIMIT ?";
    insert_feed_hour = "INSERT INTO {ks}.tenant_feed_hours (tenant_id, hour) VALUES (?, ?)";
    select_feed_hours = "SELECT hour FROM {ks}.tenant_feed_hours \
                         WHERE tenant_id = ? AND hour >= ? AND hour <= ?";
    select_ticket_counter = "SELECT last FROM {ks}.ticket_counters WHERE tenant_id = ?";
    insert_ticket_counter = "INSERT INTO {ks}.ticket_counters (tenant_id, last) VALUES (?, 1) \
                             IF NOT EXISTS";
    bump_ticket_counter = "UPDATE {ks}.ticket_counters SET last = ? WHERE tenant_id = ? IF last = ?";

    insert_due = "INSERT INTO {ks}.due_timers (shard, day, due_us, tenant_id, conversation_id) \
                  VALUES (?, ?, ?, ?, ?)";
    delete_due = "DELETE FROM {ks}.due_timers WHERE shard = ? AND day = ? AND due_us = ? \
                  AND tenant_id = ? AND conversation_id = ?";
    insert_due_day = "INSERT INTO {ks}.due_days (bucket, day, shard) VALUES (0, ?, ?)";
    select_due_days = "SELECT day, shard FROM {ks}.due_days WHERE bucket = 0 AND day <= ?";
    delete_due_day = "DELETE FROM {ks}.due_days WHERE bucket = 0 AND day = ? AND shard = ?";
    select_due = "SELECT due_us, tenant_id, conversation_id FROM {ks}.due_timers \
                  WHERE shard = ? AND day = ? AND due_us <= ? LIMIT ?";

    insert_contact = "INSERT INTO {ks}.contacts_by_address (tenant_id, address, connection_id, \
                      conversation_id, name) VALUES (?, ?, ?, ?, ?)";

    insert_outbox = "INSERT INTO {ks}.outbox (shard, tenant_id, conversation_id, seq) VALUES (?, ?, ?, ?) \
                     USING TIMESTAMP ?";
    delete_outbox = "DELETE FROM {ks}.outbox USING TIMESTAMP ? WHERE shard = ? AND tenant_id = ? \
                     AND conversation_id = ? AND seq = ?";
    select_outbox = "SELECT tenant_id, conversation_id, seq FROM {ks}.outbox WHERE shard = ? LIMIT ?";

    heartbeat = "INSERT INTO {ks}.cluster_members (node_id, name, rpc_url, started_us, heartbeat_us) \
                 VALUES (?, ?, ?, ?, ?) USING TTL 86400";
    select_members = "SELECT node_id, name, rpc_url, started_us, heartbeat_us FROM {ks}.cluster_members";
    delete_member = "DELETE FROM {ks}.cluster_members WHERE node_id = ?";
    select_leases = "SELECT shard, owner, epoch, expires_us FROM {ks}.shard_leases";
    select_lease = "SELECT shard, owner, epoch, expires_us FROM {ks}.shard_leases WHERE shard = ?";
    insert_lease = "INSERT INTO {ks}.shard_leases (shard, owner, epoch, expires_us) \
                    VALUES (?, ?, ?, ?) IF NOT EXISTS";
    take_lease = "UPDATE {ks}.shard_leases SET owner = ?, epoch = ?, expires_us = ? \
                  WHERE shard = ? IF epoch = ? AND expires_us = ?";
    renew_lease = "UPDATE {ks}.shard_leases SET expires_us = ? WHERE shard = ? IF owner = ? AND epoch = ?";
    release_lease = "UPDATE {ks}.shard_leases SET owner = null, expires_us = 0 \
                     WHERE shard = ? IF owner = ? AND epoch = ?";
    move_fence = "UPDATE {ks}.conversation_fences SET epoch = ?, last_seq = ?, turn_stamp = ? \
                  WHERE tenant_id = ? AND conversation_id = ? IF epoch <= ? AND last_seq = ?";
    insert_fence = "INSERT INTO {ks}.conversation_fences (tenant_id, conversation_id, epoch, last_seq, \
                    turn_stamp) VALUES (?, ?, ?, ?, ?) IF NOT EXISTS";
    select_fence = "SELECT epoch, last_seq, turn_stamp FROM {ks}.conversation_fences \
                    WHERE tenant_id = ? AND conversation_id = ?";
}
