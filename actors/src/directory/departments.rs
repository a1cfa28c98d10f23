//! Departments as this node last read them, shared by every conversation actor of the node.
//!
//! A conversation's turn needs its department (reopen policy, distribution, out-of-hours reply, SLA
//! targets), and a new conversation the department its connection feeds. Each actor used to keep its
//! own copy for [`FRESH_FOR`]: about 400 bytes inline in every live actor, plus the department's
//! strings once read, the same department copied into every conversation of it. Here one read serves
//! the node for [`FRESH_FOR`], so an edit reaches every conversation on the node within that time, as
//! before; the idle sweep drops what has gone stale, so the map holds at most the departments read in
//! the last [`FRESH_FOR`]. An edit made through this node forgets the tenant's reads at once; one made
//! through another node of a cluster reaches this one within [`FRESH_FOR`], including which
//! department a connection's new conversations enter.

use dashmap::DashMap;
use schema::records::Department;
use schema::{ConnectionId, TenantId};
use std::sync::Arc;
use std::time::Duration;
use tokio::time::Instant;

/// How long a department read serves without reading it again.
pub(crate) const FRESH_FOR: Duration = Duration::from_secs(30);

/// A department (or its absence) and when it was read.
#[derive(Clone)]
struct Read {
    at: Instant,
    department: Option<Arc<Department>>,
}

impl Read {
    fn fresh(&self, now: Instant) -> bool {
        now.saturating_duration_since(self.at) < FRESH_FOR
    }
}

/// The node's department reads: by key, and by the connection a department feeds.
#[derive(Default)]
pub(crate) struct Departments {
    by_key: DashMap<(TenantId, Box<str>), Read>,
    feeding: DashMap<(TenantId, ConnectionId), Read>,
}

impl Departments {
    /// The department with this key as read within [`FRESH_FOR`] (`Some(None)`: it did not exist).
    pub(crate) fn by_key(&self, tenant: TenantId, key: &str) -> Option<Option<Arc<Department>>> {
        let read = self.by_key.get(&(tenant, Box::from(key)))?;
        read.fresh(Instant::now()).then(|| read.department.clone())
    }

    /// The department feeding `connection` as read within [`FRESH_FOR`] (`Some(None)`: none did).
    pub(crate) fn feeding(
        &self,
        tenant: TenantId,
        connection: ConnectionId,
    ) -> Option<Option<Arc<Department>>> {
        let read = self.feeding.get(&(tenant, connection))?;
        read.fresh(Instant::now()).then(|| read.department.clone())
    }

    /// Remembers what reading the department `key` returned.
    pub(crate) fn read_by_key(
        &self,
        tenant: TenantId,
        key: &str,
        department: Option<Arc<Department>>,
    ) {
        let read = Read {
            at: Instant::now(),
            department,
        };
        self.by_key.insert((tenant, Box::from(key)), read);
    }

    /// Remembers which department feeds `connection` (and that department by its key).
    pub(crate) fn read_feeding(
        &self,
        tenant: TenantId,
        connection: ConnectionId,
        department: Option<Arc<Department>>,
    ) {
        if let Some(found) = &department {
            self.read_by_key(tenant, &found.key, Some(found.clone()));
        }
        let read = Read {
            at: Instant::now(),
            department,
        };
        self.feeding.insert((tenant, connection), read);
    }

    /// Forgets every read of the tenant's departments (after an edit on this node: its next turn reads
    /// them again).
    pub(crate) fn forget(&self, tenant: TenantId) {
        self.by_key.retain(|(of, _), _| *of != tenant);
        self.feeding.retain(|(of, _), _| *of != tenant);
    }

    /// Drops what is no longer fresh (from the idle sweep).
    pub(crate) fn drop_stale(&self) {
        let now = Instant::now();
        self.by_key.retain(|_, read| read.fresh(now));
        self.feeding.retain(|_, read| read.fresh(now));
    }

    /// Number of reads held (for tests).
    #[cfg(test)]
    fn len(&self) -> usize {
        self.by_key.len() + self.feeding.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use schema::records::Department;

    fn department(key: &str) -> Arc<Department> {
        Arc::new(Department {
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
        })
    }

    #[tokio::test(start_paused = true)]
    async fn a_read_serves_for_fresh_for_then_must_be_read_again() {
        let departments = Departments::default();
        let tenant = TenantId::new();
        assert!(departments.by_key(tenant, "sales").is_none());
        departments.read_by_key(tenant, "sales", Some(department("sales")));
        let served = departments.by_key(tenant, "sales").flatten();
        assert_eq!(served.map(|d| d.key.clone()).as_deref(), Some("sales"));
        assert!(departments.by_key(TenantId::new(), "sales").is_none());

        tokio::time::advance(FRESH_FOR).await;
        assert!(departments.by_key(tenant, "sales").is_none());
    }

    #[tokio::test(start_paused = true)]
    async fn an_absent_department_is_remembered_as_absent() {
        let departments = Departments::default();
        let tenant = TenantId::new();
        let connection = ConnectionId::new();
        departments.read_feeding(tenant, connection, None);
        assert_eq!(departments.feeding(tenant, connection), Some(None));
        departments.read_by_key(tenant, "gone", None);
        assert_eq!(departments.by_key(tenant, "gone"), Some(None));
    }

    #[tokio::test(start_paused = true)]
    async fn the_feeding_department_is_also_served_by_its_key() {
        let departments = Departments::default();
        let tenant = TenantId::new();
        let connection = ConnectionId::new();
        departments.read_feeding(tenant, connection, Some(department("support")));
        assert!(departments.by_key(tenant, "support").flatten().is_some());
    }

    #[tokio::test(start_paused = true)]
    async fn forgetting_a_tenant_keeps_the_other_tenants_reads() {
        let departments = Departments::default();
        let (edited, other) = (TenantId::new(), TenantId::new());
        departments.read_by_key(edited, "sales", None);
        departments.read_feeding(edited, ConnectionId::new(), None);
        departments.read_by_key(other, "sales", None);
        departments.forget(edited);
        assert!(departments.by_key(edited, "sales").is_none());
        assert!(departments.by_key(other, "sales").is_some());
        assert_eq!(departments.len(), 1);
    }

    #[tokio::test(start_paused = true)]
    async fn the_sweep_drops_only_stale_reads() {
        let departments = Departments::default();
        let tenant = TenantId::new();
        departments.read_by_key(tenant, "old", None);
        tokio::time::advance(FRESH_FOR / 2).await;
        departments.read_by_key(tenant, "new", None);
        tokio::time::advance(FRESH_FOR / 2).await;
        departments.drop_stale();
        assert_eq!(departments.len(), 1);
        assert!(departments.by_key(tenant, "new").is_some());
    }
}
