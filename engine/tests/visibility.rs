//! End to end on the real binary (issue 15, part): what each user sees. Soft deletion of messages
//! and conversations (who may delete, who still sees the content, the flag that shows it, the
//! audit), and a user limited to its own default connection (inbox, counts, reads, the socket).

mod support;

use serde_json::{Value, json};
use support::{
    Agent, Node, add_agent, add_connection, all_conversations, all_messages, api_get, api_request,
    customer_writes, provision,
};

fn text_of(message: &Value) -> Option<&str> {
    message["content"]["body"].as_str()
}

async fn set_flag(node: &Node, admin: &str, flag: &str, on: bool) {
    let (status, body) = api_request(
        node,
        admin,
        reqwest::Method::PUT,
        "/api/v1/features",
        Some(json!({ flag: on })),
    )
    .await;
    assert_eq!(status, 200, "{body}");
}

#[tokio::test]
async fn a_deleted_message_is_hidden_from_everyone_but_who_may_see_deleted_messages() {
    let node = Node::start().await;
    let tenant = provision(&node, "deletion").await;
    customer_writes(
        &node,
        &tenant,
        "5511970000101",
        "wamid.D1",
        "meu cpf-segredo-77",
    )
    .await;
    customer_writes(&node, &tenant, "5511970000101", "wamid.D2", "obrigado").await;
    let (_, admin) = add_agent(&node, &tenant, "Admin", "admin").await;
    let (_, supervisor) = add_agent(&node, &tenant, "Sup", "supervisor").await;
    let agent = tenant.agent_token.clone();
    let conversation = all_conversations(&node, &agent).await[0]["id"]
        .as_str()
        .expect("id")
        .to_string();
    let c = format!("/api/v1/conversations/{conversation}");
    let first = all_messages(&node, &agent, &conversation).await[0].clone();
    let seq = first["seq"].as_u64().expect("seq");
    let (mut socket, _) = Agent::connect(&node, &agent, None).await;

    // Agents may not delete; supervisors may.
    let delete = |token: String, path: String| {
        let node = &node;
        async move { api_request(node, &token, reqwest::Method::DELETE, &path, None).await }
    };
    let (status, body) = delete(agent.clone(), format!("{c}/messages/{seq}")).await;
    assert_eq!((status, body["code"].as_str()), (403, Some("forbidden")));
    let (status, body) = delete(supervisor.clone(), format!("{c}/messages/{seq}")).await;
    assert_eq!(status, 204, "{body}");
    let (status, _) = delete(supervisor.clone(), format!("{c}/messages/{seq}")).await;
    assert_eq!(status, 204, "deleting again changes nothing");
    let (status, body) = delete(supervisor.clone(), format!("{c}/messages/999")).await;
    assert_eq!(
        (status, body["code"].as_str()),
        (422, Some("invalid_deletion"))
    );

    // The agent's socket hears of it.
    let live = socket
        .events_until(|events| events.iter().any(|e| e["event"] == "message.deleted"))
        .await;
    let deleted = live
        .iter()
        .find(|e| e["event"] == "message.deleted")
        .expect("event");
    assert_eq!(deleted["data"]["seq"].as_u64(), Some(seq));

    // With the flag off (the default), nobody reads it, not even the supervisor.
    for token in [&agent, &supervisor, &admin] {
        let history = all_messages(&node, token, &conversation).await;
        assert_eq!(history.len(), 2, "the message keeps its place");
        assert_eq!(history[0]["content"]["type"], "unsupported");
        assert_eq!(history[0]["content"]["provider_type"], "deleted");
        assert_eq!(text_of(&history[1]), Some("obrigado"));
        let (_, events) = api_get(&node, token, &format!("{c}/events")).await;
        let dump = events.to_string();
        assert!(
            !dump.contains("cpf-segredo"),
            "events show the deleted text: {dump}"
        );
    }

    // With the flag on, roles with `see_deleted_messages` read it, marked; agents still do not.
    set_flag(&node, &admin, "show_deleted_messages", true).await;
    let history = all_messages(&node, &supervisor, &conversation).await;
    assert_eq!(text_of(&history[0]), Some("meu cpf-segredo-77"));
    assert!(history[0]["deleted"]["by"].is_string(), "{}", history[0]);
    let history = all_messages(&node, &agent, &conversation).await;
    assert_eq!(history[0]["content"]["provider_type"], "deleted");
    let (_, events) = api_get(&node, &agent, &format!("{c}/events")).await;
    assert!(!events.to_string().contains("cpf-segredo"));
    // Replayed over a resuming socket, the agent gets the placeholder too.
    let since = first["created_at"].as_str().expect("time");
    let (_, replayed) = Agent::connect(
        &node,
        &agent,
        Some(json!({"since": "2020-01-01T00:00:00Z", "positions": {}})),
    )
    .await;
    assert!(!replayed.is_empty(), "nothing replayed since {since}");
    assert!(!Value::Array(replayed).to_string().contains("cpf-segredo"));

    // The audit log keeps who deleted what.
    let (_, audit) = api_get(&node, &admin, "/api/v1/audit?action=message.deleted").await;
    let entries = audit["items"].as_array().expect("items");
    assert!(!entries.is_empty(), "{audit}");
    assert_eq!(
        entries[0]["target"].as_str(),
        Some(format!("conversation:{conversation}/message:{seq}").as_str())
    );
}

#[tokio::test]
async fn a_deleted_conversation_leaves_the_inbox_until_the_contact_writes_again() {
    let node = Node::start().await;
    let tenant = provision(&node, "deleted-conversation").await;
    customer_writes(&node, &tenant, "5511970000201", "wamid.C1", "primeira").await;
    let (_, admin) = add_agent(&node, &tenant, "Admin", "admin").await;
    let (_, supervisor) = add_agent(&node, &tenant, "Sup", "supervisor").await;
    let (_, bot) = add_agent(&node, &tenant, "Bot", "bot").await;
    let agent = tenant.agent_token.clone();
    let conversation = all_conversations(&node, &agent).await[0]["id"]
        .as_str()
        .expect("id")
        .to_string();
    let c = format!("/api/v1/conversations/{conversation}");
    let (status, _) = api_request(&node, &supervisor, reqwest::Method::DELETE, &c, None).await;
    assert_eq!(
        status, 403,
        "supervisors do not delete conversations by default"
    );
    let (status, body) = api_request(&node, &admin, reqwest::Method::DELETE, &c, None).await;
    assert_eq!(status, 204, "{body}");

    for token in [&agent, &supervisor, &admin] {
        assert!(all_conversations(&node, token).await.is_empty());
        let (status, _) = api_get(&node, token, &c).await;
        assert_eq!(status, 404);
        let (status, _) = api_get(&node, token, &format!("{c}/messages")).await;
        assert_eq!(status, 404);
    }
    let (_, audit) = api_get(&node, &admin, "/api/v1/audit?action=conversation.deleted").await;
    assert_eq!(audit["items"].as_array().map(Vec::len), Some(1), "{audit}");
    // An integration reading the feed learns of the deletion, without the deleted text.
    let (status, feed) = api_get(&node, &bot, "/api/v1/feed?limit=1000").await;
    assert_eq!(status, 200, "{feed}");
    let dump = feed.to_string();
    assert!(dump.contains("conversation.deleted"), "{dump}");
    assert!(!dump.contains("primeira"), "{dump}");

    // The contact writes again: the conversation is back, its old message still deleted.
    customer_writes(&node, &tenant, "5511970000201", "wamid.C2", "segunda").await;
    let inbox = all_conversations(&node, &agent).await;
    assert_eq!(inbox.len(), 1);
    assert_eq!(inbox[0]["last_message_preview"].as_str(), Some("segunda"));
    let history = all_messages(&node, &agent, &conversation).await;
    assert_eq!(history.len(), 2);
    assert_eq!(history[0]["content"]["provider_type"], "deleted");
    assert_eq!(text_of(&history[1]), Some("segunda"));

    // Who may see deleted messages reads both, once the tenant shows them.
    set_flag(&node, &admin, "show_deleted_messages", true).await;
    let history = all_messages(&node, &supervisor, &conversation).await;
    assert_eq!(text_of(&history[0]), Some("primeira"));
}

#[tokio::test]
async fn a_user_limited_to_its_connection_sees_nothing_of_the_others() {
    let node = Node::start().await;
    let tenant = provision(&node, "own-connection").await;
    let second = add_connection(&node, &tenant).await;
    let (_, admin) = add_agent(&node, &tenant, "Admin", "admin").await;
    let (limited_id, limited) = add_agent(&node, &tenant, "Bia", "agent").await;
    customer_writes(&node, &tenant, "5511970000301", "wamid.O1", "no primeiro").await;
    customer_writes(&node, &second, "5511970000302", "wamid.O2", "no segundo").await;

    // Agents keep the tenant's defaults, plus the restriction; Bia works on the first number.
    let (_, roles) = api_get(&node, &admin, "/api/v1/roles").await;
    let mut permissions: Vec<Value> = roles["agent"].as_array().cloned().expect("the agent role");
    permissions.push(json!("only_own_connection"));
    let (status, body) = api_request(
        &node,
        &admin,
        reqwest::Method::PUT,
        "/api/v1/roles/agent",
        Some(json!({ "permissions": permissions })),
    )
    .await;
    assert_eq!(status, 200, "{body}");

    // With no default connection, a limited user sees nothing.
    assert!(all_conversations(&node, &limited).await.is_empty());
    let (status, body) = api_request(
        &node,
        &admin,
        reqwest::Method::PATCH,
        &format!("/api/v1/users/{limited_id}"),
        Some(json!({ "default_connection": tenant.connection_id })),
    )
    .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(
        body["default_connection"].as_str(),
        Some(tenant.connection_id.as_str())
    );
    let (status, body) = api_request(
        &node,
        &limited,
        reqwest::Method::PATCH,
        &format!("/api/v1/users/{limited_id}"),
        Some(json!({ "default_connection": null })),
    )
    .await;
    assert_eq!((status, body["code"].as_str()), (403, Some("forbidden")));

    let everything = all_conversations(&node, &admin).await;
    assert_eq!(everything.len(), 2);
    let on = |connection: &str| {
        everything
            .iter()
            .find(|c| c["connection_id"] == connection)
            .and_then(|c| c["id"].as_str())
            .expect("conversation")
            .to_string()
    };
    let (mine, theirs) = (on(&tenant.connection_id), on(&second.connection_id));
    let inbox = all_conversations(&node, &limited).await;
    assert_eq!(inbox.len(), 1);
    assert_eq!(inbox[0]["id"].as_str(), Some(mine.as_str()));
    for path in ["", "/messages", "/events"] {
        let (status, _) = api_get(
            &node,
            &limited,
            &format!("/api/v1/conversations/{theirs}{path}"),
        )
        .await;
        assert_eq!(status, 404, "{path}");
    }
    let (status, _) = api_request(
        &node,
        &limited,
        reqwest::Method::POST,
        &format!("/api/v1/conversations/{theirs}/toggle_priority"),
        Some(json!({"priority": "high"})),
    )
    .await;
    assert_eq!(status, 404);
    // Nobody gives Bia a ticket she could not open.
    let (status, body) = api_request(
        &node,
        &admin,
        reqwest::Method::POST,
        &format!("/api/v1/conversations/{theirs}/assignments"),
        Some(json!({"assignee_id": limited_id})),
    )
    .await;
    assert_eq!(
        (status, body["code"].as_str()),
        (422, Some("assignee_cannot_see"))
    );
    let (_, counts) = api_get(&node, &limited, "/api/v1/conversations/counts").await;
    assert_eq!(counts["all"].as_u64(), Some(1), "{counts}");
    let (_, connections) = api_get(&node, &limited, "/api/v1/connections").await;
    assert_eq!(
        connections.as_array().map(Vec::len),
        Some(1),
        "{connections}"
    );

    // Live: the other number's message never reaches the socket. It is committed and published
    // before the first number's, so it would have arrived first.
    let (mut socket, _) = Agent::connect(&node, &limited, None).await;
    customer_writes(
        &node,
        &second,
        "5511970000302",
        "wamid.O3",
        "segredo do segundo",
    )
    .await;
    customer_writes(
        &node,
        &tenant,
        "5511970000301",
        "wamid.O4",
        "de novo no primeiro",
    )
    .await;
    let events = socket
        .events_until(|events| {
            events
                .iter()
                .any(|e| e["data"]["message"]["content"]["body"] == "de novo no primeiro")
        })
        .await;
    assert!(
        events.iter().all(|e| e["conversation_id"] == mine.as_str()),
        "{events:?}"
    );
    // The users list shows the change to every member.
    let (_, users) = api_get(&node, &limited, "/api/v1/users").await;
    let users = users.as_array().cloned().expect("users");
    assert_eq!(users.len(), 3, "{users:?}");
    assert!(
        users
            .iter()
            .any(|u| u["default_connection"] == tenant.connection_id.as_str())
    );
}
