//! Invitations and password resets by email on the real binary, through a local SMTP sink (issue
//! 15): an admin invites a user, the sink receives the email, its link sets the password once and
//! signs the user in; a reset link sets a new password once and ends the user's sign-ins; a tenant's
//! own SMTP account (its password sealed, never served back) carries its mail instead of the
//! platform's.

mod support;

use serde_json::{Value, json};
use support::smtp_sink::SmtpSink;
use support::{Node, add_agent, api_get, api_post, api_request, eventually, provision};

async fn post(node: &Node, path: &str, body: Value) -> (u16, Value) {
    let response = reqwest::Client::new()
        .post(node.url(path))
        .json(&body)
        .send()
        .await
        .expect("request");
    let status = response.status().as_u16();
    (status, response.json().await.unwrap_or(Value::Null))
}

async fn sign_in(node: &Node, email: &str, password: &str) -> u16 {
    post(
        node,
        "/api/v1/auth/sign_in",
        json!({"email": email, "password": password}),
    )
    .await
    .0
}

#[tokio::test]
async fn an_invited_user_sets_a_password_from_the_emailed_link_and_resets_it_later() {
    let sink = SmtpSink::start().await;
    let node = Node::start_with(None, sink.env()).await;
    let tenant = provision(&node, "Loja Azul").await;
    let (_, admin) = add_agent(&node, &tenant, "Ana", "admin").await;
    let email = format!("nova-{}@example.com", uuid::Uuid::now_v7().simple());

    let invite = json!({"email": email, "name": "Nova", "role": "agent"});
    let (status, _) = api_post(
        &node,
        &tenant.agent_token,
        "/api/v1/invitations",
        invite.clone(),
    )
    .await;
    assert_eq!(status, 403, "agents do not invite");
    let (status, invited) = api_post(&node, &admin, "/api/v1/invitations", invite.clone()).await;
    assert_eq!(status, 201, "{invited}");
    let messages = sink.messages();
    assert_eq!(messages.len(), 1);
    assert_eq!(messages[0].to, vec![email.clone()]);
    assert_eq!(messages[0].from, "no-reply@conversa.test");
    assert!(
        messages[0].text().contains("Loja Azul"),
        "{}",
        messages[0].text()
    );
    let token = messages[0].token().expect("a link with a token");

    let accept = |token: &str, password: &str| {
        let body = json!({"token": token, "password": password});
        let node = &node;
        async move { post(node, "/api/v1/auth/invitations/accept", body).await }
    };
    let (status, weak) = accept(&token, "short").await;
    assert_eq!(
        (status, weak["code"].as_str()),
        (400, Some("weak_password"))
    );
    let (status, signed) = accept(&token, "first password 1").await;
    assert_eq!(status, 200, "{signed}");
    assert_eq!(signed["agent"]["name"], "Nova");
    let access = signed["access_token"].as_str().expect("token").to_string();
    let (status, _) = api_get(&node, &access, "/api/v1/conversations").await;
    assert_eq!(status, 200);
    let (status, used) = accept(&token, "another password 2").await;
    assert_eq!((status, used["code"].as_str()), (401, Some("invalid_link")));
    assert_eq!(sign_in(&node, &email, "first password 1").await, 200);
    let (status, taken) = api_post(&node, &admin, "/api/v1/invitations", invite).await;
    assert_eq!((status, taken["code"].as_str()), (409, Some("email_taken")));

    // A reset: an unknown email looks the same; the known one gets a link that works once.
    let (status, _) = post(
        &node,
        "/api/v1/auth/password_reset",
        json!({"email": "nobody@example.com"}),
    )
    .await;
    assert_eq!(status, 202);
    let (status, _) = post(
        &node,
        "/api/v1/auth/password_reset",
        json!({"email": email}),
    )
    .await;
    assert_eq!(status, 202);
    let reset = eventually("the reset email arrives", || async {
        sink.messages().into_iter().nth(1)
    })
    .await;
    assert_eq!(reset.to, vec![email.clone()]);
    let token = reset.token().expect("a link with a token");
    let confirm = json!({"token": token, "password": "second password 2"});
    let (status, body) = post(
        &node,
        "/api/v1/auth/password_reset/confirm",
        confirm.clone(),
    )
    .await;
    assert_eq!(status, 204, "{body}");
    let (status, _) = api_get(&node, &access, "/api/v1/conversations").await;
    assert_eq!(status, 401, "a reset ends the user's sign-ins");
    assert_eq!(sign_in(&node, &email, "first password 1").await, 401);
    assert_eq!(sign_in(&node, &email, "second password 2").await, 200);
    let (status, _) = post(&node, "/api/v1/auth/password_reset/confirm", confirm).await;
    assert_eq!(status, 401, "a reset link works once");
    assert!(
        sink.messages().iter().all(|m| m.to == [email.clone()]),
        "nothing went to an unknown email"
    );

    // The audit log has the invitation and the password set from it.
    let (_, log) = api_get(&node, &admin, "/api/v1/audit?target=user:").await;
    let actions: Vec<&str> = log["items"]
        .as_array()
        .expect("items")
        .iter()
        .filter_map(|e| e["action"].as_str())
        .collect();
    assert!(
        actions.contains(&"auth.credentials_set") && actions.contains(&"user.created"),
        "{actions:?}"
    );
}

#[tokio::test]
async fn a_tenant_s_own_smtp_account_carries_its_mail_with_its_password_never_served() {
    let platform = SmtpSink::start().await;
    let own = SmtpSink::start().await;
    let node = Node::start_with(None, platform.env()).await;
    let tenant = provision(&node, "Loja Verde").await;
    let (_, admin) = add_agent(&node, &tenant, "Ana", "admin").await;

    let (status, _) = api_get(&node, &admin, "/api/v1/smtp").await;
    assert_eq!(status, 404, "no account of its own yet");
    let account = json!({"host": "127.0.0.1", "port": own.port, "security": "none",
        "username": "loja", "password": "s3cr3t-smtp", "from_email": "suporte@loja.test",
        "from_name": "Loja Verde"});
    let (status, _) = api_request(
        &node,
        &tenant.agent_token,
        reqwest::Method::PUT,
        "/api/v1/smtp",
        Some(account.clone()),
    )
    .await;
    assert_eq!(status, 403);
    let bad = json!({"host": "x\r\ny", "port": 25, "from_email": "a@b.c"});
    let (status, _) = api_request(
        &node,
        &admin,
        reqwest::Method::PUT,
        "/api/v1/smtp",
        Some(bad),
    )
    .await;
    assert_eq!(status, 400);
    let (status, stored) = api_request(
        &node,
        &admin,
        reqwest::Method::PUT,
        "/api/v1/smtp",
        Some(account),
    )
    .await;
    assert_eq!(status, 200, "{stored}");
    let (status, served) = api_get(&node, &admin, "/api/v1/smtp").await;
    assert_eq!(status, 200);
    assert_eq!(served["has_password"], true);
    assert!(
        !served.to_string().contains("s3cr3t"),
        "the password is never served"
    );

    let email = format!("outro-{}@example.com", uuid::Uuid::now_v7().simple());
    let (status, invited) = api_post(
        &node,
        &admin,
        "/api/v1/invitations",
        json!({"email": email, "name": "Outro"}),
    )
    .await;
    assert_eq!(status, 201, "{invited}");
    let mail = own.messages();
    assert_eq!(mail.len(), 1, "the tenant's own server took it");
    assert_eq!(mail[0].from, "suporte@loja.test");
    assert_eq!(
        mail[0].login,
        Some(("loja".to_string(), "s3cr3t-smtp".to_string())),
        "its sealed password was opened to log in"
    );
    assert!(platform.messages().is_empty());

    // Removed: the platform's account carries it again.
    let (status, _) =
        api_request(&node, &admin, reqwest::Method::DELETE, "/api/v1/smtp", None).await;
    assert_eq!(status, 204);
    let email = format!("mais-{}@example.com", uuid::Uuid::now_v7().simple());
    let (status, _) = api_post(
        &node,
        &admin,
        "/api/v1/invitations",
        json!({"email": email, "name": "Mais"}),
    )
    .await;
    assert_eq!(status, 201);
    assert_eq!(platform.messages().len(), 1);
}

#[tokio::test]
async fn an_invitation_that_cannot_be_sent_is_refused_and_creates_nobody() {
    let node = Node::start().await;
    let tenant = provision(&node, "sem email").await;
    let (_, admin) = add_agent(&node, &tenant, "Ana", "admin").await;
    let (status, refused) = api_post(
        &node,
        &admin,
        "/api/v1/invitations",
        json!({"email": "x@example.com", "name": "X"}),
    )
    .await;
    assert_eq!(
        (status, refused["code"].as_str()),
        (422, Some("smtp_not_configured"))
    );
    // A server that does not take the email: nothing is done, and saying so is true.
    let unreachable = json!({"host": "127.0.0.1", "port": 1, "security": "none",
                             "from_email": "suporte@loja.test"});
    let (status, _) = api_request(
        &node,
        &admin,
        reqwest::Method::PUT,
        "/api/v1/smtp",
        Some(unreachable),
    )
    .await;
    assert_eq!(status, 200);
    let (status, failed) = api_post(
        &node,
        &admin,
        "/api/v1/invitations",
        json!({"email": "x@example.com", "name": "X"}),
    )
    .await;
    assert_eq!(
        (status, failed["code"].as_str()),
        (503, Some("mail_failed"))
    );
    let path = format!("/api/v1/admin/tenants/{}", tenant.tenant_id);
    let (_, summary) = api_request(
        &node,
        support::ADMIN_TOKEN,
        reqwest::Method::GET,
        &path,
        None,
    )
    .await;
    assert_eq!(summary["usage"]["users"], 2, "nobody was created");
}
