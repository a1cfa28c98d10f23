//! The embedded store's contacts: `contacts` (`tenant | id` → the contact), `contact_addresses`
//! (`tenant | channel:address` → the contact holding it) and `contact_terms` (`tenant | term | 0 |
//! id`, empty). Writes are checked and staged by the committer, the only writer, so a version check
//! and an address claim are race-free; a group tracks what its earlier writes changed.

use super::commit::Write;
use super::{EmbeddedStore, Tables, encode, get, unavailable};
use crate::storage::keys;
use async_trait::async_trait;
use schema::contact::{ContactAddress, ContactRecord, ContactWrite};
use schema::store::{ContactStore, StoreError, StoreResult, TermCursor};
use schema::{ContactId, TenantId};
use std::collections::HashMap;

/// What the writes of one commit group did to contacts so far, over what is stored.
#[derive(Default)]
pub(super) struct ContactsTaken {
    /// Version per contact (`None`: removed).
    versions: HashMap<(TenantId, ContactId), Option<u64>>,
    /// Holder per address key (`None`: released).
    holders: HashMap<Vec<u8>, Option<ContactId>>,
}

fn contact_key(tenant: TenantId, id: ContactId) -> Vec<u8> {
    let mut key = tenant.as_bytes().to_vec();
    key.extend_from_slice(id.as_bytes());
    key
}

fn address_key(tenant: TenantId, address: &ContactAddress) -> Vec<u8> {
    let mut key = tenant.as_bytes().to_vec();
    key.extend_from_slice(address.key().as_bytes());
    key
}

fn term_prefix(tenant: TenantId, term: &str) -> Vec<u8> {
    let mut key = tenant.as_bytes().to_vec();
    key.extend_from_slice(term.as_bytes());
    key
}

fn term_key(tenant: TenantId, term: &str, id: ContactId) -> Vec<u8> {
    let mut key = term_prefix(tenant, term);
    key.push(0);
    key.extend_from_slice(id.as_bytes());
    key
}

impl ContactsTaken {
    fn version(
        &self,
        tables: &Tables,
        tenant: TenantId,
        id: ContactId,
    ) -> StoreResult<Option<u64>> {
        match self.versions.get(&(tenant, id)) {
            Some(version) => Ok(*version),
            None => Ok(
                get::<ContactRecord>(&tables.contacts, contact_key(tenant, id))?.map(|c| c.version),
            ),
        }
    }

    fn holder(&self, tables: &Tables, key: &[u8]) -> StoreResult<Option<ContactId>> {
        match self.holders.get(key) {
            Some(holder) => Ok(*holder),
            None => get(&tables.contact_addresses, key),
        }
    }
}

/// Checks and stages `EnsureContact`: nothing when its address is held already.
pub(super) fn stage_ensure(
    tables: &Tables,
    batch: &mut fjall::OwnedWriteBatch,
    contact: &ContactRecord,
    taken: &mut ContactsTaken,
) -> StoreResult<()> {
    let tenant = contact.tenant_id;
    let [address] = contact.addresses.as_slice() else {
        return Err(StoreError::Invalid(
            "a contact is ensured for one address".into(),
        ));
    };
    if taken
        .holder(tables, &address_key(tenant, address))?
        .is_some()
    {
        return Ok(());
    }
    let mut contact = contact.clone();
    if taken.version(tables, tenant, contact.id)?.is_some() {
        // The address's own id went to a contact that later gave the address away.
        contact.id = ContactId::new();
    }
    let write = ContactWrite {
        before: None,
        after: Some(contact),
    };
    stage_writes(tables, batch, tenant, std::slice::from_ref(&write), taken)
}

/// Checks and stages `Contacts`: all of them or none.
pub(super) fn stage_writes(
    tables: &Tables,
    batch: &mut fjall::OwnedWriteBatch,
    tenant: TenantId,
    writes: &[ContactWrite],
    taken: &mut ContactsTaken,
) -> StoreResult<()> {
    let mut puts: Vec<(&fjall::Keyspace, Vec<u8>, Vec<u8>)> = Vec::new();
    let mut removes: Vec<(&fjall::Keyspace, Vec<u8>)> = Vec::new();
    let mut versions = Vec::new();
    let mut holders: HashMap<Vec<u8>, Option<ContactId>> = HashMap::new();
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
        if taken.version(tables, tenant, id)? != expected {
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
        let (claims, releases) = write.address_changes();
        for address in releases {
            let key = address_key(tenant, address);
            holders.entry(key.clone()).or_insert(None);
            removes.push((&tables.contact_addresses, key));
        }
        for address in claims {
            let key = address_key(tenant, address);
            holders.insert(key.clone(), Some(id));
            puts.push((&tables.contact_addresses, key, encode(&id)?));
        }
        let (added, removed) = write.term_changes();
        for term in removed {
            removes.push((&tables.contact_terms, term_key(tenant, &term, id)));
        }
        for term in added {
            puts.push((
                &tables.contact_terms,
                term_key(tenant, &term, id),
                Vec::new(),
            ));
        }
        match &write.after {
            Some(after) => puts.push((&tables.contacts, contact_key(tenant, id), encode(after)?)),
            None => removes.push((&tables.contacts, contact_key(tenant, id))),
        }
        versions.push(((tenant, id), write.after.as_ref().map(|c| c.version)));
    }
    // A claimed address must be free, or released by a write of this call.
    for (key, holder) in &holders {
        let Some(claimant) = holder else { continue };
        let released_here = |owner: &ContactId| {
            writes.iter().any(|w| {
                w.id() == Some(*owner)
                    && w.address_changes()
                        .1
                        .iter()
                        .any(|a| address_key(tenant, a) == *key)
            })
        };
        if let Some(owner) = taken.holder(tables, key)?
            && owner != *claimant
            && !released_here(&owner)
        {
            let address = String::from_utf8_lossy(&key[16..]).into_owned();
            return Err(StoreError::Conflict(format!(
                "address {address} belongs to contact {owner}"
            )));
        }
    }
    // Removals first: a merge releases an address and claims it again under another contact.
    for (keyspace, key) in removes {
        batch.remove(keyspace, key);
    }
    for (keyspace, key, value) in puts {
        batch.insert(keyspace, key, value);
    }
    taken.versions.extend(versions);
    taken.holders.extend(holders);
    Ok(())
}

#[async_trait]
impl ContactStore for EmbeddedStore {
    async fn contact(&self, tenant: TenantId, id: ContactId) -> StoreResult<Option<ContactRecord>> {
        self.read("contact", move |t| {
            get(&t.contacts, contact_key(tenant, id))
        })
        .await
    }

    async fn contact_by_address(
        &self,
        tenant: TenantId,
        address: &ContactAddress,
    ) -> StoreResult<Option<ContactRecord>> {
        let key = address_key(tenant, address);
        self.read("contact_by_address", move |t| {
            match get::<ContactId>(&t.contact_addresses, key)? {
                Some(id) => get(&t.contacts, contact_key(tenant, id)),
                None => Ok(None),
            }
        })
        .await
    }

    async fn ensure_contact(&self, contact: &ContactRecord) -> StoreResult<()> {
        let key = match contact.addresses.as_slice() {
            [address] => address_key(contact.tenant_id, address),
            _ => {
                return Err(StoreError::Invalid(
                    "a contact is ensured for one address".into(),
                ));
            }
        };
        // Known addresses (every later conversation of the contact) cost one read, no write.
        let known = self
            .read("contact_by_address", move |t| {
                t.contact_addresses.contains_key(key).map_err(unavailable)
            })
            .await?;
        if known {
            return Ok(());
        }
        self.write(Write::EnsureContact(Box::new(contact.clone())))
            .await
    }

    async fn write_contacts(&self, tenant: TenantId, writes: &[ContactWrite]) -> StoreResult<()> {
        self.write(Write::Contacts(tenant, writes.to_vec())).await
    }

    async fn contacts(
        &self,
        tenant: TenantId,
        after: Option<ContactId>,
        limit: usize,
    ) -> StoreResult<Vec<ContactRecord>> {
        self.read("contacts", move |t| {
            let start = match after {
                Some(after) => keys::successor(&contact_key(tenant, after)),
                None => tenant.as_bytes().to_vec(),
            };
            let end = keys::after_prefix(tenant.as_bytes());
            super::collect(t.contacts.range(start..end).take(limit))
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
        let prefix = term_prefix(tenant, prefix);
        let start = match after {
            Some(cursor) => keys::successor(&term_key(tenant, &cursor.term, cursor.contact)),
            None => prefix.clone(),
        };
        self.read("search_contacts", move |t| {
            let end = keys::after_prefix(&prefix);
            let mut found = Vec::new();
            for entry in t.contact_terms.range(start..end) {
                if found.len() >= limit {
                    break;
                }
                let key = entry.key().map_err(unavailable)?;
                let parsed = (|| {
                    let id: [u8; 16] = key.get(key.len().checked_sub(16)?..)?.try_into().ok()?;
                    let term = key.get(16..key.len().checked_sub(17)?)?;
                    Some((
                        String::from_utf8(term.to_vec()).ok()?,
                        ContactId::from_bytes(id),
                    ))
                })();
                let (term, id) =
                    parsed.ok_or_else(|| StoreError::Corrupt("bad contact term key".into()))?;
                if let Some(contact) = get(&t.contacts, contact_key(tenant, id))? {
                    found.push((term, contact));
                }
            }
            Ok(found)
        })
        .await
    }
}
