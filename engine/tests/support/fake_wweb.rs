//! A local stand-in for the two WhatsApp Web gateways, in their documented shapes: Evolution API
//! (`POST /message/{sendText|sendMedia|…}/{instance}`, `/chat/markMessageAsRead/{instance}`,
//! `/chat/getBase64FromMediaMessage/{instance}`, `apikey` header; answers 201 with `key.id`) and Z-API
//! (`POST /instances/{id}/token/{token}/{method}`, `Client-Token` header; answers `zaapId`,
//! `messageId`, `id`). It records every request and serves one media file per message id.

use axum::Json;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::routing::post;
use base64::Engine;
use serde_json::{Value, json};
use std::collections::HashMap;
use std::sync::{Arc, Mutex};

/// One request the fake received.
#[derive(Clone, Debug)]
pub struct Received {
    /// `evolution` or `zapi`.
    pub provider: &'static str,
    /// Evolution instance name or Z-API instance id.
    pub instance: String,
    /// `message/sendText`, `send-text`, `read-message`, …
    pub action: String,
    /// `apikey` (Evolution) or `Client-Token` (Z-API).
    pub credential: String,
    /// Z-API's instance token from the URL.
    pub token: String,
    pub body: Value,
    /// The id the fake answered with.
    pub message_id: String,
}

#[derive(Default)]
struct Inner {
    /// When set, a Z-API send first posts its own `fromMe` echo to this webhook URL and answers only
    /// after the node acknowledged it: the echo overtakes the send's answer, deterministically.
    echo_first_to: Option<String>,
    /// When set, a Z-API text send is overtaken by a `fromMe` message with the same text but another id
    /// (the phone's owner typed the same words), posted to this webhook URL before the answer.
    phone_first_to: Option<String>,
    received: Vec<Received>,
    media: HashMap<String, (String, Vec<u8>)>,
    next: u64,
}

#[derive(Clone)]
pub struct FakeWweb {
    pub base: String,
    inner: Arc<Mutex<Inner>>,
}

impl FakeWweb {
    pub async fn start() -> FakeWweb {
        let inner: Arc<Mutex<Inner>> = Arc::default();
        let app = axum::Router::new()
            .route("/message/{action}/{instance}", post(evolution_message))
            .route("/chat/{action}/{instance}", post(evolution_chat))
            .route(
                "/instance/connect/{instance}",
                axum::routing::get(evolution_connect),
            )
            .route(
                "/instances/{id}/token/{token}/{*method}",
                post(zapi).get(zapi_get),
            )
            .route("/files/{name}", axum::routing::get(file))
            .with_state(Arc::clone(&inner));
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind fake wweb");
        let base = format!("http://{}", listener.local_addr().expect("addr"));
        tokio::spawn(async move { axum::serve(listener, app).await });
        FakeWweb { base, inner }
    }

    /// Makes every Z-API text send echo itself to `webhook_url` before answering.
    pub fn echo_before_answering(&self, webhook_url: &str) {
        self.inner.lock().expect("lock").echo_first_to = Some(webhook_url.to_string());
    }

    /// Makes every Z-API text send be overtaken by the phone owner typing the same text.
    pub fn phone_types_the_same_before_answering(&self, webhook_url: &str) {
        self.inner.lock().expect("lock").phone_first_to = Some(webhook_url.to_string());
    }

    pub fn received(&self) -> Vec<Received> {
        self.inner.lock().expect("lock").received.clone()
    }

    /// Serves `bytes` for the Evolution message `message_id` and at `{base}/files/{message_id}`.
    pub fn add_media(&self, message_id: &str, mime_type: &str, bytes: Vec<u8>) {
        self.inner
            .lock()
            .expect("lock")
            .media
            .insert(message_id.to_string(), (mime_type.to_string(), bytes));
    }
}

fn record(inner: &Mutex<Inner>, mut received: Received) -> String {
    let mut inner = inner.lock().expect("lock");
    inner.next += 1;
    let id = format!("3EB0FAKE{:08}", inner.next);
    received.message_id = id.clone();
    inner.received.push(received);
    id
}

fn header(headers: &HeaderMap, name: &str) -> String {
    headers
        .get(name)
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_string()
}

async fn evolution_message(
    State(inner): State<Arc<Mutex<Inner>>>,
    Path((action, instance)): Path<(String, String)>,
    headers: HeaderMap,
    Json(body): Json<Value>,
) -> (StatusCode, Json<Value>) {
    let remote_jid = format!(
        "{}@s.whatsapp.net",
        body["number"].as_str().unwrap_or_default()
    );
    let id = record(
        &inner,
        Received {
            provider: "evolution",
            instance,
            action: format!("message/{action}"),
            credential: header(&headers, "apikey"),
            token: String::new(),
            body,
            message_id: String::new(),
        },
    );
    (
        StatusCode::CREATED,
        Json(
            json!({"key": {"remoteJid": remote_jid, "fromMe": true, "id": id},
                    "message": {}, "messageTimestamp": "1717689097", "status": "PENDING"}),
        ),
    )
}

async fn evolution_chat(
    State(inner): State<Arc<Mutex<Inner>>>,
    Path((action, instance)): Path<(String, String)>,
    headers: HeaderMap,
    Json(body): Json<Value>,
) -> (StatusCode, Json<Value>) {
    let media_id = body
        .pointer("/message/key/id")
        .and_then(Value::as_str)
        .map(str::to_string);
    record(
        &inner,
        Received {
            provider: "evolution",
            instance,
            action: format!("chat/{action}"),
            credential: header(&headers, "apikey"),
            token: String::new(),
            body,
            message_id: String::new(),
        },
    );
    if action == "getBase64FromMediaMessage" {
        let media = media_id.and_then(|id| inner.lock().expect("lock").media.get(&id).cloned());
        return match media {
            Some((mime, bytes)) => (
                StatusCode::CREATED,
                Json(json!({"mediaType": "imageMessage", "mimetype": mime,
                            "base64": base64::engine::general_purpose::STANDARD.encode(bytes)})),
            ),
            None => (
                StatusCode::BAD_REQUEST,
                Json(json!({"status": 400, "error": "Bad Request",
                            "response": {"message": ["Message not found"]}})),
            ),
        };
    }
    (
        StatusCode::CREATED,
        Json(json!({"message": "Read messages", "read": "success"})),
    )
}

async fn zapi(
    State(inner): State<Arc<Mutex<Inner>>>,
    Path((id, token, method)): Path<(String, String, String)>,
    headers: HeaderMap,
    Json(body): Json<Value>,
) -> (StatusCode, Json<Value>) {
    let message_id = record(
        &inner,
        Received {
            provider: "zapi",
            instance: id,
            action: method.clone(),
            credential: header(&headers, "client-token"),
            token,
            body,
            message_id: String::new(),
        },
    );
    if method == "read-message" {
        return (StatusCode::NO_CONTENT, Json(Value::Null));
    }
    let (echo_to, phone_to) = {
        let inner = inner.lock().expect("lock");
        (inner.echo_first_to.clone(), inner.phone_first_to.clone())
    };
    let sent = inner.lock().expect("lock").received.last().cloned();
    if let (Some(url), Some(sent)) = (phone_to, sent.clone())
        && method == "send-text"
    {
        let typed = json!({"isGroup": false, "isNewsletter": false, "instanceId": sent.instance,
            "messageId": format!("3EB0PHONE{message_id}"), "phone": sent.body["phone"], "fromMe": true,
            "fromApi": false, "momment": 1632229000000_i64, "status": "SENT", "chatName": "Maria",
            "senderName": "ACME", "broadcast": false, "type": "ReceivedCallback",
            "text": {"message": sent.body["message"]}});
        let answered = reqwest::Client::new().post(&url).json(&typed).send().await;
        assert!(
            answered.is_ok_and(|r| r.status().is_success()),
            "the node acknowledged the phone's message"
        );
    }
    if let (Some(url), Some(sent)) = (echo_to, sent)
        && method == "send-text"
    {
        let echo = json!({"isGroup": false, "isNewsletter": false, "instanceId": sent.instance,
            "messageId": message_id, "phone": sent.body["phone"], "fromMe": true, "fromApi": true,
            "momment": 1632229000000_i64, "status": "SENT", "chatName": "Maria", "senderName": "ACME",
            "broadcast": false, "type": "ReceivedCallback",
            "text": {"message": sent.body["message"]}});
        let answered = reqwest::Client::new().post(&url).json(&echo).send().await;
        assert!(
            answered.is_ok_and(|r| r.status().is_success()),
            "the node acknowledged the echo"
        );
    }
    (
        StatusCode::OK,
        Json(
            json!({"zaapId": "3999984263738042930CD6ECDE9VDWSA", "messageId": message_id, "id": message_id}),
        ),
    )
}

async fn file(
    State(inner): State<Arc<Mutex<Inner>>>,
    Path(name): Path<String>,
) -> Result<([(axum::http::HeaderName, String); 1], Vec<u8>), StatusCode> {
    let media = inner.lock().expect("lock").media.get(&name).cloned();
    let (mime, bytes) = media.ok_or(StatusCode::NOT_FOUND)?;
    Ok(([(axum::http::header::CONTENT_TYPE, mime)], bytes))
}

async fn evolution_connect(
    State(inner): State<Arc<Mutex<Inner>>>,
    Path(instance): Path<String>,
    headers: HeaderMap,
) -> Json<Value> {
    record(
        &inner,
        Received {
            provider: "evolution",
            instance,
            action: "instance/connect".into(),
            credential: header(&headers, "apikey"),
            token: String::new(),
            body: Value::Null,
            message_id: String::new(),
        },
    );
    Json(
        json!({"pairingCode": null, "code": "2@again", "base64": "data:image/png;base64,QUdBSU4=", "count": 1}),
    )
}

/// The QR code the fake Z-API instance shows (`GET …/qr-code/image`).
pub const ZAPI_QR: &str = "data:image/png;base64,WkFQSS1RUg==";

async fn zapi_get(
    State(inner): State<Arc<Mutex<Inner>>>,
    Path((id, token, method)): Path<(String, String, String)>,
    headers: HeaderMap,
) -> Json<Value> {
    record(
        &inner,
        Received {
            provider: "zapi",
            instance: id,
            action: method.clone(),
            credential: header(&headers, "client-token"),
            token,
            body: Value::Null,
            message_id: String::new(),
        },
    );
    if method == "qr-code/image" {
        return Json(json!({"value": ZAPI_QR}));
    }
    Json(json!({"value": true}))
}
