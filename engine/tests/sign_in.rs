//! End to end on the real binary (issue 15, part): a user signs in with an email and a password, uses
//! the short access token, refreshes it (once: a reused refresh token ends the session), lists and
//! revokes sessions, changes the password (other sign-ins end), and holds API keys that expire and
//! are revoked; failed sign-ins are throttled, and an email names one user.

mod support;

use futures::StreamExt;
use serde_json::{Value, json};
use support::{ADMIN_TOKEN, Agent, Node, add_agent, api_get, api_post, api_request, provision};
use tokio_tungstenite::tungstenite::Message;

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

async fn set_credentials(
    node: &Node,
    tenant: &str,
    agent: &str,
    email: &str,
    password: &str,
) -> u16 {
    reqwest::Client::new()
        .put(node.url(&format!(
            "/api/v1/admin/tenants/{tenant}/agents/{agent}/credentials"
        )))
        .bearer_auth(ADMIN_TOKEN)
        .json(&json!({"email": email, "password": password}))
        .send()
        .await
        .expect("request")
        .status()
        .as_u16()
}

async fn sign_in(node: &Node, email: &str, password: &str) -> (u16, Value) {
    post(
        node,
        "/api/v1/auth/sign_in",
        json!({"email": email, "password": password, "label": "test"}),
    )
    .await
}

fn token(body: &Value, field: &str) -> String {
    body[field].as_str().expect(field).to_string()
}

#[tokio::test]
async fn a_user_signs_in_refreshes_once_and_revokes_sessions_and_keys() {
    // Sockets check their token every second here (a minute by default).
    let check = (
        "CONVERSA_GATEWAY__WS_CREDENTIAL_CHECK_SECS".to_string(),
        "1".to_string(),
    );
    let node = Node::start_with(None, vec![check]).await;
    let tenant = provision(&node, "sign-in").await;
    let (ana, ana_key) = add_agent(&node, &tenant, "Ana", "agent").await;
    let other = provision(&node, "sign-in-other").await;
    let (bia, _) = add_agent(&node, &other, "Bia", "agent").await;
    assert_eq!(
        set_credentials(
            &node,
            &tenant.tenant_id,
            &ana,
            "Ana@Example.com",
            "correct horse battery"
        )
        .await,
        204
    );
    assert_eq!(
        set_credentials(
            &node,
            &other.tenant_id,
            &bia,
            "ana@example.com",
            "another good password"
        )
        .await,
        409,
        "an email names one user"
    );
    assert_eq!(
        set_credentials(&node, &tenant.tenant_id, &ana, "ana@example.com", "short").await,
        400
    );
    assert_eq!(
        set_credentials(
            &node,
            &other.tenant_id,
            &ana,
            "x@example.com",
            "correct horse battery"
        )
        .await,
        404,
        "not another tenant's agent"
    );

    // Sign in: the access token works on the API; the refresh token does not.
    let (status, signed) = sign_in(&node, "ana@example.com", "correct horse battery").await;
    assert_eq!(status, 200, "{signed}");
    assert_eq!(signed["agent"]["id"], ana.as_str());
    let (access, refresh) = (
        token(&signed, "access_token"),
        token(&signed, "refresh_token"),
    );
    let (status, _) = api_get(&node, &access, "/api/v1/conversations").await;
    assert_eq!(status, 200);
    let (status, _) = api_get(&node, &refresh, "/api/v1/conversations").await;
    assert_eq!(status, 401, "a refresh token is not an access token");

    // Refresh: new tokens; the old access token stops; the spent refresh token, presented again,
    // ends the session.
    let (status, renewed) = post(
        &node,
        "/api/v1/auth/refresh",
        json!({"refresh_token": refresh}),
    )
    .await;
    assert_eq!(status, 200, "{renewed}");
    assert_eq!(renewed["session_id"], signed["session_id"]);
    let new_access = token(&renewed, "access_token");
    let (status, _) = api_get(&node, &access, "/api/v1/conversations").await;
    assert_eq!(status, 401, "the previous access token is gone");
    let (status, _) = api_get(&node, &new_access, "/api/v1/conversations").await;
    assert_eq!(status, 200);
    let (status, reused) = post(
        &node,
        "/api/v1/auth/refresh",
        json!({"refresh_token": refresh}),
    )
    .await;
    assert_eq!(
        (status, reused["code"].as_str()),
        (401, Some("refresh_token_reused"))
    );
    let (status, _) = api_get(&node, &new_access, "/api/v1/conversations").await;
    assert_eq!(status, 401, "the whole session ended");

    // Two sign-ins and the operator's key: listed; revoking one ends only it.
    let (_, first) = sign_in(&node, "ana@example.com", "correct horse battery").await;
    let (_, second) = sign_in(&node, "ana@example.com", "correct horse battery").await;
    let first_access = token(&first, "access_token");
    let second_access = token(&second, "access_token");
    let (status, list) = api_get(&node, &first_access, "/api/v1/auth/sessions").await;
    assert_eq!(status, 200, "{list}");
    let list = list.as_array().expect("sessions").clone();
    assert_eq!(
        list.len(),
        3,
        "two sign-ins and the key made with the user: {list:?}"
    );
    assert_eq!(
        list.iter().filter(|s| s["current"] == true).count(),
        1,
        "{list:?}"
    );
    let (socket, _) = Agent::connect(&node, &second_access, None).await;
    let (status, _) = api_request(
        &node,
        &first_access,
        reqwest::Method::DELETE,
        &format!(
            "/api/v1/auth/sessions/{}",
            second["session_id"].as_str().expect("id")
        ),
        None,
    )
    .await;
    assert_eq!(status, 204);
    let (status, _) = api_get(&node, &second_access, "/api/v1/conversations").await;
    assert_eq!(status, 401);
    // Its open socket ends too, with the code that says to refresh.
    let mut raw = socket.into_inner();
    let code = loop {
        match tokio::time::timeout(std::time::Duration::from_secs(30), raw.next()).await {
            Ok(Some(Ok(Message::Close(Some(frame))))) => break u16::from(frame.code),
            Ok(Some(Ok(_))) => continue,
            other => panic!("the socket did not close: {other:?}"),
        }
    };
    assert_eq!(code, 4001);
    let (status, _) = api_get(&node, &first_access, "/api/v1/conversations").await;
    assert_eq!(status, 200);

    // API keys: created, used, revoked; the key made with the user is one of them.
    let (status, key) = api_post(
        &node,
        &first_access,
        "/api/v1/auth/api_keys",
        json!({"label": "integração", "expires_in_days": 30}),
    )
    .await;
    assert_eq!(status, 201, "{key}");
    let key_token = token(&key, "token");
    let (status, _) = api_get(&node, &key_token, "/api/v1/conversations").await;
    assert_eq!(status, 200);
    let (status, _) = api_request(
        &node,
        &first_access,
        reqwest::Method::DELETE,
        &format!(
            "/api/v1/auth/sessions/{}",
            key["session_id"].as_str().expect("id")
        ),
        None,
    )
    .await;
    assert_eq!(status, 204);
    let (status, _) = api_get(&node, &key_token, "/api/v1/conversations").await;
    assert_eq!(status, 401, "a revoked key");
    let (status, sessions) = api_get(&node, &ana_key, "/api/v1/auth/sessions").await;
    assert_eq!(status, 200, "the operator's key is an API key");
    let operator_key = sessions
        .as_array()
        .expect("sessions")
        .iter()
        .find(|s| s["kind"] == "api_key")
        .expect("listed")
        .clone();
    let (status, _) = api_request(
        &node,
        &first_access,
        reqwest::Method::DELETE,
        &format!(
            "/api/v1/auth/sessions/{}",
            operator_key["id"].as_str().expect("id")
        ),
        None,
    )
    .await;
    assert_eq!(status, 204);
    let (status, _) = api_get(&node, &ana_key, "/api/v1/conversations").await;
    assert_eq!(status, 401, "the key made with the user is revoked too");

    // Password change: the current sign-in stays, the others end, the old password stops working.
    let (_, third) = sign_in(&node, "ana@example.com", "correct horse battery").await;
    let (status, _) = api_post(
        &node,
        &first_access,
        "/api/v1/auth/password",
        json!({"current_password": "wrong password!", "new_password": "a new good password"}),
    )
    .await;
    assert_eq!(status, 401);
    let (status, _) = api_post(
        &node,
        &first_access,
        "/api/v1/auth/password",
        json!({"current_password": "correct horse battery", "new_password": "a new good password"}),
    )
    .await;
    assert_eq!(status, 204);
    let (status, _) = api_get(
        &node,
        &token(&third, "access_token"),
        "/api/v1/conversations",
    )
    .await;
    assert_eq!(status, 401, "other sign-ins end");
    let (status, _) = api_get(&node, &first_access, "/api/v1/conversations").await;
    assert_eq!(status, 200, "this one stays");
    let (status, _) = sign_in(&node, "ana@example.com", "correct horse battery").await;
    assert_eq!(status, 401);
    let (status, _) = sign_in(&node, "ana@example.com", "a new good password").await;
    assert_eq!(status, 200);

    // Sign out ends the session of the token used.
    let (status, _) = api_post(&node, &first_access, "/api/v1/auth/sign_out", json!({})).await;
    assert_eq!(status, 204);
    let (status, _) = api_get(&node, &first_access, "/api/v1/conversations").await;
    assert_eq!(status, 401);
}

#[tokio::test]
async fn failed_sign_ins_are_throttled_per_email_and_unknown_emails_look_the_same() {
    let node = Node::start().await;
    let tenant = provision(&node, "throttle").await;
    let (ana, _) = add_agent(&node, &tenant, "Ana", "agent").await;
    assert_eq!(
        set_credentials(
            &node,
            &tenant.tenant_id,
            &ana,
            "ana@throttle.example",
            "correct horse battery"
        )
        .await,
        204
    );
    let (status, unknown) = sign_in(&node, "nobody@throttle.example", "whatever it is").await;
    let (status_wrong, wrong) = sign_in(&node, "ana@throttle.example", "wrong password 1").await;
    assert_eq!((status, status_wrong), (401, 401));
    assert_eq!(
        unknown["detail"], wrong["detail"],
        "an unknown email is not revealed"
    );
    for n in 2..=5 {
        let (status, _) = sign_in(
            &node,
            "ana@throttle.example",
            &format!("wrong password {n}"),
        )
        .await;
        assert_eq!(status, 401);
    }
    let (status, blocked) = sign_in(&node, "ana@throttle.example", "correct horse battery").await;
    assert_eq!(
        (status, blocked["code"].as_str()),
        (429, Some("too_many_attempts")),
        "{blocked}"
    );
    let (status, _) = sign_in(&node, "nobody@throttle.example", "whatever it is").await;
    assert_eq!(status, 401, "other emails are not blocked");
    for bad in [
        json!({"email": "ana@throttle.example"}),
        json!({"email": "ana@throttle.example", "password": "x", "extra": 1}),
    ] {
        let (status, body) = post(&node, "/api/v1/auth/sign_in", bad.clone()).await;
        assert_eq!(status, 400, "{bad}: {body}");
    }
    let (status, _) = post(
        &node,
        "/api/v1/auth/refresh",
        json!({"refresh_token": "cva_nope"}),
    )
    .await;
    assert_eq!(status, 401);
}
