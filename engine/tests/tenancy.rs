//! The platform's side of tenants on the real binary (issue 15): plans whose limits refuse the
//! request that would cross them (users, connections, messages and conversations per month) while a
//! customer's message is always stored; the operator's list of tenants with their usage; suspension
//! and resumption; and feature flags served to every user, changed by tenant admins and honoured by
//! the notes route and automatic distribution.

mod support;

use futures::StreamExt;
use serde_json::{Value, json};
use support::fake_graph::FakeGraph;
use support::{
    ADMIN_TOKEN, Agent, Node, Tenant, add_agent, api_get, api_post, api_request, customer_writes,
    eventually, metric, provision,
};
use tokio_tungstenite::tungstenite::Message;

async fn operator(
    node: &Node,
    method: reqwest::Method,
    path: &str,
    body: Option<Value>,
) -> (u16, Value) {
    api_request(node, ADMIN_TOKEN, method, path, body).await
}

/// Waits until the operator sees the tenant's monthly usage at these figures.
async fn usage_reaches(node: &Node, tenant: &Tenant, conversations: u64, messages: u64) -> Value {
    let path = format!("/api/v1/admin/tenants/{}", tenant.tenant_id);
    eventually("the usage is metered", || async {
        let (_, summary) = operator(node, reqwest::Method::GET, &path, None).await;
        let usage = &summary["usage"];
        (usage["conversations_this_month"] == conversations
            && usage["messages_this_month"] == messages)
            .then(|| summary.clone())
    })
    .await
}

#[tokio::test]
async fn plan_limits_refuse_the_request_that_crosses_them_and_customers_are_never_refused() {
    let graph = FakeGraph::start().await;
    let env = vec![(
        "CONVERSA_GATEWAY__USAGE_REFRESH_MS".to_string(),
        "50".to_string(),
    )];
    let node = Node::start_with(Some(graph.base.clone()), env).await;
    let tenant = provision(&node, "limited").await;
    let other = provision(&node, "unlimited").await;

    let limits = json!({"limits": {"users": 2, "connections": 1, "conversations_per_month": 1,
                                   "messages_per_month": 3}});
    let (status, plan) = operator(
        &node,
        reqwest::Method::PUT,
        "/api/v1/admin/plans/starter",
        Some(limits),
    )
    .await;
    assert_eq!(status, 200, "{plan}");
    let plan_path = format!("/api/v1/admin/tenants/{}/plan", tenant.tenant_id);
    let (status, refused) = operator(
        &node,
        reqwest::Method::PUT,
        &plan_path,
        Some(json!({"plan": "gold"})),
    )
    .await;
    assert_eq!(
        (status, refused["code"].as_str()),
        (422, Some("unknown_plan"))
    );
    let (status, summary) = operator(
        &node,
        reqwest::Method::PUT,
        &plan_path,
        Some(json!({"plan": "starter"})),
    )
    .await;
    assert_eq!(status, 200, "{summary}");
    assert_eq!(summary["plan"]["limits"]["users"], 2);
    assert_eq!(summary["usage"]["users"], 1);
    assert_eq!(summary["usage"]["connections"], 1);

    // Users and connections: the one past the limit is refused, saying which limit.
    let (_, admin) = add_agent(&node, &tenant, "Ana", "admin").await;
    let agents_path = format!("/api/v1/admin/tenants/{}/agents", tenant.tenant_id);
    let (status, third) = operator(
        &node,
        reqwest::Method::POST,
        &agents_path,
        Some(json!({"name": "Bia"})),
    )
    .await;
    assert_eq!(
        (status, third["code"].as_str()),
        (422, Some("plan_limit_reached")),
        "{third}"
    );
    assert!(
        third["detail"].as_str().unwrap_or("").contains("2 users"),
        "{third}"
    );
    let connections_path = format!("/api/v1/admin/tenants/{}/connections", tenant.tenant_id);
    let second = json!({"name": "second", "phone_number_id": "pn-second", "verify_token": "v",
                        "app_secret": "s", "access_token": "t"});
    let (status, refused) = operator(
        &node,
        reqwest::Method::POST,
        &connections_path,
        Some(second),
    )
    .await;
    assert_eq!(
        (status, refused["code"].as_str()),
        (422, Some("plan_limit_reached"))
    );

    // Messages: two from a customer (one conversation), one reply, then the next reply is refused.
    customer_writes(&node, &tenant, "5511955554444", "wamid.L1", "Oi").await;
    customer_writes(&node, &tenant, "5511955554444", "wamid.L2", "Tem alguém?").await;
    usage_reaches(&node, &tenant, 1, 2).await;
    let (_, inbox) = api_get(&node, &tenant.agent_token, "/api/v1/conversations").await;
    let conversation = inbox["items"][0]["id"].as_str().expect("id").to_string();
    let send = format!("/api/v1/conversations/{conversation}/messages");
    let (status, sent) = api_post(&node, &tenant.agent_token, &send, json!({"text": "Olá!"})).await;
    assert_eq!(status, 202, "{sent}");
    usage_reaches(&node, &tenant, 1, 3).await;
    let (status, refused) = api_post(
        &node,
        &tenant.agent_token,
        &send,
        json!({"text": "Mais uma"}),
    )
    .await;
    assert_eq!(
        (status, refused["code"].as_str()),
        (422, Some("plan_limit_reached"))
    );
    // Starting a conversation is past the monthly conversation limit too.
    let (status, refused) = api_post(
        &node,
        &tenant.agent_token,
        "/api/v1/conversations",
        json!({"connection_id": tenant.connection_id, "contact": {"address": "5511966665555"},
               "message": {"text": "Oi"}}),
    )
    .await;
    assert_eq!(
        (status, refused["code"].as_str()),
        (422, Some("plan_limit_reached"))
    );

    // A customer is never refused: stored and counted past the limit.
    customer_writes(&node, &tenant, "5511955554444", "wamid.L3", "Alô?").await;
    customer_writes(&node, &tenant, "5511977770000", "wamid.L4", "Bom dia").await;
    usage_reaches(&node, &tenant, 2, 5).await;

    // Another tenant (default plan, no limits) is untouched.
    customer_writes(&node, &other, "5511955554444", "wamid.O1", "Oi").await;
    let (_, theirs) = api_get(&node, &other.agent_token, "/api/v1/conversations").await;
    let theirs = theirs["items"][0]["id"].as_str().expect("id").to_string();
    let (status, _) = api_post(
        &node,
        &other.agent_token,
        &format!("/api/v1/conversations/{theirs}/messages"),
        json!({"text": "Olá"}),
    )
    .await;
    assert_eq!(status, 202);

    // The operator lists every tenant with its plan and usage; a tenant admin sees its own.
    let mut listed = Vec::new();
    let mut cursor = String::new();
    loop {
        let (status, page) = operator(
            &node,
            reqwest::Method::GET,
            &format!("/api/v1/admin/tenants?limit=1{cursor}"),
            None,
        )
        .await;
        assert_eq!(status, 200, "{page}");
        listed.extend(page["items"].as_array().cloned().unwrap_or_default());
        match page["next_cursor"].as_str() {
            Some(next) => cursor = format!("&cursor={next}"),
            None => break,
        }
    }
    let ours = listed
        .iter()
        .find(|t| t["tenant"]["id"] == tenant.tenant_id.as_str())
        .expect("the tenant is listed");
    assert_eq!(ours["plan"]["name"], "starter");
    assert_eq!(ours["usage"]["messages_this_month"], 5);
    let theirs = listed
        .iter()
        .find(|t| t["tenant"]["id"] == other.tenant_id.as_str())
        .expect("the other tenant is listed");
    assert_eq!(theirs["plan"]["name"], "default");
    let (status, account) = api_get(&node, &admin, "/api/v1/account").await;
    assert_eq!(
        (status, account["plan"]["name"].as_str()),
        (200, Some("starter"))
    );
    let (status, _) = api_get(&node, &tenant.agent_token, "/api/v1/account").await;
    assert_eq!(status, 403);
    assert!(metric(&node, "conversa_plan_limit_refusals_total").await >= 4.0);
}

#[tokio::test]
async fn a_suspended_tenant_s_users_are_refused_its_customers_are_not_and_resuming_restores_it() {
    let env = vec![(
        "CONVERSA_GATEWAY__WS_CREDENTIAL_CHECK_SECS".to_string(),
        "1".to_string(),
    )];
    let node = Node::start_with(None, env).await;
    let tenant = provision(&node, "suspended").await;
    let other = provision(&node, "active").await;
    let (_, auditor) = add_agent(&node, &tenant, "Audi", "auditor").await;
    let (socket, _) = Agent::connect(&node, &tenant.agent_token, None).await;

    let suspend = format!("/api/v1/admin/tenants/{}/suspend", tenant.tenant_id);
    let (status, refused) = operator(
        &node,
        reqwest::Method::POST,
        &suspend,
        Some(json!({"reason": " "})),
    )
    .await;
    assert_eq!(
        (status, refused["code"].as_str()),
        (400, Some("invalid_reason"))
    );
    let (status, summary) = operator(
        &node,
        reqwest::Method::POST,
        &suspend,
        Some(json!({"reason": "unpaid invoice"})),
    )
    .await;
    assert_eq!(status, 200, "{summary}");
    assert_eq!(summary["account"]["suspended"]["reason"], "unpaid invoice");

    let (status, refused) = api_get(&node, &tenant.agent_token, "/api/v1/conversations").await;
    assert_eq!(
        (status, refused["code"].as_str()),
        (403, Some("tenant_suspended"))
    );
    let (status, _) = api_get(&node, &other.agent_token, "/api/v1/conversations").await;
    assert_eq!(status, 200, "another tenant is untouched");
    // The open socket ends at its next token check.
    let mut raw = socket.into_inner();
    let code = loop {
        match tokio::time::timeout(std::time::Duration::from_secs(30), raw.next()).await {
            Ok(Some(Ok(Message::Close(Some(frame))))) => break u16::from(frame.code),
            Ok(Some(Ok(_))) => continue,
            other => panic!("the socket did not close: {other:?}"),
        }
    };
    assert_eq!(code, 4001);
    // Its customers still reach it: stored, and there once it is resumed.
    customer_writes(&node, &tenant, "5511944443333", "wamid.S1", "Oi, alguém?").await;

    let resume = format!("/api/v1/admin/tenants/{}/resume", tenant.tenant_id);
    let (status, summary) = operator(&node, reqwest::Method::POST, &resume, None).await;
    assert_eq!(status, 200, "{summary}");
    assert!(summary["account"]["suspended"].is_null());
    let (status, inbox) = api_get(&node, &tenant.agent_token, "/api/v1/conversations").await;
    assert_eq!(status, 200);
    assert_eq!(inbox["items"][0]["contact"]["address"], "5511944443333");
    let (_, log) = api_get(&node, &auditor, "/api/v1/audit?action=tenant.changed").await;
    let changes: Vec<&str> = log["items"]
        .as_array()
        .expect("items")
        .iter()
        .filter_map(|e| e["details"]["change"].as_str())
        .collect();
    assert_eq!(changes, ["resumed", "suspended"]);
}

#[tokio::test]
async fn feature_flags_are_served_changed_by_tenant_admins_and_honoured() {
    let node = Node::start().await;
    let tenant = provision(&node, "flags").await;
    let other = provision(&node, "defaults").await;
    let (_, admin) = add_agent(&node, &tenant, "Ana", "admin").await;
    let (ana, ana_token) = add_agent(&node, &tenant, "Bia", "agent").await;

    let (status, flags) = api_get(&node, &tenant.agent_token, "/api/v1/features").await;
    assert_eq!(status, 200);
    assert_eq!(
        (
            flags["notes_on_messages"].as_bool(),
            flags["groups"].as_bool()
        ),
        (Some(true), Some(false))
    );
    let change = |token: &str, body: Value| {
        let (node, token) = (&node, token.to_string());
        async move {
            api_request(
                node,
                &token,
                reqwest::Method::PUT,
                "/api/v1/features",
                Some(body),
            )
            .await
        }
    };
    let (status, _) = change(&tenant.agent_token, json!({"groups": true})).await;
    assert_eq!(status, 403, "agents do not change flags");
    let (status, bad) = change(&admin, json!({"teleport": true})).await;
    assert_eq!((status, bad["code"].as_str()), (400, Some("invalid_flags")));
    let (status, flags) = change(
        &admin,
        json!({"notes_on_messages": false, "automatic_distribution": false}),
    )
    .await;
    assert_eq!(status, 200, "{flags}");
    assert_eq!(flags["notes_on_messages"], false);
    let (_, served) = api_get(&node, &ana_token, "/api/v1/features").await;
    assert_eq!(served, flags, "every user reads the tenant's flags");

    // Distribution is off: a department that distributes round robin leaves a new ticket waiting
    // for someone to take it, though its member is online.
    let (_, supervisor) = add_agent(&node, &tenant, "Sol", "supervisor").await;
    let department = json!({"key": "suporte", "name": "Suporte", "members": [ana],
        "connections": [tenant.connection_id], "distribution": "round_robin"});
    let (status, created) = api_post(&node, &supervisor, "/api/v1/departments", department).await;
    assert_eq!(status, 201, "{created}");
    let (_socket, _) = Agent::connect(&node, &ana_token, None).await;
    customer_writes(&node, &tenant, "5511933332222", "wamid.F1", "Oi").await;
    let (_, inbox) = api_get(&node, &admin, "/api/v1/conversations").await;
    let ticket = &inbox["items"][0];
    assert_eq!(ticket["team"], "suporte");
    assert!(
        ticket["distribute_at"].is_null() && ticket["assignee"].is_null(),
        "not queued for distribution: {ticket}"
    );

    // Notes are off for this tenant, not for another.
    let id = ticket["id"].as_str().expect("id");
    let (status, refused) = api_post(
        &node,
        &admin,
        &format!("/api/v1/conversations/{id}/notes"),
        json!({"content": "cliente VIP"}),
    )
    .await;
    assert_eq!(
        (status, refused["code"].as_str()),
        (422, Some("feature_disabled"))
    );
    customer_writes(&node, &other, "5511933332222", "wamid.F2", "Oi").await;
    let (_, inbox) = api_get(&node, &other.agent_token, "/api/v1/conversations").await;
    let theirs = inbox["items"][0]["id"].as_str().expect("id");
    let (status, _) = api_post(
        &node,
        &other.agent_token,
        &format!("/api/v1/conversations/{theirs}/notes"),
        json!({"content": "ok"}),
    )
    .await;
    assert_eq!(status, 201);
}
