//! Departments as this node last read them, shared by every conversation actor of the node.
//!
//! A conversation's turn needs its department (reopen policy, distribution, out-of-hours reply, SLA
//! targets). Each actor used to keep its own copy for [`FRESH_FOR`]: about 400 bytes inline in every
//! live actor, plus the department's strings once read, the same department copied into every
//! conversation of it. Here one read serves the node for [`FRESH_FOR`] from when it started.
//!
//! An edit made through this node forgets the tenant's reads ([`Departments::forget`]), and a read that
//! was already under way when the edit landed is not kept (the edit moved the epoch it started at), so
//! the node's next turn reads the edit. An edit made through another node of a cluster reaches this one
//! within [`FRESH_FOR`]. Which department feeds a connection is not kept here: each new conversation
//! scans the tenant's departments itself (and keeps the one it enters, by key), so a conversation
//! never takes its department from a stale read. The idle sweep drops stale reads, so the map holds at most the departments read in
//! the last [`FRESH_FOR`] plus one sweep interval.

use dashmap::DashMap;
use schema::TenantId;
use schema::records::Department;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;
use tokio::time::Instant;

/// How long a department read serves without reading it again, from when the read started.
pub(crate) const FRESH_FOR: Duration = Duration::from_secs(30);

/// A department (or its absence) and when its read started.
struct Read {
    at: Instant,
    department: Option<Arc<Department>>,
}

impl Read {
    fn fresh(&self, now: Instant) -> bool {
        now.saturating_duration_since(self.at) < FRESH_FOR
    }
}

/// A read about to start: [`Departments::keep`] takes its result only if no edit landed meanwhile.
pub(crate) struct Reading {
    at: Instant,
    epoch: u64,
}

/// The node's department reads, by tenant and key.
#[derive(Default)]
pub(crate) struct Departments {
    by_key: DashMap<(TenantId, Box<str>), Read>,
    /// Moves on every forget: a read that started at an older epoch may hold what an edit replaced.
    epoch: AtomicU64,
}

impl Departments {
    /// The department with this key as read within [`FRESH_FOR`] (`Some(None)`: it did not exist).
    pub(crate) fn get(&self, tenant: TenantId, key: &str) -> Option<Option<Arc<Department>>> {
        let read = self.by_key.get(&(tenant, Box::from(key)))?;
        read.fresh(Instant::now()).then(|| read.department.clone())
    }

    /// Call before reading a department from the store.
    pub(crate) fn start_reading(&self) -> Reading {
        Reading {
            at: Instant::now(),
            epoch: self.epoch.load(Ordering::Acquire),
        }
    }

    /// Keeps what the read started by `reading` returned, unless an edit was forgotten since it started.
    pub(crate) fn keep(
        &self,
        reading: Reading,
        tenant: TenantId,
        key: &str,
        department: Option<Arc<Department>>,
    ) {
        let read = Read {
            at: reading.at,
            department,
        };
        let entry = self.by_key.entry((tenant, Box::from(key)));
        // Checked with the entry's shard locked, and only once it is (the order matters): a forget
        // that moves the epoch after this check waits for the lock, then removes what was just kept.
        if self.epoch.load(Ordering::Acquire) == reading.epoch {
            entry.insert(read);
        }
    }

    /// Forgets every read of the tenant's departments (after an edit on this node, or a write whose
    /// outcome is unknown): its next turn reads them again, and no read under way is kept.
    pub(crate) fn forget(&self, tenant: TenantId) {
        self.epoch.fetch_add(1, Ordering::AcqRel);
        self.by_key.retain(|(of, _), _| *of != tenant);
    }

    /// A guard that forgets the tenant's reads when dropped (see `Directory::departments_changing`).
    pub(crate) fn changing(&self, tenant: TenantId) -> Changing<'_> {
        Changing {
            departments: self,
            tenant,
        }
    }

    /// Drops what is no longer fresh (from the idle sweep).
    pub(crate) fn drop_stale(&self) {
        let now = Instant::now();
        self.by_key.retain(|_, read| read.fresh(now));
    }
}

/// Forgets a tenant's reads when dropped: held across a write of its departments or feature flags.
#[must_use = "the reads are forgotten when this is dropped: hold it across the write"]
pub struct Changing<'a> {
    departments: &'a Departments,
    tenant: TenantId,
}

impl Drop for Changing<'_> {
    fn drop(&mut self) {
        self.departments.forget(self.tenant);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn department(key: &str) -> Option<Arc<Department>> {
        Some(Arc::new(Department {
            tenant_id: TenantId::new(),
            key: key.to_owned(),
            name: key.to_owned(),
            members: Vec::new(),
            connections: Vec::new(),
            hours: None,
            out_of_hours: Default::default(),
            reopen: Default::default(),
            sla: Default::default(),
            distribution: Default::default(),
            agent_capacity: 0,
            reassign_after_secs: None,
            created_at: jiff::Timestamp::UNIX_EPOCH,
            updated_at: jiff::Timestamp::UNIX_EPOCH,
        }))
    }

    fn read(departments: &Departments, tenant: TenantId, key: &str) {
        let reading = departments.start_reading();
        departments.keep(reading, tenant, key, department(key));
    }

    #[tokio::test(start_paused = true)]
    async fn a_read_serves_its_tenant_for_fresh_for_from_when_it_started() {
        let departments = Departments::default();
        let tenant = TenantId::new();
        assert!(departments.get(tenant, "sales").is_none());
        let reading = departments.start_reading();
        tokio::time::advance(Duration::from_secs(10)).await;
        departments.keep(reading, tenant, "sales", department("sales"));
        let served = departments.get(tenant, "sales").flatten();
        assert_eq!(served.map(|d| d.key.clone()).as_deref(), Some("sales"));
        assert!(departments.get(TenantId::new(), "sales").is_none());

        tokio::time::advance(FRESH_FOR - Duration::from_secs(10)).await;
        assert!(departments.get(tenant, "sales").is_none());
    }

    #[tokio::test(start_paused = true)]
    async fn an_absent_department_is_remembered_as_absent() {
        let departments = Departments::default();
        let tenant = TenantId::new();
        let reading = departments.start_reading();
        departments.keep(reading, tenant, "gone", None);
        assert_eq!(departments.get(tenant, "gone"), Some(None));
    }

    #[tokio::test(start_paused = true)]
    async fn a_read_under_way_when_an_edit_is_forgotten_is_not_kept() {
        let departments = Departments::default();
        let tenant = TenantId::new();
        let reading = departments.start_reading();
        departments.forget(tenant);
        departments.keep(reading, tenant, "sales", department("sales"));
        assert!(departments.get(tenant, "sales").is_none());
        read(&departments, tenant, "sales");
        assert!(departments.get(tenant, "sales").is_some());
    }

    #[tokio::test(start_paused = true)]
    async fn a_change_forgets_the_tenants_reads_once_its_guard_is_dropped() {
        let departments = Departments::default();
        let tenant = TenantId::new();
        let changing = departments.changing(tenant);
        read(&departments, tenant, "sales");
        assert!(departments.get(tenant, "sales").is_some());
        drop(changing);
        assert!(departments.get(tenant, "sales").is_none());
    }

    #[tokio::test(start_paused = true)]
    async fn forgetting_a_tenant_keeps_the_other_tenants_reads() {
        let departments = Departments::default();
        let (edited, other) = (TenantId::new(), TenantId::new());
        read(&departments, edited, "sales");
        read(&departments, other, "sales");
        departments.forget(edited);
        assert!(departments.get(edited, "sales").is_none());
        assert!(departments.get(other, "sales").is_some());
        assert_eq!(departments.by_key.len(), 1);
    }

    #[tokio::test(start_paused = true)]
    async fn the_sweep_drops_only_stale_reads() {
        let departments = Departments::default();
        let tenant = TenantId::new();
        read(&departments, tenant, "old");
        tokio::time::advance(FRESH_FOR / 2).await;
        read(&departments, tenant, "new");
        tokio::time::advance(FRESH_FOR / 2).await;
        departments.drop_stale();
        assert_eq!(departments.by_key.len(), 1);
        assert!(departments.get(tenant, "new").is_some());
    }
}
