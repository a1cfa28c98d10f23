//! What this node's conversations stored, per tenant and month: new conversations and new messages,
//! counted after each turn is durable. The node flushes the figures to the store every few seconds
//! (`TenancyStore::put_usage`, one row per meter, so nodes never contend); a tenant's usage is the
//! sum over meters. A process killed before its flush loses at most that interval's counts
//! (usage is under-counted, never over-counted).

use dashmap::DashMap;
use jiff::Timestamp;
use schema::TenantId;
use schema::tenancy::{MeteredUsage, month_of};
use uuid::Uuid;

/// This process's meter.
pub struct UsageMeter {
    /// Identifies this process's figures in the store.
    pub id: Uuid,
    counts: DashMap<(TenantId, i32), (MeteredUsage, bool)>,
}

impl Default for UsageMeter {
    fn default() -> Self {
        Self {
            id: Uuid::now_v7(),
            counts: DashMap::new(),
        }
    }
}

impl UsageMeter {
    /// Counts a durable turn: a new conversation (its first turn) and its new messages.
    pub fn record(&self, tenant: TenantId, at: Timestamp, new_conversation: bool, messages: u64) {
        if !new_conversation && messages == 0 {
            return;
        }
        let mut entry = self.counts.entry((tenant, month_of(at))).or_default();
        entry.0.conversations += u64::from(new_conversation);
        entry.0.messages += messages;
        entry.1 = true;
    }

    /// The figures changed since they were last taken (marked clean now; `restore` marks a figure
    /// whose write failed dirty again).
    pub fn take_changed(&self) -> Vec<(TenantId, i32, MeteredUsage)> {
        let mut changed = Vec::new();
        for mut entry in self.counts.iter_mut() {
            if entry.1 {
                entry.1 = false;
                changed.push((entry.key().0, entry.key().1, entry.0));
            }
        }
        changed
    }

    /// A figure could not be written: it is taken again next time.
    pub fn restore(&self, tenant: TenantId, month: i32) {
        if let Some(mut entry) = self.counts.get_mut(&(tenant, month)) {
            entry.1 = true;
        }
    }

    /// Drops clean figures of months before `month`: they are stored and no longer change. A figure
    /// of the current month is kept, however many there are (it is the meter's running total: losing
    /// it would restart the count and lower the stored figure); there is one per tenant served.
    pub fn prune(&self, month: i32) {
        self.counts
            .retain(|(_, m), (_, dirty)| *dirty || *m >= month);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_are_kept_per_tenant_and_month_and_taken_once_until_they_change() {
        let meter = UsageMeter::default();
        let tenant = TenantId::new();
        let november: Timestamp = "2026-11-28T12:00:00Z".parse().expect("time");
        let december: Timestamp = "2026-12-01T00:00:01Z".parse().expect("time");
        meter.record(tenant, november, true, 1);
        meter.record(tenant, november, false, 2);
        meter.record(tenant, december, false, 0);
        meter.record(tenant, december, true, 1);
        let mut changed = meter.take_changed();
        changed.sort_by_key(|c| c.1);
        let figure = |conversations, messages| MeteredUsage {
            conversations,
            messages,
        };
        assert_eq!(
            changed,
            [
                (tenant, 202611, figure(1, 3)),
                (tenant, 202612, figure(1, 1))
            ]
        );
        assert!(meter.take_changed().is_empty());
        meter.restore(tenant, 202611);
        assert_eq!(meter.take_changed(), [(tenant, 202611, figure(1, 3))]);
        meter.prune(202612);
        meter.record(tenant, december, false, 1);
        assert_eq!(meter.take_changed(), [(tenant, 202612, figure(1, 2))]);
    }
}
