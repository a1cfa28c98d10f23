//! Logs and metrics: a `tracing` subscriber writing to stderr (text or JSON), and the Prometheus
//! recorder behind `/metrics`, with explicit histogram buckets for every `*_seconds` metric.

use crate::config::{LogConfig, LogFormat};
use metrics_exporter_prometheus::{Matcher, PrometheusBuilder, PrometheusHandle};
use tracing_subscriber::EnvFilter;

/// Latency buckets (seconds): 100 µs to 10 s.
const LATENCY_BUCKETS: &[f64] = &[
    0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5,
    5.0, 10.0,
];
const GROUP_SIZE_BUCKETS: &[f64] = &[1.0, 2.0, 4.0, 8.0, 16.0, 32.0, 64.0, 128.0, 256.0, 512.0];

/// Installs the global `tracing` subscriber (once per process).
pub fn init_logging(config: &LogConfig) {
    let filter =
        EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new(&config.filter));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    let _ = match config.format {
        LogFormat::Json => builder.json().try_init(),
        LogFormat::Text => builder.try_init(),
    };
}

/// Installs the global metrics recorder and returns the handle `/metrics` renders.
pub fn init_metrics() -> Result<PrometheusHandle, metrics_exporter_prometheus::BuildError> {
    let handle = PrometheusBuilder::new()
        .set_buckets_for_metric(Matcher::Suffix("_seconds".into()), LATENCY_BUCKETS)?
        .set_buckets_for_metric(
            Matcher::Full("conversa_store_group_commit_size".into()),
            GROUP_SIZE_BUCKETS,
        )?
        .install_recorder()?;
    describe();
    register_known_series();
    Ok(handle)
}

/// Registers the series that alerts and dashboards read at zero, so `rate()` and absence checks work
/// before the first event (Prometheus practice: initialise known label sets).
pub fn register_known_series() {
    for outcome in [
        "ok",
        "unauthorized",
        "malformed_payload",
        "not_durable",
        "overloaded",
    ] {
        metrics::counter!("conversa_webhooks_received_total", "provider" => "whatsapp_cloud", "outcome" => outcome)
            .increment(0);
    }
    for outcome in ["accepted", "rejected", "unavailable"] {
        metrics::counter!("conversa_outbound_sends_total", "provider" => "whatsapp_cloud", "outcome" => outcome)
            .increment(0);
    }
    for kind in ["tenant", "conversation", "session"] {
        metrics::gauge!("conversa_actors_live", "kind" => kind).increment(0.0);
        metrics::counter!("conversa_actor_restarts_total", "kind" => kind).increment(0);
    }
    for kind in ["unavailable", "corrupt", "seq_conflict"] {
        metrics::counter!("conversa_store_errors_total", "op" => "commit", "kind" => kind)
            .increment(0);
    }
    for name in [
        "conversa_messages_ingested_total",
        "conversa_messages_duplicate_total",
        "conversa_ws_slow_consumer_disconnects_total",
        "conversa_poison_messages_total",
        "conversa_bus_published_total",
    ] {
        metrics::counter!(name).increment(0);
    }
    metrics::counter!("conversa_outbound_retries_total", "provider" => "whatsapp_cloud")
        .increment(0);
    for target in ["first_response", "next_response", "resolution"] {
        for outcome in ["hit", "missed"] {
            metrics::counter!("conversa_sla_outcomes_total", "target" => target, "outcome" => outcome)
                .increment(0);
        }
    }
    for name in [
        "conversa_timers_fired_total",
        "conversa_timers_failed_total",
        "conversa_distribution_assigned_total",
        "conversa_distribution_waits_total",
        "conversa_distribution_reassigned_total",
        "conversa_closed_department_replies_total",
        "conversa_conversations_started_total",
        "conversa_conversations_erased_total",
        "conversa_conversations_deleted_total",
        "conversa_surveys_sent_total",
        "conversa_ratings_total",
    ] {
        metrics::counter!(name).increment(0);
    }
    for action in schema::audit::AuditAction::ALL {
        let action = action.as_str();
        metrics::counter!("conversa_audit_entries_total", "action" => action).increment(0);
        metrics::counter!("conversa_audit_append_failures_total", "action" => action).increment(0);
    }
    for limit in schema::tenancy::Limit::ALL {
        metrics::counter!("conversa_plan_limit_refusals_total", "limit" => limit.as_str())
            .increment(0);
    }
    for outcome in ["sent", "failed"] {
        metrics::counter!("conversa_mail_total", "outcome" => outcome).increment(0);
    }
    metrics::gauge!("conversa_ws_connections").increment(0.0);
    metrics::gauge!("conversa_actor_requests_in_flight").increment(0.0);
}

fn describe() {
    use metrics::{describe_counter, describe_gauge, describe_histogram};
    describe_counter!(
        "conversa_conversations_started_total",
        "Conversations agents started from our side."
    );
    describe_counter!(
        "conversa_sla_outcomes_total",
        "SLA targets met in time (hit) or not (missed), by target."
    );
    describe_counter!(
        "conversa_timers_fired_total",
        "Conversations whose due clocks (snooze, SLA, distribution) fired."
    );
    describe_counter!(
        "conversa_timers_failed_total",
        "Due clocks that failed to fire (retried after a backoff)."
    );
    describe_counter!(
        "conversa_distribution_assigned_total",
        "Tickets distribution gave to an agent."
    );
    describe_counter!(
        "conversa_distribution_waits_total",
        "Distribution attempts that found nobody with room (the ticket waits)."
    );
    describe_counter!(
        "conversa_distribution_reassigned_total",
        "Tickets moved to another agent because the first did not reply in time."
    );
    describe_counter!(
        "conversa_closed_department_replies_total",
        "Out-of-hours replies a closed department sent."
    );
    describe_counter!(
        "conversa_conversations_deleted_total",
        "Conversations agents deleted (soft)."
    );
    describe_counter!(
        "conversa_surveys_sent_total",
        "Satisfaction surveys sent to customers when an agent resolved their ticket."
    );
    describe_counter!(
        "conversa_ratings_total",
        "Scores customers gave in answer to a satisfaction survey."
    );
    describe_counter!(
        "conversa_webhooks_received_total",
        "Webhook requests by provider and outcome code."
    );
    describe_histogram!(
        "conversa_webhook_duration_seconds",
        "Webhook request duration until the answer."
    );
    describe_counter!(
        "conversa_messages_ingested_total",
        "Inbound messages stored (duplicates excluded)."
    );
    describe_counter!(
        "conversa_messages_duplicate_total",
        "Inbound messages recognised as provider retries."
    );
    describe_histogram!(
        "conversa_ingest_latency_seconds",
        "Webhook received to its events durable, per conversation."
    );
    describe_histogram!(
        "conversa_fanout_latency_seconds",
        "Event durable to written to an agent socket."
    );
    describe_gauge!(
        "conversa_ws_connections",
        "Agent WebSocket connections being served (a closing one leaves it while its close frame goes out)."
    );
    describe_counter!(
        "conversa_ws_slow_consumer_disconnects_total",
        "Agent sockets closed for falling behind."
    );
    describe_gauge!("conversa_actors_live", "Live actors by kind.");
    describe_counter!(
        "conversa_actor_restarts_total",
        "Actors that failed (panic or error), by kind."
    );
    describe_counter!(
        "conversa_poison_messages_total",
        "Requests refused after killing their actor repeatedly."
    );
    describe_histogram!(
        "conversa_store_operation_seconds",
        "Store operation latency by operation."
    );
    describe_histogram!(
        "conversa_store_group_commit_seconds",
        "Duration of one group commit (write + fsync)."
    );
    describe_histogram!(
        "conversa_store_group_commit_size",
        "Writes per group commit."
    );
    describe_counter!(
        "conversa_outbound_sends_total",
        "Provider send calls by provider and outcome."
    );
    describe_counter!(
        "conversa_conversations_erased_total",
        "Conversations whose contact was erased (LGPD)."
    );
    describe_counter!(
        "conversa_mail_total",
        "Emails handed to an SMTP server (invitations, password resets), by outcome."
    );
    describe_counter!(
        "conversa_plan_limit_refusals_total",
        "Requests refused because they would cross the tenant's plan limit, by limit."
    );
    describe_counter!(
        "conversa_audit_entries_total",
        "Audit log entries appended, by action."
    );
    describe_counter!(
        "conversa_audit_append_failures_total",
        "Audit log entries lost: the change they record was made, every append attempt failed."
    );
    describe_counter!(
        "conversa_bus_published_total",
        "Events published on the bus."
    );
    describe_counter!(
        "conversa_outbox_resent_total",
        "Pending replies handed back to their sessions after a restart."
    );
    describe_counter!(
        "conversa_outbound_retries_total",
        "Provider send attempts retried after a transient failure."
    );
    describe_counter!(
        "conversa_store_errors_total",
        "Store operations that failed, by operation and kind."
    );
    describe_gauge!(
        "conversa_actor_requests_in_flight",
        "Requests waiting on conversation actors (the mailbox backlog)."
    );
    describe_gauge!(
        "conversa_ready",
        "1 while the node is ready (store answers, not shutting down), as /readyz."
    );
    describe_gauge!(
        "conversa_bus_connected",
        "1 when the node's event bus is usable (in-process: always)."
    );
    describe_gauge!(
        "conversa_actor_registry_entries",
        "Entries in the actor directory, by kind."
    );
    describe_gauge!(
        "conversa_http_connections",
        "HTTP connections hyper is serving (an agent socket leaves it once upgraded: see conversa_ws_connections)."
    );
    describe_gauge!(
        "conversa_outbound_in_flight",
        "Provider sends handed to session actors and not yet answered (queued, in flight, or answer being recorded)."
    );
    describe_gauge!(
        "conversa_outbox_pending",
        "Replies still pending in the outbox at the last sweep (at most one sweep page)."
    );
    describe_counter!(
        "conversa_actor_requests_refused_total",
        "Requests refused with nothing done because the node had max_actor_requests in flight."
    );
    describe_counter!(
        "conversa_actor_requests_expired_total",
        "Requests skipped unhandled because their caller had stopped waiting."
    );
    describe_counter!(
        "conversa_outbound_deferred_total",
        "Replies left in the outbox because their connection's send queue was full."
    );
    describe_counter!(
        "conversa_provider_answers_lost_total",
        "Provider answers that could not be recorded after every try (the reply may be sent again)."
    );
    describe_counter!(
        "conversa_commits_unsettled_total",
        "Commits whose outcome the store did not tell at once (settled by re-reading and retrying)."
    );
    describe_counter!(
        "conversa_stale_message_keys_total",
        "Idempotency keys found pointing at a message that is not there (left by an unsettled commit)."
    );
    describe_counter!(
        "conversa_conversation_spawns_refused_total",
        "Requests refused because the node had max_live_conversations conversation actors alive."
    );
    describe_counter!(
        "conversa_session_reconnects_total",
        "Reconnect requests sent to a WhatsApp Web gateway, by provider and outcome."
    );
    describe_gauge!(
        "conversa_session_reconnect_loops",
        "WhatsApp Web sessions whose reconnect loop is running."
    );
    describe_counter!(
        "conversa_webhook_body_budget_exhausted_total",
        "Webhooks refused with 503 because the node was buffering its whole budget of unauthenticated bodies."
    );
    describe_gauge!(
        "conversa_bus_backlog",
        "Bus entries this node keeps while Redis is unreachable (written in order once it is back)."
    );
    describe_counter!(
        "conversa_bus_dropped_total",
        "Bus entries dropped because the publisher queue was full (the tenant's other nodes resume)."
    );
    describe_counter!(
        "conversa_bus_gaps_total",
        "Gap markers written to Redis for tenants whose entries this node had to give up."
    );
    describe_counter!(
        "conversa_bus_gaps_seen_total",
        "Gaps this node saw in another node's entries (its local sockets of the tenant resumed)."
    );
    describe_counter!(
        "conversa_bus_remote_events_total",
        "Events received from other nodes through Redis."
    );
    describe_histogram!(
        "conversa_bus_remote_lag_seconds",
        "From an event's entry in Redis (Redis's clock) to this node's reader handing it to local sockets."
    );
    describe_gauge!(
        "conversa_cluster_members",
        "Live cluster members as this node last read them."
    );
    describe_gauge!(
        "conversa_cluster_shards_owned",
        "Shard leases this node holds."
    );
    describe_counter!(
        "conversa_cluster_forwards_total",
        "Commands forwarded to the node owning their shard, by command and outcome (ok, refused: nothing done, unknown)."
    );
    describe_histogram!(
        "conversa_cluster_forward_seconds",
        "Round trip of a forwarded command, by command."
    );
    describe_counter!(
        "conversa_cluster_unowned_refusals_total",
        "Commands refused (nothing done) because their shard had no owner at the moment."
    );
    describe_counter!(
        "conversa_cluster_takeovers_total",
        "Shards this node took from another node whose lease had lapsed."
    );
    describe_counter!(
        "conversa_cluster_handoffs_total",
        "Shards this node handed to a member that should own them (graceful)."
    );
    describe_counter!(
        "conversa_cluster_leases_lost_total",
        "Leases this node found taken over when it tried to renew them."
    );
    describe_counter!(
        "conversa_cluster_round_failures_total",
        "Lease keeper rounds that could not reach the store."
    );
    describe_counter!(
        "conversa_cluster_fencing_refusals_total",
        "Commits the store refused because their fence was stale (this node had lost the shard)."
    );
    describe_counter!(
        "conversa_cluster_rpc_refused_total",
        "Node-to-node requests refused for a missing or wrong cluster secret."
    );
    describe_counter!(
        "conversa_http_body_timeouts_total",
        "Requests refused with 408 because their body did not arrive in time."
    );
}
