//! The driver session: contact points, DC- and token-aware load balancing (shard-aware on
//! ScyllaDB), consistency (SERIAL for lightweight transactions), request timeout, client-side
//! monotonic timestamps, credentials.

use super::*;

pub(super) async fn session(config: &ScyllaConfig) -> StoreResult<Session> {
    let mut policy = DefaultPolicy::builder().token_aware(true);
    if let Some(dc) = &config.local_datacenter {
        policy = policy.prefer_datacenter(dc.clone());
    }
    let profile = ExecutionProfile::builder()
        .consistency(consistency(&config.consistency)?)
        // Compare-and-set (leases, fences, address and audit claims) agrees across every data
        // centre: LOCAL_SERIAL would let two data centres both win one claim. With one data centre
        // the two cost the same.
        .serial_consistency(Some(scylla::statement::SerialConsistency::Serial))
        .request_timeout(Some(Duration::from_millis(config.request_timeout_ms)))
        .load_balancing_policy(policy.build())
        .build();
    let mut builder = SessionBuilder::new()
        .known_nodes(&config.nodes)
        .default_execution_profile_handle(profile.into_handle())
        .timestamp_generator(Arc::new(MonotonicTimestampGenerator::new()));
    if let (Some(user), Some(password)) = (&config.username, &config.password) {
        builder = builder.user(user, password);
    }
    builder
        .build()
        .await
        .map_err(|e| StoreError::Unavailable(format!("connecting to {:?}: {e}", config.nodes)))
}

fn consistency(name: &str) -> StoreResult<Consistency> {
    Ok(match name.to_ascii_lowercase().as_str() {
        "local_quorum" => Consistency::LocalQuorum,
        "quorum" => Consistency::Quorum,
        "each_quorum" => Consistency::EachQuorum,
        "all" => Consistency::All,
        weak @ ("local_one" | "one" | "two" | "three" | "any" | "local_serial" | "serial") => {
            return Err(StoreError::Unavailable(format!(
                "consistency {weak:?} is below a quorum: a rebuilt conversation actor could read a \
                 stale last_seq and overwrite an acknowledged turn; use local_quorum (the default), \
                 quorum, each_quorum or all"
            )));
        }
        other => {
            return Err(StoreError::Unavailable(format!(
                "unknown consistency {other:?} (local_quorum, quorum, each_quorum, all)"
            )));
        }
    })
}
