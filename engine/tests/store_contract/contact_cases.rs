//! The contacts' storage contract (issue 14): one contact per address, versioned writes, merges that
//! move addresses, search by folded word prefix, and pages by id. Run on every backend.

use crate::backends::Backend;
use futures::future::join_all;
use jiff::Timestamp;
use schema::contact::{self, Channel, ContactAddress, ContactRecord, ContactWrite};
use schema::store::{StoreError, TermCursor};
use schema::{ContactId, TenantId};
use std::collections::BTreeSet;

/// A case: its name (used in the test name) and its body.
pub type CaseFn = for<'a> fn(&'a Backend) -> futures::future::BoxFuture<'a, ()>;

macro_rules! cases {
    ($($name:ident),* $(,)?) => {
        pub const CASES: &[(&str, CaseFn)] = &[$((stringify!($name), |b| Box::pin($name(b)))),*];
    };
}

cases!(
    a_customer_gets_one_contact_per_address_found_only_in_its_tenant,
    a_contact_write_is_refused_whole_when_its_version_moved_or_an_address_is_held,
    a_merge_moves_addresses_and_search_words_to_the_kept_contact,
    search_finds_folded_name_email_and_phone_prefixes_and_pages_with_a_cursor,
    contacts_page_by_id_without_gaps_or_repeats,
);

fn whatsapp(number: &str) -> ContactAddress {
    ContactAddress::new(Channel::Whatsapp, number)
}

fn new_contact(tenant: TenantId, number: &str, name: &str) -> ContactRecord {
    ContactRecord::for_address(
        tenant,
        whatsapp(number),
        Some(name.into()),
        Timestamp::UNIX_EPOCH,
    )
}

async fn create(b: &Backend, contact: &ContactRecord) {
    let write = ContactWrite {
        before: None,
        after: Some(contact.clone()),
    };
    b.store()
        .await
        .write_contacts(contact.tenant_id, &[write])
        .await
        .expect("create contact");
}

fn edited(contact: &ContactRecord, edit: impl FnOnce(&mut ContactRecord)) -> ContactWrite {
    let mut after = contact.clone();
    edit(&mut after);
    after.version = contact.version + 1;
    ContactWrite {
        before: Some(contact.clone()),
        after: Some(after),
    }
}

async fn search_all(b: &Backend, tenant: TenantId, prefix: &str, page: usize) -> Vec<ContactId> {
    let store = b.store().await;
    let mut cursor: Option<TermCursor> = None;
    let mut found = Vec::new();
    for _ in 0..1000 {
        let got = store
            .search_contacts(tenant, prefix, cursor.as_ref(), page)
            .await
            .expect("search");
        let Some((term, last)) = got.last() else {
            return found;
        };
        cursor = Some(TermCursor {
            term: term.clone(),
            contact: last.id,
        });
        for (term, contact) in &got {
            assert!(term.starts_with(prefix), "{term} listed for {prefix}");
            assert_eq!(contact.tenant_id, tenant, "search answered another tenant");
            found.push(contact.id);
        }
    }
    panic!("search never ended");
}

async fn a_customer_gets_one_contact_per_address_found_only_in_its_tenant(b: &Backend) {
    let store = b.store().await;
    let (tenant, other) = (TenantId::new(), TenantId::new());
    let contact = new_contact(tenant, "5511912340001", "Ana");
    // Several first conversations of one new customer at once (two numbers of the tenant).
    let ensures = (0..6).map(|_| store.ensure_contact(&contact));
    for result in join_all(ensures).await {
        result.expect("ensure");
    }
    let found = store
        .contact_by_address(tenant, &whatsapp("5511912340001"))
        .await
        .expect("by address")
        .expect("created");
    assert_eq!(found, contact);
    assert_eq!(
        store.contacts(tenant, None, 10).await.expect("list").len(),
        1
    );
    // Ensuring again keeps an edited contact as it is.
    let edit = edited(&found, |c| c.email = Some("ana@example.com".into()));
    store
        .write_contacts(tenant, std::slice::from_ref(&edit))
        .await
        .expect("edit");
    store.ensure_contact(&contact).await.expect("ensure again");
    assert_eq!(
        store.contact(tenant, contact.id).await.expect("read"),
        edit.after
    );
    assert_eq!(
        store
            .contact_by_address(other, &whatsapp("5511912340001"))
            .await
            .expect("by address"),
        None,
        "not across tenants"
    );
    assert_eq!(store.contact(other, contact.id).await.expect("read"), None);
    assert!(
        store
            .contacts(other, None, 10)
            .await
            .expect("list")
            .is_empty()
    );
}

async fn a_contact_write_is_refused_whole_when_its_version_moved_or_an_address_is_held(
    b: &Backend,
) {
    let store = b.store().await;
    let tenant = TenantId::new();
    let ana = new_contact(tenant, "5511912340002", "Ana");
    create(b, &ana).await;
    // A second contact claiming Ana's number, with a number of its own.
    let mut bia = new_contact(tenant, "5511912340003", "Bia");
    bia.addresses.push(whatsapp("5511912340002"));
    let claim = ContactWrite {
        before: None,
        after: Some(bia.clone()),
    };
    let refused = store.write_contacts(tenant, &[claim]).await;
    assert!(
        matches!(refused, Err(StoreError::Conflict(_))),
        "{refused:?}"
    );
    assert_eq!(store.contact(tenant, bia.id).await.expect("read"), None);
    assert_eq!(
        store
            .contact_by_address(tenant, &whatsapp("5511912340003"))
            .await
            .expect("by address"),
        None,
        "a refused write claims nothing"
    );
    // Two edits from the same version: the second is refused.
    let first = edited(&ana, |c| c.name = Some("Ana Maria".into()));
    let second = edited(&ana, |c| c.name = Some("Ana Clara".into()));
    store
        .write_contacts(tenant, std::slice::from_ref(&first))
        .await
        .expect("first edit");
    let late = store.write_contacts(tenant, &[second]).await;
    assert!(matches!(late, Err(StoreError::Conflict(_))), "{late:?}");
    assert_eq!(
        store.contact(tenant, ana.id).await.expect("read"),
        first.after
    );
    assert!(search_all(b, tenant, "clara", 10).await.is_empty());
    assert_eq!(search_all(b, tenant, "maria", 10).await, vec![ana.id]);
}

async fn a_merge_moves_addresses_and_search_words_to_the_kept_contact(b: &Backend) {
    let store = b.store().await;
    let tenant = TenantId::new();
    let ana = new_contact(tenant, "5511912340004", "Ana");
    let mut dup = new_contact(tenant, "5511912340005", "Ana Duplicada");
    dup.email = Some("ana.dup@example.com".into());
    create(b, &ana).await;
    create(b, &dup).await;
    let merged = contact::merge(&ana, &dup, Timestamp::UNIX_EPOCH).expect("merge");
    let writes = [
        ContactWrite {
            before: Some(dup.clone()),
            after: None,
        },
        ContactWrite {
            before: Some(ana.clone()),
            after: Some(merged.clone()),
        },
    ];
    store.write_contacts(tenant, &writes).await.expect("merge");
    assert_eq!(store.contact(tenant, dup.id).await.expect("read"), None);
    for number in ["5511912340004", "5511912340005"] {
        assert_eq!(
            store
                .contact_by_address(tenant, &whatsapp(number))
                .await
                .expect("by address"),
            Some(merged.clone()),
            "{number} belongs to the kept contact"
        );
    }
    let found: BTreeSet<ContactId> = search_all(b, tenant, "ana.dup", 10)
        .await
        .into_iter()
        .collect();
    assert_eq!(found, BTreeSet::from([ana.id]));
    assert!(search_all(b, tenant, "duplicada", 10).await.is_empty());
    assert_eq!(
        store.contacts(tenant, None, 10).await.expect("list"),
        vec![merged]
    );
    // The merged-away contact cannot be merged again.
    let again = [ContactWrite {
        before: Some(dup.clone()),
        after: None,
    }];
    assert!(matches!(
        store.write_contacts(tenant, &again).await,
        Err(StoreError::Conflict(_))
    ));
}

async fn search_finds_folded_name_email_and_phone_prefixes_and_pages_with_a_cursor(b: &Backend) {
    let tenant = TenantId::new();
    let mut ids = BTreeSet::new();
    for n in 0..7 {
        let mut c = new_contact(
            tenant,
            &format!("55119876500{n:02}"),
            &format!("Márcia {n}"),
        );
        c.email = Some(format!("marcia{n}@example.com"));
        create(b, &c).await;
        ids.insert(c.id);
    }
    let other = TenantId::new();
    create(b, &new_contact(other, "5511987650000", "Márcia Outra")).await;
    // "marcia" is both a name word and an email local part: each contact is listed per term.
    let found = search_all(b, tenant, "marc", 3).await;
    assert_eq!(found.iter().copied().collect::<BTreeSet<_>>(), ids);
    let mut seen = found.clone();
    seen.sort();
    seen.dedup();
    assert_eq!(
        found.len(),
        seen.len() * 3,
        "each contact once per matching term"
    );
    assert_eq!(search_all(b, tenant, "876500", 10).await.len(), 7);
    assert_eq!(search_all(b, tenant, "marcia3@", 10).await.len(), 1);
    assert!(search_all(b, tenant, "zz", 10).await.is_empty());
}

async fn contacts_page_by_id_without_gaps_or_repeats(b: &Backend) {
    let store = b.store().await;
    let tenant = TenantId::new();
    let mut ids = Vec::new();
    for n in 0..40 {
        let mut c = new_contact(tenant, &format!("55219000000{n:02}"), "Cliente");
        c.id = ContactId::new();
        create(b, &c).await;
        ids.push(c.id);
    }
    ids.sort();
    let mut listed = Vec::new();
    let mut after = None;
    loop {
        let page = store.contacts(tenant, after, 7).await.expect("page");
        let Some(last) = page.last() else { break };
        after = Some(last.id);
        listed.extend(page.iter().map(|c| c.id));
    }
    assert_eq!(listed, ids, "by id, each once");
}
