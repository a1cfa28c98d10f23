//! The contacts aggregate: each contact stored whole, with two indexes kept by the store in the same
//! write: the address index (each address to the one contact holding it) and the search index (the
//! contact's folded words, `ContactRecord::search_terms`).

use super::StoreResult;
use crate::contact::{ContactAddress, ContactRecord, ContactWrite};
use crate::ids::{ContactId, TenantId};
use async_trait::async_trait;

/// Most contacts in one page of a list or search.
pub const MAX_CONTACT_PAGE: usize = 100;

/// Where a search page stopped: the last term and contact listed.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct TermCursor {
    pub term: String,
    pub contact: ContactId,
}

/// Contacts.
#[async_trait]
pub trait ContactStore: Send + Sync + 'static {
    async fn contact(&self, tenant: TenantId, id: ContactId) -> StoreResult<Option<ContactRecord>>;
    /// The contact holding `address`.
    async fn contact_by_address(
        &self,
        tenant: TenantId,
        address: &ContactAddress,
    ) -> StoreResult<Option<ContactRecord>>;
    /// Stores `contact` (new, with one address) unless its address already belongs to a contact:
    /// what a conversation's first turn calls, so every customer who writes has a contact. Idempotent.
    async fn ensure_contact(&self, contact: &ContactRecord) -> StoreResult<()>;
    /// Applies the writes at once (a merge is two), each only if its contact is still at the version
    /// `before` was read at (absent for a new one), and each claimed address is free or released by
    /// the same call; else [`super::StoreError::Conflict`] and nothing is written (CQL, which has no
    /// multi-partition transaction: nothing a reader trusts; see its module).
    async fn write_contacts(&self, tenant: TenantId, writes: &[ContactWrite]) -> StoreResult<()>;
    /// The tenant's contacts by id, after `after`, at most `limit`.
    async fn contacts(
        &self,
        tenant: TenantId,
        after: Option<ContactId>,
        limit: usize,
    ) -> StoreResult<Vec<ContactRecord>>;
    /// Contacts with a search term starting with `prefix` (folded, at least two characters), by
    /// (term, id) after `after`, at most `limit`, with the term each was listed under. A contact with
    /// two matching terms can be listed twice; callers dedupe and check the rest of the query with
    /// `ContactRecord::matches`.
    async fn search_contacts(
        &self,
        tenant: TenantId,
        prefix: &str,
        after: Option<&TermCursor>,
        limit: usize,
    ) -> StoreResult<Vec<(String, ContactRecord)>>;
}
