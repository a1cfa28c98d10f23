//! End to end on the real binary (issue 14): an agent starts a conversation from our side. WhatsApp
//! only delivers a template to a contact whose window never opened, so free text is refused with
//! nothing stored; a template creates the conversation assigned to the agent and goes out through the
//! Cloud API (a local fake); the contact's reply lands in the same conversation, and a later start
//! writes into it.

mod support;

use serde_json::{Value, json};
use support::fake_graph::FakeGraph;
use support::{Node, api_get, api_post, provision, whatsapp};

#[tokio::test]
async fn an_agent_starts_a_conversation_with_a_template_and_the_contacts_reply_lands_in_it() {
    let graph = FakeGraph::start().await;
    let node = Node::start_with(Some(graph.base.clone()), Vec::new()).await;
    let tenant = provision(&node, "outreach").await;
    let other = provision(&node, "outreach-other").await;
    let token = tenant.agent_token.clone();
    let start = |token: String, body: Value| {
        let node = &node;
        async move { api_post(node, &token, "/api/v1/conversations", body).await }
    };
    let contact = json!({"address": "+55 (11) 97777-6666", "name": "Joana"});

    // Free text to a contact who never wrote: WhatsApp would not deliver it.
    let (status, refused) = start(
        token.clone(),
        json!({"connection_id": tenant.connection_id,
        "contact": contact, "message": {"text": "Oi Joana!"}}),
    )
    .await;
    assert_eq!(
        (status, refused["code"].as_str()),
        (422, Some("customer_service_window_closed")),
        "{refused}"
    );
    let (_, inbox) = api_get(&node, &token, "/api/v1/conversations").await;
    assert_eq!(inbox["items"], json!([]), "nothing stored");

    let (status, started) = start(token.clone(), json!({"connection_id": tenant.connection_id, "contact": contact,
        "message": {"template": {"name": "boas_vindas", "language": "pt_BR", "body_parameters": ["Joana"]}}})).await;
    assert_eq!(status, 202, "{started}");
    let conversation = started["conversation_id"].as_str().expect("id").to_string();
    let (_, created) = api_get(
        &node,
        &token,
        &format!("/api/v1/conversations/{conversation}"),
    )
    .await;
    assert_eq!(created["contact"]["address"], "5511977776666");
    assert_eq!(created["contact"]["name"], "Joana");
    assert_eq!(
        created["status"], "in_progress",
        "the agent who started it attends it"
    );
    assert!(created["assignee"].is_string());
    assert_eq!(created["ticket_number"], 1);
    support::eventually("the template reaches the Cloud API", || async {
        graph
            .requests()
            .into_iter()
            .find(|r| r.body["type"] == "template")
            .map(|r| {
                assert_eq!(r.body["to"], "5511977776666");
                assert_eq!(r.body["template"]["name"], "boas_vindas");
            })
    })
    .await;

    // The conversation's customer now has a contact.
    let (status, joana) = api_get(
        &node,
        &token,
        &format!("/api/v1/conversations/{conversation}/contact"),
    )
    .await;
    assert_eq!((status, &joana["name"]), (200, &json!("Joana")), "{joana}");

    // Starting with an existing contact, named by id.
    let (status, pedro) = api_post(
        &node,
        &token,
        "/api/v1/contacts",
        json!({"name": "Pedro", "addresses": [{"channel": "whatsapp", "address": "5511966665555"}]}),
    )
    .await;
    assert_eq!(status, 201, "{pedro}");
    let template = json!({"template": {"name": "boas_vindas", "language": "pt_BR"}});
    let (status, with_pedro) = start(
        token.clone(),
        json!({"connection_id": tenant.connection_id, "contact": {"id": pedro["id"]},
        "message": template}),
    )
    .await;
    assert_eq!(status, 202, "{with_pedro}");
    let (_, created) = api_get(
        &node,
        &token,
        &format!(
            "/api/v1/conversations/{}",
            with_pedro["conversation_id"].as_str().expect("id")
        ),
    )
    .await;
    assert_eq!(
        created["contact"],
        json!({"address": "5511966665555", "name": "Pedro"})
    );
    for (contact, expected) in [
        (json!({"id": pedro["id"], "address": "5511966665555"}), 400),
        (json!({}), 400),
        (json!({"id": uuid::Uuid::now_v7()}), 404),
    ] {
        let (status, answer) = start(
            token.clone(),
            json!({"connection_id": tenant.connection_id, "contact": contact, "message": template}),
        )
        .await;
        assert_eq!(status, expected, "{contact}: {answer}");
    }

    // The contact answers: the same conversation.
    let payload = whatsapp::webhook(
        &tenant.phone_number_id,
        vec![whatsapp::text("5511977776666", "wamid.J1", "Oi! Recebi")],
        vec![],
    );
    let (status, _) = whatsapp::post(&node, &tenant, &payload).await;
    assert_eq!(status, 200);
    let (_, inbox) = api_get(&node, &token, "/api/v1/conversations").await;
    assert_eq!(inbox["items"].as_array().map(Vec::len), Some(2));
    assert_eq!(inbox["items"][0]["id"], conversation.as_str());

    // With the window open, a start with text writes into it.
    let (status, again) = start(
        token.clone(),
        json!({"connection_id": tenant.connection_id,
        "contact": {"address": "5511977776666"}, "message": {"text": "Que bom!"}}),
    )
    .await;
    assert_eq!(status, 202, "{again}");
    assert_eq!(again["conversation_id"], conversation.as_str());

    // Bad input and other tenants.
    for (body, expected) in [
        (
            json!({"connection_id": tenant.connection_id, "contact": {"address": "12"}, "message": {"text": "x"}}),
            422,
        ),
        (
            json!({"connection_id": tenant.connection_id, "contact": {"address": "abc"}, "message": {"text": "x"}}),
            422,
        ),
        (
            json!({"connection_id": tenant.connection_id, "contact": {"address": "5511977776666"}, "message": {}}),
            422,
        ),
        (
            json!({"connection_id": tenant.connection_id, "contact": {"address": "5511977776666"}}),
            400,
        ),
        (
            json!({"connection_id": uuid::Uuid::now_v7(), "contact": {"address": "5511977776666"}, "message": {"text": "x"}}),
            404,
        ),
    ] {
        let (status, answer) = start(token.clone(), body.clone()).await;
        assert_eq!(status, expected, "{body}: {answer}");
    }
    let (status, _) = start(
        other.agent_token.clone(),
        json!({"connection_id": tenant.connection_id,
        "contact": {"address": "5511977776666"}, "message": {"text": "x"}}),
    )
    .await;
    assert_eq!(status, 404, "another tenant's connection");
    let (status, _) = start(
        other.agent_token.clone(),
        json!({"connection_id": other.connection_id, "contact": {"id": pedro["id"]},
        "message": {"text": "x"}}),
    )
    .await;
    assert_eq!(status, 404, "another tenant's contact");
}
