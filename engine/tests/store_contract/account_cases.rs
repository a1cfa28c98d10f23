//! Signing in (issue 15): credentials found by email, an email held by one user at a time, grants by
//! token hash, and sessions per user. Run on every backend.

use crate::backends::Backend;
use jiff::{SignedDuration, Timestamp};
use schema::account::{Credentials, Grant, GrantKind, Session, SessionKind};
use schema::store::StoreError;
use schema::{AgentId, TenantId};

/// A case: its name (used in the test name) and its body.
pub type CaseFn = for<'a> fn(&'a Backend) -> futures::future::BoxFuture<'a, ()>;

macro_rules! cases {
    ($($name:ident),* $(,)?) => {
        pub const CASES: &[(&str, CaseFn)] = &[$((stringify!($name), |b| Box::pin($name(b)))),*];
    };
}

cases!(
    an_email_names_one_user_and_changing_it_frees_the_old_one,
    grants_and_sessions_are_kept_by_token_hash_and_per_user,
    a_tenant_s_role_permissions_are_kept_whole_and_per_tenant,
);

fn credentials(tenant: TenantId, agent: AgentId, email: &str) -> Credentials {
    Credentials {
        tenant_id: tenant,
        agent_id: agent,
        email: email.into(),
        password_phc: "$argon2id$v=19$m=19456,t=2,p=1$c2FsdA$aGFzaA".into(),
        updated_at: Timestamp::UNIX_EPOCH,
    }
}

fn unique(name: &str) -> String {
    format!("{name}-{}@example.com", uuid::Uuid::now_v7().simple())
}

async fn an_email_names_one_user_and_changing_it_frees_the_old_one(b: &Backend) {
    let store = b.store().await;
    let (tenant, other_tenant) = (TenantId::new(), TenantId::new());
    let (ana, bia) = (AgentId::new(), AgentId::new());
    let (first, second) = (unique("ana"), unique("ana.nova"));
    store
        .set_credentials(&credentials(tenant, ana, &first))
        .await
        .expect("set");
    assert_eq!(
        store
            .credentials_by_email(&first)
            .await
            .expect("read")
            .map(|c| c.agent_id),
        Some(ana)
    );
    // Another user (of any tenant) cannot take it.
    let taken = store
        .set_credentials(&credentials(other_tenant, bia, &first))
        .await;
    assert!(matches!(taken, Err(StoreError::Conflict(_))), "{taken:?}");
    assert_eq!(
        store.credentials_of(other_tenant, bia).await.expect("read"),
        None
    );
    // The same user replaces the password, then moves to a new email: the old one is free.
    let mut again = credentials(tenant, ana, &first);
    again.password_phc = "$argon2id$v=19$m=19456,t=2,p=1$c2FsdA$b3V0cmE".into();
    store.set_credentials(&again).await.expect("same user");
    assert_eq!(
        store.credentials_of(tenant, ana).await.expect("read"),
        Some(again)
    );
    store
        .set_credentials(&credentials(tenant, ana, &second))
        .await
        .expect("move");
    assert_eq!(
        store.credentials_by_email(&first).await.expect("read"),
        None
    );
    assert_eq!(
        store
            .credentials_of(tenant, ana)
            .await
            .expect("read")
            .map(|c| c.email),
        Some(second)
    );
    store
        .set_credentials(&credentials(other_tenant, bia, &first))
        .await
        .expect("the freed email");
    assert_eq!(
        store
            .credentials_of(other_tenant, bia)
            .await
            .expect("read")
            .map(|c| c.email),
        Some(first),
        "the freed email is the other user's now"
    );
}

async fn grants_and_sessions_are_kept_by_token_hash_and_per_user(b: &Backend) {
    let store = b.store().await;
    let tenant = TenantId::new();
    let agent = schema::fixtures::agent(tenant);
    let session = Session {
        id: uuid::Uuid::now_v7(),
        tenant_id: tenant,
        agent_id: agent.id,
        kind: SessionKind::SignIn,
        label: Some("Firefox".into()),
        created_at: Timestamp::UNIX_EPOCH,
        renewed_at: Timestamp::UNIX_EPOCH,
        expires_at: Some(Timestamp::now() + SignedDuration::from_hours(1)),
        tokens: vec!["ab".repeat(32)],
    };
    let grant = Grant {
        kind: GrantKind::Access,
        agent: agent.clone(),
        session: session.id,
        expires_at: Some(Timestamp::now() + SignedDuration::from_mins(15)),
        email: None,
    };
    let token = |n: u8| {
        let mut t = [n; 32];
        t[..16].copy_from_slice(uuid::Uuid::now_v7().as_bytes());
        t
    };
    let (access, refresh) = (token(7), token(8));
    store.put_grant(access, &grant).await.expect("grant");
    let mut refresh_grant = grant.clone();
    refresh_grant.kind = GrantKind::Refresh;
    store
        .put_grant(refresh, &refresh_grant)
        .await
        .expect("grant");
    store.put_session(&session).await.expect("session");
    assert_eq!(
        store.grant(access).await.expect("read"),
        Some(grant.clone())
    );
    // A refresh token is spent once, however many try at once; an access token is never "spent".
    let mut spent = refresh_grant.clone();
    spent.kind = GrantKind::Spent;
    let tries = (0..4).map(|_| store.spend_grant(refresh, GrantKind::Refresh, &spent));
    let won = futures::future::join_all(tries)
        .await
        .into_iter()
        .map(|r| r.expect("spend"))
        .filter(|won| *won)
        .count();
    assert_eq!(won, 1, "exactly one spend wins");
    assert_eq!(
        store.grant(refresh).await.expect("read"),
        Some(spent.clone())
    );
    assert!(
        !store
            .spend_grant(access, GrantKind::Refresh, &spent)
            .await
            .expect("spend")
    );
    assert_eq!(store.grant(access).await.expect("read"), Some(grant));
    assert_eq!(
        store.sessions(tenant, agent.id).await.expect("list"),
        vec![session.clone()]
    );
    assert_eq!(
        store
            .session(tenant, agent.id, session.id)
            .await
            .expect("read"),
        Some(session.clone())
    );
    assert!(
        store
            .sessions(TenantId::new(), agent.id)
            .await
            .expect("list")
            .is_empty(),
        "not across tenants"
    );
    store
        .remove_grants(&[access, refresh])
        .await
        .expect("revoke");
    assert_eq!(store.grant(access).await.expect("read"), None);
    assert_eq!(store.grant(refresh).await.expect("read"), None);
    store
        .remove_session(tenant, agent.id, session.id)
        .await
        .expect("remove");
    assert!(
        store
            .sessions(tenant, agent.id)
            .await
            .expect("list")
            .is_empty()
    );
}

async fn a_tenant_s_role_permissions_are_kept_whole_and_per_tenant(b: &Backend) {
    use schema::permission::{Permission, RolePermissions};
    use schema::records::AgentRole;
    let store = b.store().await;
    let (tenant, other) = (TenantId::new(), TenantId::new());
    assert_eq!(store.role_permissions(tenant).await.expect("read"), None);
    let mut permissions = RolePermissions::default();
    permissions.roles.insert(
        AgentRole::Agent,
        [Permission::ManageTickets, Permission::SeeDashboard]
            .into_iter()
            .collect(),
    );
    store
        .put_role_permissions(tenant, &permissions)
        .await
        .expect("put");
    assert_eq!(
        store.role_permissions(tenant).await.expect("read"),
        Some(permissions.clone())
    );
    assert_eq!(store.role_permissions(other).await.expect("read"), None);
    permissions.roles.insert(AgentRole::Bot, Default::default());
    store
        .put_role_permissions(tenant, &permissions)
        .await
        .expect("replace");
    assert_eq!(
        store.role_permissions(tenant).await.expect("read"),
        Some(permissions)
    );
}
