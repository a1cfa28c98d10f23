//! End to end on the real binary (issue 15): the dashboard, behind `see_dashboard` and the tenant's
//! `show_dashboard` flag: active tickets by view, each user's presence and load, the month's usage.

mod support;

use serde_json::json;
use support::{
    Agent, Node, add_agent, api_get, api_request, customer_writes, eventually, provision,
};

#[tokio::test]
async fn the_dashboard_shows_tickets_users_and_usage_to_those_who_may_see_it() {
    let node = Node::start().await;
    let tenant = provision(&node, "dashboard").await;
    let (_, admin) = add_agent(&node, &tenant, "Ada", "admin").await;
    let (bia, supervisor) = add_agent(&node, &tenant, "Bia", "supervisor").await;
    customer_writes(&node, &tenant, "5511970000601", "wamid.B1", "um").await;
    customer_writes(&node, &tenant, "5511970000602", "wamid.B2", "dois").await;
    let (_, inbox) = api_get(&node, &admin, "/api/v1/conversations").await;
    let first = inbox["items"][0]["id"].as_str().expect("id").to_string();
    let (status, body) = api_request(
        &node,
        &admin,
        reqwest::Method::POST,
        &format!("/api/v1/conversations/{first}/assignments"),
        Some(json!({"assignee_id": bia})),
    )
    .await;
    assert_eq!(status, 200, "{body}");
    // Bia is online while her socket is open.
    let (_socket, _) = Agent::connect(&node, &supervisor, None).await;

    let (status, body) = api_get(&node, &tenant.agent_token, "/api/v1/dashboard").await;
    assert_eq!((status, body["code"].as_str()), (403, Some("forbidden")));
    // Presence is recorded just after the socket subscribes.
    let dashboard = eventually("Bia online on the dashboard", || async {
        let (status, dashboard) = api_get(&node, &supervisor, "/api/v1/dashboard").await;
        assert_eq!(status, 200, "{dashboard}");
        let online = dashboard["users"].as_array().is_some_and(|users| {
            users
                .iter()
                .any(|u| u["id"] == bia.as_str() && u["presence"] == "online")
        });
        online.then_some(dashboard)
    })
    .await;
    assert_eq!(dashboard["tickets"]["all"], 2, "{dashboard}");
    assert_eq!(dashboard["tickets"]["unassigned"], 1, "{dashboard}");
    let users = dashboard["users"].as_array().expect("users");
    let bia_row = users.iter().find(|u| u["id"] == bia.as_str()).expect("Bia");
    assert_eq!(bia_row["presence"], "online", "{bia_row}");
    assert_eq!(bia_row["active_tickets"], 1, "{bia_row}");
    let ada = users.iter().find(|u| u["name"] == "Ada").expect("Ada");
    assert_eq!(ada["presence"], "offline");
    assert_eq!(ada["active_tickets"], 0);
    assert!(
        dashboard["usage"]["users"].as_u64() >= Some(3),
        "{dashboard}"
    );

    // A tenant that hides the dashboard has none.
    let (status, _) = api_request(
        &node,
        &admin,
        reqwest::Method::PUT,
        "/api/v1/features",
        Some(json!({"show_dashboard": false})),
    )
    .await;
    assert_eq!(status, 200);
    let (status, body) = api_get(&node, &supervisor, "/api/v1/dashboard").await;
    assert_eq!(
        (status, body["code"].as_str()),
        (422, Some("feature_disabled"))
    );
}
