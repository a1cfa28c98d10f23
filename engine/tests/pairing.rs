//! `GET /api/v1/connections/{id}/qr` on the real binary, against the local fake of Evolution API and
//! Z-API: a screen opened after a code was pushed still reads it, a Z-API instance (which posts no
//! QR webhook) is asked for its own (once for viewers asking together), a paired connection has
//! nothing to scan, and only the admins and supervisors of the connection's tenant may read a code.

mod support;

use reqwest::StatusCode;
use serde_json::{Value, json};
use support::fake_wweb::{FakeWweb, ZAPI_QR};
use support::sessions::{add_session, admin_agent, evolution, post_webhook};
use support::{Node, api_get, provision};

async fn qr(node: &Node, token: &str, connection_id: &str) -> (StatusCode, Value) {
    let (status, body) = api_get(
        node,
        token,
        &format!("/api/v1/connections/{connection_id}/qr"),
    )
    .await;
    (StatusCode::from_u16(status).expect("status"), body)
}

#[tokio::test]
async fn evolution_s_pushed_qr_code_is_readable_later_by_admins_only_until_the_phone_pairs() {
    let fake = FakeWweb::start().await;
    let node = Node::start().await;
    let tenant = provision(&node, "pairing-evolution").await;
    let session = add_session(
        &node,
        &tenant.tenant_id,
        json!({"name": "Loja", "provider": "evolution", "server_url": fake.base,
               "instance": "acme-main", "api_key": "evo-key-1"}),
    )
    .await;
    let admin = admin_agent(&node, &tenant.tenant_id).await;

    // Nothing pushed yet: the gateway is asked for the code it shows now.
    let (status, body) = qr(&node, &admin, &session.connection_id).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["qr_code"], "data:image/png;base64,QUdBSU4=");
    assert_eq!(body["status"], "connecting");
    assert!(
        fake.received()
            .iter()
            .any(|r| r.provider == "evolution" && r.instance == "acme-main"),
        "the gateway was asked"
    );

    // Evolution pushes a code: a screen opened afterwards reads that one.
    let pushed = evolution(
        "qrcode.updated",
        json!({"qrcode": {"instance": "acme-main", "pairingCode": null, "code": "2@y8eK",
               "base64": "data:image/png;base64,UFVTSEVE"}}),
    );
    assert_eq!(
        post_webhook(&node, &session.webhook_path, &pushed).await.0,
        StatusCode::OK
    );
    let (_, body) = qr(&node, &admin, &session.connection_id).await;
    assert_eq!(body["qr_code"], "data:image/png;base64,UFVTSEVE");
    assert_eq!(body["status"], "qr_required");

    // An agent may not pair a phone; another tenant's admin does not see the connection.
    let (status, body) = qr(&node, &tenant.agent_token, &session.connection_id).await;
    assert_eq!(status, StatusCode::FORBIDDEN, "{body}");
    assert_eq!(body["code"], "forbidden");
    let other = provision(&node, "pairing-other").await;
    let other_admin = admin_agent(&node, &other.tenant_id).await;
    let (status, body) = qr(&node, &other_admin, &session.connection_id).await;
    assert_eq!(status, StatusCode::NOT_FOUND, "{body}");
    let (status, _) = qr(&node, &admin, "not-a-uuid").await;
    assert_eq!(status, StatusCode::NOT_FOUND);

    // Paired: nothing left to scan.
    let open = evolution(
        "connection.update",
        json!({"instance": "acme-main", "state": "open", "statusReason": 200}),
    );
    assert_eq!(
        post_webhook(&node, &session.webhook_path, &open).await.0,
        StatusCode::OK
    );
    let (status, body) = qr(&node, &admin, &session.connection_id).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(body["status"], "connected");
    assert_eq!(body["qr_code"], Value::Null);
}

#[tokio::test]
async fn a_zapi_instance_is_asked_for_its_qr_code_with_its_credentials() {
    let fake = FakeWweb::start().await;
    let node = Node::start_with(
        None,
        vec![("CONVERSA_ZAPI__API_BASE".into(), fake.base.clone())],
    )
    .await;
    let tenant = provision(&node, "pairing-zapi").await;
    let session = add_session(
        &node,
        &tenant.tenant_id,
        json!({"name": "Z", "provider": "zapi", "instance_id": "QRINSTANCE",
               "instance_token": "tok-1", "client_token": "client-1"}),
    )
    .await;
    let admin = admin_agent(&node, &tenant.tenant_id).await;
    // Three viewers at once: the provider is asked once, and all three get its code.
    let (a, b, c) = tokio::join!(
        qr(&node, &admin, &session.connection_id),
        qr(&node, &admin, &session.connection_id),
        qr(&node, &admin, &session.connection_id),
    );
    for (status, body) in [a, b, c] {
        assert_eq!(status, StatusCode::OK, "{body}");
        assert_eq!(body["qr_code"], ZAPI_QR);
    }
    let asked: Vec<_> = fake
        .received()
        .into_iter()
        .filter(|r| r.provider == "zapi" && r.action == "qr-code/image")
        .collect();
    assert_eq!(asked.len(), 1, "one provider call for concurrent viewers");
    let asked = asked
        .into_iter()
        .next()
        .expect("Z-API was asked for the code");
    assert_eq!(
        (
            asked.instance.as_str(),
            asked.token.as_str(),
            asked.credential.as_str()
        ),
        ("QRINSTANCE", "tok-1", "client-1")
    );
}
