//! Plans, tenant accounts, feature flags, metered usage and a tenant's agents (issue 15), on every
//! backend.

use crate::backends::Backend;
use jiff::Timestamp;
use schema::features::FeatureFlags;
use schema::records::{Agent, AgentRole};
use schema::tenancy::{MeteredUsage, Plan, PlanLimits, Suspension, TenantAccount};
use schema::{AgentId, TenantId};

/// A case: its name (used in the test name) and its body.
pub type CaseFn = for<'a> fn(&'a Backend) -> futures::future::BoxFuture<'a, ()>;

macro_rules! cases {
    ($($name:ident),* $(,)?) => {
        pub const CASES: &[(&str, CaseFn)] = &[$((stringify!($name), |b| Box::pin($name(b)))),*];
    };
}

cases!(
    plans_are_kept_by_name_and_replaced_whole,
    accounts_and_flags_are_kept_per_tenant,
    usage_is_the_sum_of_each_meter_s_latest_figure_per_month,
    a_tenant_s_agents_are_listed_and_no_other_tenant_s,
    an_agent_s_record_is_replaced_only_in_its_own_tenant,
    a_tenant_s_smtp_account_is_kept_with_its_password_and_removed,
);

async fn plans_are_kept_by_name_and_replaced_whole(b: &Backend) {
    let store = b.store().await;
    let name = format!("plan-{}", uuid::Uuid::now_v7().simple());
    let mut plan = Plan {
        name: name.clone(),
        limits: PlanLimits {
            users: Some(3),
            ..PlanLimits::default()
        },
        updated_at: Timestamp::UNIX_EPOCH,
    };
    store.put_plan(&plan).await.expect("put");
    plan.limits.messages_per_month = Some(1000);
    plan.limits.users = None;
    store.put_plan(&plan).await.expect("replace");
    let stored: Vec<Plan> = store
        .plans()
        .await
        .expect("plans")
        .into_iter()
        .filter(|p| p.name == name)
        .collect();
    assert_eq!(stored, [plan]);
}

async fn accounts_and_flags_are_kept_per_tenant(b: &Backend) {
    let store = b.store().await;
    let (tenant, other) = (TenantId::new(), TenantId::new());
    assert_eq!(store.tenant_account(tenant).await.expect("read"), None);
    assert_eq!(store.feature_flags(tenant).await.expect("read"), None);
    let mut account = TenantAccount::new(tenant);
    account.plan = "pro".into();
    account.suspended = Some(Suspension {
        at: Timestamp::UNIX_EPOCH,
        reason: "unpaid".into(),
    });
    store.put_tenant_account(&account).await.expect("put");
    let flags = FeatureFlags {
        groups: true,
        ..FeatureFlags::default()
    };
    store.put_feature_flags(tenant, &flags).await.expect("put");
    assert_eq!(
        store.tenant_account(tenant).await.expect("read"),
        Some(account)
    );
    assert_eq!(
        store.feature_flags(tenant).await.expect("read"),
        Some(flags)
    );
    assert_eq!(store.tenant_account(other).await.expect("read"), None);
    assert_eq!(store.feature_flags(other).await.expect("read"), None);
}

async fn usage_is_the_sum_of_each_meter_s_latest_figure_per_month(b: &Backend) {
    let store = b.store().await;
    let tenant = TenantId::new();
    let (a, c) = (uuid::Uuid::now_v7(), uuid::Uuid::now_v7());
    let figure = |conversations, messages| MeteredUsage {
        conversations,
        messages,
    };
    store
        .put_usage(tenant, 202611, a, &figure(1, 5))
        .await
        .expect("put");
    store
        .put_usage(tenant, 202611, a, &figure(2, 9))
        .await
        .expect("put");
    store
        .put_usage(tenant, 202611, c, &figure(1, 1))
        .await
        .expect("put");
    store
        .put_usage(tenant, 202612, c, &figure(7, 7))
        .await
        .expect("put");
    assert_eq!(
        store.usage(tenant, 202611).await.expect("usage"),
        figure(3, 10)
    );
    assert_eq!(
        store.usage(tenant, 202612).await.expect("usage"),
        figure(7, 7)
    );
    assert_eq!(
        store.usage(TenantId::new(), 202611).await.expect("usage"),
        MeteredUsage::default()
    );
}

async fn a_tenant_s_agents_are_listed_and_no_other_tenant_s(b: &Backend) {
    let store = b.store().await;
    let (tenant, other) = (TenantId::new(), TenantId::new());
    for id in [tenant, other] {
        let record = schema::records::Tenant {
            id,
            name: "t".into(),
            created_at: Timestamp::UNIX_EPOCH,
        };
        store.create_tenant(&record).await.expect("tenant");
    }
    let agent = |tenant| Agent {
        default_connection: None,
        id: AgentId::new(),
        tenant_id: tenant,
        name: "Ana".into(),
        role: AgentRole::Agent,
        created_at: Timestamp::UNIX_EPOCH,
    };
    let ours = [agent(tenant), agent(tenant)];
    for (i, a) in ours.iter().chain([&agent(other)]).enumerate() {
        store
            .create_agent(a, [i as u8 + 40; 32])
            .await
            .expect("agent");
    }
    let mut listed: Vec<AgentId> = store
        .agents(tenant, 100)
        .await
        .expect("agents")
        .into_iter()
        .map(|a| a.id)
        .collect();
    listed.sort();
    let mut expected: Vec<AgentId> = ours.iter().map(|a| a.id).collect();
    expected.sort();
    assert_eq!(listed, expected);
    assert_eq!(store.agents(tenant, 1).await.expect("agents").len(), 1);
}

async fn an_agent_s_record_is_replaced_only_in_its_own_tenant(b: &Backend) {
    let store = b.store().await;
    let (tenant, other) = (TenantId::new(), TenantId::new());
    for id in [tenant, other] {
        let record = schema::records::Tenant {
            id,
            name: "t".into(),
            created_at: Timestamp::UNIX_EPOCH,
        };
        store.create_tenant(&record).await.expect("tenant");
    }
    let mut agent = Agent {
        default_connection: None,
        id: AgentId::new(),
        tenant_id: tenant,
        name: "Ana".into(),
        role: AgentRole::Agent,
        created_at: Timestamp::UNIX_EPOCH,
    };
    let mut token = [0u8; 32];
    token[..16].copy_from_slice(uuid::Uuid::now_v7().as_bytes());
    store.create_agent(&agent, token).await.expect("agent");
    agent.role = AgentRole::Supervisor;
    agent.name = "Ana Souza".into();
    agent.default_connection = Some(schema::ConnectionId::new());
    assert!(store.update_agent(&agent).await.expect("update"));
    assert_eq!(
        store.agent(tenant, agent.id).await.expect("read"),
        Some(agent.clone())
    );
    let listed = store.agents(tenant, 10).await.expect("agents");
    assert_eq!(listed, [agent.clone()]);
    // Another tenant's id, or an unknown one, changes nothing.
    let mut foreign = agent.clone();
    foreign.tenant_id = other;
    foreign.role = AgentRole::Admin;
    assert!(!store.update_agent(&foreign).await.expect("update"));
    let mut unknown = agent.clone();
    unknown.id = AgentId::new();
    assert!(!store.update_agent(&unknown).await.expect("update"));
    assert_eq!(
        store.agent(tenant, agent.id).await.expect("read"),
        Some(agent)
    );
    assert_eq!(store.agent(other, foreign.id).await.expect("read"), None);
}

async fn a_tenant_s_smtp_account_is_kept_with_its_password_and_removed(b: &Backend) {
    let store = b.store().await;
    let (tenant, other) = (TenantId::new(), TenantId::new());
    let account = schema::mail::SmtpAccount {
        host: "smtp.example.com".into(),
        port: 587,
        security: schema::mail::SmtpSecurity::StartTls,
        username: Some("loja".into()),
        password: Some("s3cr3t".into()),
        from_email: "suporte@loja.test".into(),
        from_name: None,
    };
    assert_eq!(store.smtp_account(tenant).await.expect("read"), None);
    store
        .put_smtp_account(tenant, Some(&account))
        .await
        .expect("put");
    assert_eq!(
        store.smtp_account(tenant).await.expect("read"),
        Some(account),
        "read back with its password opened"
    );
    assert_eq!(store.smtp_account(other).await.expect("read"), None);
    store.put_smtp_account(tenant, None).await.expect("remove");
    assert_eq!(store.smtp_account(tenant).await.expect("read"), None);
}
