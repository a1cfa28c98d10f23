//! Recording what people do in the tenant's audit log (`schema::audit`): each route that signs in or
//! out, changes a role, a ticket, the tenant's configuration or its connections calls [`record`] once
//! its change is stored.
//!
//! An entry is appended after the change it records, retried briefly (`ATTEMPTS`) if the store fails.
//! If every attempt fails, the change stands (its answer already says it was made) and the entry is
//! missing: that is logged, counted in `conversa_audit_append_failures_total` and alerted on
//! (`ConversaAuditAppendFailing`). Appending before the change would instead record changes that
//! then fail.

use crate::AppState;
use backon::{ExponentialBuilder, Retryable};
use schema::audit::{AuditAction, AuditActor, AuditRecord};
use schema::records::Agent;
use std::time::Duration;

/// Attempts of one append.
const ATTEMPTS: usize = 3;

/// Appends `record` to its tenant's log (see the module's note on failures).
pub async fn record(state: &AppState, record: AuditRecord) {
    let action = record.action.as_str();
    let append = || async { state.store.append_audit(&record).await };
    let outcome = append
        .retry(
            ExponentialBuilder::default()
                .with_min_delay(Duration::from_millis(50))
                .with_max_times(ATTEMPTS - 1),
        )
        .when(|e| matches!(e, schema::store::StoreError::Unavailable(_)))
        .await;
    match outcome {
        Ok(_) => metrics::counter!("conversa_audit_entries_total", "action" => action).increment(1),
        Err(error) => {
            metrics::counter!("conversa_audit_append_failures_total", "action" => action)
                .increment(1);
            tracing::error!(action, tenant = %record.tenant_id, %error, "audit entry not recorded");
        }
    }
}

/// An entry for something `agent` did.
pub fn by(agent: &Agent, action: AuditAction, target: impl Into<String>) -> AuditRecord {
    AuditRecord::new(agent.tenant_id, AuditActor::agent(agent), action, target)
}

/// Records a change `agent` made to the tenant's configuration (`what`: created, replaced,
/// removed).
pub async fn config_changed(state: &AppState, agent: &Agent, target: String, what: &str) {
    record(
        state,
        by(agent, AuditAction::ConfigChanged, target).detail("change", what),
    )
    .await;
}

/// An entry for something the platform's operator did in a tenant.
pub fn by_operator(
    tenant: schema::TenantId,
    action: AuditAction,
    target: impl Into<String>,
) -> AuditRecord {
    AuditRecord::new(tenant, AuditActor::OPERATOR, action, target)
}
