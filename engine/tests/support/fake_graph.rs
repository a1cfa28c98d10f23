//! A local stand-in for Meta's Graph API send endpoint (`POST /{version}/{phone_number_id}/messages`),
//! answering in the documented shape and recording what it received.

use axum::Json;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::routing::post;
use serde_json::{Value, json};
use std::sync::{Arc, Mutex};

/// One request the fake received.
#[derive(Clone, Debug)]
pub struct SentRequest {
    pub phone_number_id: String,
    pub authorization: String,
    pub body: Value,
    pub wamid: String,
}

/// The running fake.
#[derive(Clone)]
pub struct FakeGraph {
    pub base: String,
    pub sent: Arc<Mutex<Vec<SentRequest>>>,
}

impl FakeGraph {
    pub async fn start() -> FakeGraph {
        let sent: Arc<Mutex<Vec<SentRequest>>> = Arc::default();
        let app = axum::Router::new()
            .route("/{version}/{phone_number_id}/messages", post(send))
            .with_state(Arc::clone(&sent));
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind fake graph");
        let base = format!("http://{}", listener.local_addr().expect("addr"));
        tokio::spawn(async move { axum::serve(listener, app).await });
        FakeGraph { base, sent }
    }

    pub fn requests(&self) -> Vec<SentRequest> {
        self.sent.lock().map(|s| s.clone()).unwrap_or_default()
    }
}

async fn send(
    State(sent): State<Arc<Mutex<Vec<SentRequest>>>>,
    Path((_version, phone_number_id)): Path<(String, String)>,
    headers: HeaderMap,
    Json(body): Json<Value>,
) -> (StatusCode, Json<Value>) {
    let authorization = headers
        .get("authorization")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_string();
    let mut sent = sent.lock().expect("lock");
    let wamid = format!("wamid.OUT{}", sent.len() + 1);
    let to = body["to"].as_str().unwrap_or_default().to_string();
    sent.push(SentRequest {
        phone_number_id,
        authorization,
        body,
        wamid: wamid.clone(),
    });
    (
        StatusCode::OK,
        Json(
            json!({"messaging_product": "whatsapp", "contacts": [{"input": to, "wa_id": to}],
                    "messages": [{"id": wamid}]}),
        ),
    )
}
