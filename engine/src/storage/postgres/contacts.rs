//! PostgreSQL contacts (migration 0009): a write is one transaction that locks the contacts it
//! changes (in id order, so two writes cannot deadlock), checks their versions, releases and claims
//! addresses (the address's primary key refuses a second holder), moves the search terms and stores
//! the contacts.

use super::{PostgresStore, db_error, limit_to_db};
use crate::storage::codec::{from_json, to_json};
use crate::storage::observe;
use async_trait::async_trait;
use schema::contact::{ContactAddress, ContactRecord, ContactWrite};
use schema::store::{ContactStore, StoreError, StoreResult, TermCursor};
use schema::{ContactId, TenantId};
use sqlx::{Postgres, Transaction};
use uuid::Uuid;

/// The first string past every string starting with `prefix` (terms compare byte by byte, `C`).
fn prefix_end(prefix: &str) -> String {
    format!("{prefix}{}", char::MAX)
}

async fn apply(
    tx: &mut Transaction<'_, Postgres>,
    tenant: TenantId,
    writes: &[ContactWrite],
) -> StoreResult<()> {
    let mut ordered: Vec<&ContactWrite> = writes.iter().collect();
    ordered.sort_by_key(|w| w.id());
    for write in &ordered {
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
        let stored: Option<i64> = sqlx::query_scalar(
            "SELECT version FROM contacts WHERE tenant_id = $1 AND id = $2 FOR UPDATE",
        )
        .bind(tenant.0)
        .bind(id.0)
        .fetch_optional(&mut **tx)
        .await
        .map_err(db_error)?;
        let expected = write.before.as_ref().map(|c| c.version);
        if stored.map(|v| v as u64) != expected {
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
    // Releases before claims: a merge gives the merged contact's addresses to the other.
    for write in &ordered {
        let (_, releases) = write.address_changes();
        let keys: Vec<String> = releases.iter().map(|a| a.key()).collect();
        if !keys.is_empty() {
            sqlx::query(
                "DELETE FROM contact_addresses WHERE tenant_id = $1 AND address = ANY($2) \
                 AND contact_id = $3",
            )
            .bind(tenant.0)
            .bind(&keys)
            .bind(write.id().map(|id| id.0))
            .execute(&mut **tx)
            .await
            .map_err(db_error)?;
        }
    }
    for write in &ordered {
        let Some(id) = write.id() else { continue };
        for address in write.address_changes().0 {
            let holder: Option<Uuid> = sqlx::query_scalar(
                "INSERT INTO contact_addresses (tenant_id, address, contact_id) VALUES ($1, $2, $3) \
                 ON CONFLICT (tenant_id, address) DO UPDATE SET contact_id = contact_addresses.contact_id \
                 RETURNING contact_id",
            )
            .bind(tenant.0)
            .bind(address.key())
            .bind(id.0)
            .fetch_optional(&mut **tx)
            .await
            .map_err(db_error)?;
            if let Some(holder) = holder.filter(|h| *h != id.0) {
                return Err(StoreError::Conflict(format!(
                    "address {} belongs to contact {holder}",
                    address.key()
                )));
            }
        }
        let (added, removed) = write.term_changes();
        if !removed.is_empty() {
            sqlx::query(
                "DELETE FROM contact_terms WHERE tenant_id = $1 AND contact_id = $2 AND term = ANY($3)",
            )
            .bind(tenant.0)
            .bind(id.0)
            .bind(&removed)
            .execute(&mut **tx)
            .await
            .map_err(db_error)?;
        }
        if !added.is_empty() {
            sqlx::query(
                "INSERT INTO contact_terms (tenant_id, term, contact_id) \
                 SELECT $1, term, $2 FROM unnest($3::text[]) AS term ON CONFLICT DO NOTHING",
            )
            .bind(tenant.0)
            .bind(id.0)
            .bind(&added)
            .execute(&mut **tx)
            .await
            .map_err(db_error)?;
        }
        match &write.after {
            Some(after) => {
                sqlx::query(
                    "INSERT INTO contacts (tenant_id, id, version, body) VALUES ($1, $2, $3, $4::json) \
                     ON CONFLICT (tenant_id, id) DO UPDATE SET version = EXCLUDED.version, body = EXCLUDED.body",
                )
                .bind(tenant.0)
                .bind(id.0)
                .bind(after.version as i64)
                .bind(to_json(after)?)
                .execute(&mut **tx)
                .await
                .map_err(db_error)?;
            }
            None => {
                sqlx::query("DELETE FROM contacts WHERE tenant_id = $1 AND id = $2")
                    .bind(tenant.0)
                    .bind(id.0)
                    .execute(&mut **tx)
                    .await
                    .map_err(db_error)?;
            }
        }
    }
    Ok(())
}

#[async_trait]
impl ContactStore for PostgresStore {
    async fn contact(&self, tenant: TenantId, id: ContactId) -> StoreResult<Option<ContactRecord>> {
        observe("contact", async {
            let body: Option<String> = sqlx::query_scalar(
                "SELECT body::text FROM contacts WHERE tenant_id = $1 AND id = $2",
            )
            .bind(tenant.0)
            .bind(id.0)
            .fetch_optional(&self.pool)
            .await
            .map_err(db_error)?;
            body.map(|b| from_json(&b)).transpose()
        })
        .await
    }

    async fn contact_by_address(
        &self,
        tenant: TenantId,
        address: &ContactAddress,
    ) -> StoreResult<Option<ContactRecord>> {
        observe("contact_by_address", async {
            let body: Option<String> = sqlx::query_scalar(
                "SELECT c.body::text FROM contact_addresses a JOIN contacts c \
                 ON c.tenant_id = a.tenant_id AND c.id = a.contact_id \
                 WHERE a.tenant_id = $1 AND a.address = $2",
            )
            .bind(tenant.0)
            .bind(address.key())
            .fetch_optional(&self.pool)
            .await
            .map_err(db_error)?;
            body.map(|b| from_json(&b)).transpose()
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
            let held: Option<Uuid> = sqlx::query_scalar(
                "SELECT contact_id FROM contact_addresses WHERE tenant_id = $1 AND address = $2",
            )
            .bind(tenant.0)
            .bind(address.key())
            .fetch_optional(&self.pool)
            .await
            .map_err(db_error)?;
            if held.is_some() {
                return Ok(());
            }
            let mut contact = contact.clone();
            if self.contact(tenant, contact.id).await?.is_some() {
                // The address's own id went to a contact that later gave the address away.
                contact.id = ContactId::new();
            }
            let write = ContactWrite {
                before: None,
                after: Some(contact),
            };
            let mut tx = self.pool.begin().await.map_err(db_error)?;
            match apply(&mut tx, tenant, std::slice::from_ref(&write)).await {
                Ok(()) => tx.commit().await.map_err(db_error),
                // Another conversation of the same new customer created it first.
                Err(StoreError::Conflict(_)) => Ok(()),
                Err(error) => Err(error),
            }
        })
        .await
    }

    async fn write_contacts(&self, tenant: TenantId, writes: &[ContactWrite]) -> StoreResult<()> {
        observe("write_contacts", async {
            let mut tx = self.pool.begin().await.map_err(db_error)?;
            apply(&mut tx, tenant, writes).await?;
            tx.commit().await.map_err(db_error)
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
            let bodies: Vec<String> = sqlx::query_scalar(
                "SELECT body::text FROM contacts WHERE tenant_id = $1 AND ($2::uuid IS NULL OR id > $2) \
                 ORDER BY id LIMIT $3",
            )
            .bind(tenant.0)
            .bind(after.map(|a| a.0))
            .bind(limit_to_db(limit))
            .fetch_all(&self.pool)
            .await
            .map_err(db_error)?;
            bodies.iter().map(|b| from_json(b)).collect()
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
            let rows: Vec<(String, String)> = sqlx::query_as(
                "SELECT t.term, c.body::text FROM contact_terms t JOIN contacts c \
                 ON c.tenant_id = t.tenant_id AND c.id = t.contact_id \
                 WHERE t.tenant_id = $1 AND t.term >= $2 AND t.term < $3 \
                 AND ($4::text IS NULL OR (t.term, t.contact_id) > ($4::text COLLATE \"C\", $5::uuid)) \
                 ORDER BY t.term, t.contact_id LIMIT $6",
            )
            .bind(tenant.0)
            .bind(prefix)
            .bind(prefix_end(prefix))
            .bind(after.map(|a| a.term.clone()))
            .bind(after.map(|a| a.contact.0))
            .bind(limit_to_db(limit))
            .fetch_all(&self.pool)
            .await
            .map_err(db_error)?;
            rows.into_iter()
                .map(|(term, body)| Ok((term, from_json(&body)?)))
                .collect()
        })
        .await
    }
}
