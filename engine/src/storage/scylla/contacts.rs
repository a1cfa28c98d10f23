//! CQL contacts (migration 0008). CQL has no transaction across partitions, so a write goes in steps
//! that each leave something readers can trust:
//!
//! 1. each claimed address is taken by compare-and-set (free, or moved from the contact a merge
//!    releases, or from a holder that no longer lists it: the leftover of a write that stopped half
//!    way); a refused claim gives back the ones already taken and answers `Conflict`;
//! 2. the new search terms are added (a term whose contact does not carry it is skipped by readers);
//! 3. the kept contact is stored, then a merged-away one deleted, each by compare-and-set on its
//!    version (refused: `Conflict`, claims given back; a removal refused after the store leaves the
//!    merge applied to the kept contact and the other in place, so no edit is lost and a retry
//!    completes it);
//! 4. released addresses and stale terms are removed.
//!
//! Readers check what the indexes say: an address is the contact's only if its record lists it, and a
//! search hit only if the contact still has the term.

use super::{ScyllaStore, applied, limit_to_db};
use crate::storage::codec::to_json;
use crate::storage::observe;
use async_trait::async_trait;
use schema::contact::{ContactAddress, ContactRecord, ContactWrite};
use schema::store::{ContactStore, StoreError, StoreResult, TermCursor};
use schema::{ContactId, TenantId};
use scylla::value::Row;
use uuid::Uuid;

/// A claim whose holder does not list the address is taken over only after this long.
const STALE_CLAIM_MICROS: i64 = 60_000_000;

/// Contacts are spread over this many partitions per tenant, by the top bits of their id.
const BUCKETS: u8 = 16;

fn bucket(id: ContactId) -> i16 {
    i16::from(id.as_bytes()[0] >> 4)
}

fn id_text(id: ContactId) -> String {
    id.0.hyphenated().to_string()
}

/// The partition of a term: its first two characters.
fn prefix_of(term: &str) -> String {
    term.chars().take(2).collect()
}

/// A claim taken by this write, to give back if the write is refused.
struct Taken {
    key: String,
    from: Option<Uuid>,
}

impl ScyllaStore {
    async fn contact_version(&self, tenant: TenantId, id: ContactId) -> StoreResult<Option<u64>> {
        let stored: Option<ContactRecord> = self
            .body(
                &self.statements.select_contact,
                (tenant.0, bucket(id), id_text(id)),
            )
            .await?;
        Ok(stored.map(|c| c.version))
    }

    /// Who holds an address, and since when (microseconds).
    async fn holder(&self, tenant: TenantId, key: &str) -> StoreResult<Option<(Uuid, i64)>> {
        let rows: Vec<(Option<Uuid>, Option<i64>)> = self
            .rows(&self.statements.select_contact_holder, (tenant.0, key))
            .await?;
        Ok(rows
            .into_iter()
            .next()
            .and_then(|(holder, at)| Some((holder?, at.unwrap_or(0)))))
    }

    /// Whether a claim is a leftover of a write that stopped half way: older than
    /// [`STALE_CLAIM_MICROS`] (a write in progress finishes well within it) and its holder does not
    /// list the address.
    async fn stale_holder(
        &self,
        tenant: TenantId,
        (holder, since): (Uuid, i64),
        address: &ContactAddress,
    ) -> StoreResult<bool> {
        if jiff::Timestamp::now().as_microsecond() - since < STALE_CLAIM_MICROS {
            return Ok(false);
        }
        let contact = self.contact(tenant, ContactId(holder)).await?;
        Ok(contact.is_none_or(|c| !c.addresses.contains(address)))
    }

    async fn move_address(
        &self,
        tenant: TenantId,
        key: &str,
        from: Uuid,
        to: Uuid,
    ) -> StoreResult<bool> {
        let done: Vec<Row> = self
            .rows(
                &self.statements.move_contact_address,
                (to, tenant.0, key, from),
            )
            .await?;
        Ok(applied(&done))
    }

    /// Takes `address` for `id`: free, released by `released_by` (a merge), or left stale.
    async fn claim(
        &self,
        tenant: TenantId,
        address: &ContactAddress,
        id: ContactId,
        released_by: Option<ContactId>,
    ) -> StoreResult<Option<Taken>> {
        let key = address.key();
        if let Some(from) = released_by
            && self.move_address(tenant, &key, from.0, id.0).await?
        {
            return Ok(Some(Taken {
                key,
                from: Some(from.0),
            }));
        }
        let done: Vec<Row> = self
            .rows(
                &self.statements.claim_contact_address,
                (tenant.0, key.as_str(), id.0),
            )
            .await?;
        if applied(&done) {
            return Ok(Some(Taken { key, from: None }));
        }
        match self.holder(tenant, &key).await? {
            Some((holder, _)) if holder == id.0 => Ok(Some(Taken { key, from: None })),
            Some(held)
                if self.stale_holder(tenant, held, address).await?
                    && self.move_address(tenant, &key, held.0, id.0).await? =>
            {
                Ok(Some(Taken {
                    key,
                    from: Some(held.0),
                }))
            }
            _ => Ok(None),
        }
    }

    /// Gives back claims of a refused write (best effort: a leftover is a stale claim, taken over by
    /// the next claim of that address).
    async fn give_back(&self, tenant: TenantId, id: ContactId, taken: Vec<Taken>) {
        for claim in taken {
            let _ = match claim.from {
                Some(from) => self
                    .move_address(tenant, &claim.key, id.0, from)
                    .await
                    .map(drop),
                None => self
                    .rows::<Row>(
                        &self.statements.release_contact_address,
                        (tenant.0, claim.key.as_str(), id.0),
                    )
                    .await
                    .map(drop),
            };
        }
    }

    async fn put_terms(
        &self,
        tenant: TenantId,
        id: ContactId,
        terms: &[String],
        add: bool,
    ) -> StoreResult<()> {
        let s = &self.statements;
        for term in terms {
            let values = (tenant.0, prefix_of(term), term.as_str(), id_text(id));
            match add {
                true => self.execute(&s.insert_contact_term, values).await?,
                false => self.execute(&s.delete_contact_term, values).await?,
            }
        }
        Ok(())
    }

    /// Stores one contact by compare-and-set on its version; false when refused.
    async fn store_contact(&self, write: &ContactWrite) -> StoreResult<bool> {
        let s = &self.statements;
        let Some(after) = &write.after else {
            return Ok(true);
        };
        let (tenant, id) = (after.tenant_id, after.id);
        let version = after.version as i64;
        let done: Vec<Row> = match &write.before {
            None => {
                self.rows(
                    &s.create_contact,
                    (tenant.0, bucket(id), id_text(id), version, to_json(after)?),
                )
                .await?
            }
            Some(before) => {
                self.rows(
                    &s.update_contact,
                    (
                        version,
                        to_json(after)?,
                        tenant.0,
                        bucket(id),
                        id_text(id),
                        before.version as i64,
                    ),
                )
                .await?
            }
        };
        Ok(applied(&done))
    }
}

#[async_trait]
impl ContactStore for ScyllaStore {
    async fn contact(&self, tenant: TenantId, id: ContactId) -> StoreResult<Option<ContactRecord>> {
        observe(
            "contact",
            self.body(
                &self.statements.select_contact,
                (tenant.0, bucket(id), id_text(id)),
            ),
        )
        .await
    }

    async fn contact_by_address(
        &self,
        tenant: TenantId,
        address: &ContactAddress,
    ) -> StoreResult<Option<ContactRecord>> {
        observe("contact_by_address", async {
            let Some((holder, _)) = self.holder(tenant, &address.key()).await? else {
                return Ok(None);
            };
            let contact = self.contact(tenant, ContactId(holder)).await?;
            Ok(contact.filter(|c| c.addresses.contains(address)))
        })
        .await
    }

    async fn ensure_contact(&self, contact: &ContactRecord) -> StoreResult<()> {
        observe("ensure_contact", async {
            let [address] = contact.addresses.as_slice() else {
                return Err(StoreError::Invalid(
                    "a contact is ensured for one address".into(),
                ));
            };
            let tenant = contact.tenant_id;
            if self.contact_by_address(tenant, address).await?.is_some() {
                return Ok(());
            }
            let mut contact = contact.clone();
            if self
                .claim(tenant, address, contact.id, None)
                .await?
                .is_none()
            {
                // Another conversation of the same new customer claimed it first.
                return Ok(());
            }
            let mut write = ContactWrite {
                before: None,
                after: Some(contact.clone()),
            };
            if !self.store_contact(&write).await? {
                let stored = self.contact(tenant, contact.id).await?;
                if stored.is_some_and(|c| c.addresses.contains(address)) {
                    // Another first conversation of the same customer created it.
                    return Ok(());
                }
                // The address's own id went to a contact that later gave the address away.
                let fresh = ContactId::new();
                if !self
                    .move_address(tenant, &address.key(), contact.id.0, fresh.0)
                    .await?
                {
                    return Ok(());
                }
                contact.id = fresh;
                write.after = Some(contact.clone());
                if !self.store_contact(&write).await? {
                    return Err(StoreError::Conflict(format!("contact {fresh} exists")));
                }
            }
            let terms: Vec<String> = contact.search_terms().into_iter().collect();
            self.put_terms(tenant, contact.id, &terms, true).await
        })
        .await
    }

    async fn write_contacts(&self, tenant: TenantId, writes: &[ContactWrite]) -> StoreResult<()> {
        observe("write_contacts", async {
            for write in writes {
                let Some(id) = write.id() else { continue };
                if [&write.before, &write.after]
                    .into_iter()
                    .flatten()
                    .any(|c| c.tenant_id != tenant || c.id != id)
                {
                    return Err(StoreError::Invalid(
                        "a write names one contact of the tenant".into(),
                    ));
                }
                let expected = write.before.as_ref().map(|c| c.version);
                if self.contact_version(tenant, id).await? != expected {
                    return Err(StoreError::Conflict(format!(
                        "contact {id} changed meanwhile"
                    )));
                }
                if let Some(after) = &write.after
                    && after.version != expected.map_or(1, |v| v + 1)
                {
                    return Err(StoreError::Invalid(
                        "a write moves its contact one version".into(),
                    ));
                }
            }
            let releaser = |address: &ContactAddress, except: ContactId| {
                writes
                    .iter()
                    .find(|w| w.id() != Some(except) && w.address_changes().1.contains(&address))
                    .and_then(ContactWrite::id)
            };
            // 1. Claims.
            let mut taken: Vec<(ContactId, Vec<Taken>)> = Vec::new();
            let mut refused = None;
            'claims: for write in writes {
                let Some(id) = write.id() else { continue };
                let mut mine = Vec::new();
                for address in write.address_changes().0 {
                    match self
                        .claim(tenant, address, id, releaser(address, id))
                        .await?
                    {
                        Some(claim) => mine.push(claim),
                        None => {
                            refused = Some(address.key());
                            taken.push((id, mine));
                            break 'claims;
                        }
                    }
                }
                taken.push((id, mine));
            }
            let give_back = |taken: Vec<(ContactId, Vec<Taken>)>| async move {
                for (id, claims) in taken {
                    self.give_back(tenant, id, claims).await;
                }
            };
            if let Some(address) = refused {
                give_back(taken).await;
                return Err(StoreError::Conflict(format!(
                    "address {address} belongs to another contact"
                )));
            }
            // 2. New terms; 3. the contacts.
            for write in writes {
                let Some(id) = write.id() else { continue };
                self.put_terms(tenant, id, &write.term_changes().0, true)
                    .await?;
            }
            // The stores first, then the removals, each only at the version read: an edit of the
            // merged-away contact racing the merge keeps it (reported as a conflict; the kept one
            // already has the merge, and a retry merges again), so no edit is lost.
            let (removals, stores): (Vec<&ContactWrite>, Vec<&ContactWrite>) =
                writes.iter().partition(|w| w.after.is_none());
            for write in stores.into_iter().chain(removals) {
                let applied = match (&write.before, &write.after) {
                    (Some(before), None) => {
                        let done: Vec<Row> = self
                            .rows(
                                &self.statements.delete_contact_if,
                                (
                                    tenant.0,
                                    bucket(before.id),
                                    id_text(before.id),
                                    before.version as i64,
                                ),
                            )
                            .await?;
                        applied(&done)
                    }
                    _ => self.store_contact(write).await?,
                };
                if !applied {
                    give_back(taken).await;
                    let id = write.id().map(|id| id.to_string()).unwrap_or_default();
                    return Err(StoreError::Conflict(format!(
                        "contact {id} changed meanwhile"
                    )));
                }
            }
            // 4. Released addresses, stale terms.
            for write in writes {
                let Some(id) = write.id() else { continue };
                for address in write.address_changes().1 {
                    self.rows::<Row>(
                        &self.statements.release_contact_address,
                        (tenant.0, address.key(), id.0),
                    )
                    .await?;
                }
                self.put_terms(tenant, id, &write.term_changes().1, false)
                    .await?;
            }
            Ok(())
        })
        .await
    }

    async fn contacts(
        &self,
        tenant: TenantId,
        after: Option<ContactId>,
        limit: usize,
    ) -> StoreResult<Vec<ContactRecord>> {
        observe("contacts", async {
            let mut found = Vec::new();
            let first = after.map_or(0, bucket);
            for b in first..i16::from(BUCKETS) {
                if found.len() >= limit {
                    break;
                }
                let after_id = match after {
                    Some(after) if b == first => id_text(after),
                    _ => String::new(),
                };
                let page: Vec<ContactRecord> = self
                    .bodies(
                        &self.statements.select_contacts_after,
                        (tenant.0, b, after_id, limit_to_db(limit - found.len())),
                    )
                    .await?;
                found.extend(page);
            }
            Ok(found)
        })
        .await
    }

    async fn search_contacts(
        &self,
        tenant: TenantId,
        prefix: &str,
        after: Option<&TermCursor>,
        limit: usize,
    ) -> StoreResult<Vec<(String, ContactRecord)>> {
        observe("search_contacts", async {
            if prefix.chars().count() < 2 {
                return Err(StoreError::Invalid(
                    "a search prefix has two characters".into(),
                ));
            }
            let s = &self.statements;
            let partition = prefix_of(prefix);
            let end = format!("{prefix}{}", char::MAX);
            let mut cursor = after.map(|c| (c.term.clone(), id_text(c.contact)));
            let mut found = Vec::new();
            loop {
                let want = limit_to_db(limit - found.len());
                let rows: Vec<(String, String)> = match &cursor {
                    None => {
                        self.rows(
                            &s.search_contact_terms,
                            (tenant.0, &partition, prefix, &end, want),
                        )
                        .await?
                    }
                    Some((term, id)) => {
                        self.rows(
                            &s.search_contact_terms_after,
                            (tenant.0, &partition, term, id, &end, want),
                        )
                        .await?
                    }
                };
                let exhausted = rows.len() < want as usize;
                for (term, id) in rows {
                    let contact_id: ContactId = id
                        .parse()
                        .map_err(|_| StoreError::Corrupt(format!("contact id {id}")))?;
                    cursor = Some((term.clone(), id));
                    if let Some(contact) = self.contact(tenant, contact_id).await?
                        && contact.search_terms().contains(&term)
                    {
                        found.push((term, contact));
                    }
                }
                if exhausted || found.len() >= limit {
                    return Ok(found);
                }
            }
        })
        .await
    }
}
