//! A local stand-in for Meta's Graph API send endpoint (`POST /{version}/{phone_number_id}/messages`),
//! answering in the documented shape and recording what it received. Answers can be scripted per
//! phone number (errors, hangs) to exercise retries; unscripted requests succeed.

use axum::Json;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::routing::post;
use serde_json::{Value, json};
use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// One request the fake received.
#[derive(Clone, Debug)]
pub struct SentRequest {
    pub phone_number_id: String,
    pub authorization: String,
    pub body: Value,
    pub wamid: String,
}

/// A scripted answer.
#[derive(Clone, Debug)]
pub enum Reply {
    /// An HTTP error with Meta's error body.
    Error(u16, Value),
    /// Answer only after this long (longer than the node's client timeout = a timeout).
    Hang(Duration),
    /// Accept the message under this id (instead of `wamid.OUT<n>`).
    AcceptAs(String),
}

#[derive(Default)]
struct Inner {
    sent: Vec<SentRequest>,
    scripts: HashMap<String, VecDeque<Reply>>,
    /// media id → (mime type, bytes, access token required)
    media: HashMap<String, (String, Vec<u8>, String)>,
    base: String,
}

/// The running fake.
#[derive(Clone)]
pub struct FakeGraph {
    pub base: String,
    inner: Arc<Mutex<Inner>>,
}

impl FakeGraph {
    pub async fn start() -> FakeGraph {
        let inner: Arc<Mutex<Inner>> = Arc::default();
        let app = axum::Router::new()
            .route("/{version}/{phone_number_id}/messages", post(send))
            .route("/{version}/{media_id}", axum::routing::get(media_info))
            .route("/media-files/{media_id}", axum::routing::get(media_file))
            .route("/redirect/{media_id}", axum::routing::get(redirect))
            .with_state(Arc::clone(&inner));
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind fake graph");
        let base = format!("http://{}", listener.local_addr().expect("addr"));
        inner.lock().expect("lock").base = base.clone();
        tokio::spawn(async move { axum::serve(listener, app).await });
        FakeGraph { base, inner }
    }

    /// The next answers for `phone_number_id`, in order; after them requests succeed.
    pub fn script(&self, phone_number_id: &str, replies: Vec<Reply>) {
        self.inner
            .lock()
            .expect("lock")
            .scripts
            .insert(phone_number_id.to_string(), replies.into());
    }

    /// Serves a media file under `media_id` to callers bearing `token`.
    pub fn add_media(&self, media_id: &str, mime_type: &str, bytes: Vec<u8>, token: &str) {
        self.inner.lock().expect("lock").media.insert(
            media_id.to_string(),
            (mime_type.to_string(), bytes, format!("Bearer {token}")),
        );
    }

    pub fn requests(&self) -> Vec<SentRequest> {
        self.inner
            .lock()
            .map(|s| s.sent.clone())
            .unwrap_or_default()
    }

    pub fn requests_for(&self, phone_number_id: &str) -> usize {
        self.requests()
            .iter()
            .filter(|r| r.phone_number_id == phone_number_id)
            .count()
    }
}

/// Meta's error body for a code and message.
pub fn meta_error(code: i64, message: &str, details: &str) -> Value {
    json!({"error": {"message": message, "type": "OAuthException", "code": code,
                     "error_data": {"messaging_product": "whatsapp", "details": details},
                     "fbtrace_id": "AbCdEf"}})
}

/// `GET /{version}/{media_id}`: the documented lookup answer with a temporary URL.
async fn media_info(
    State(inner): State<Arc<Mutex<Inner>>>,
    Path((_version, media_id)): Path<(String, String)>,
    headers: HeaderMap,
) -> (StatusCode, Json<Value>) {
    let inner = inner.lock().expect("lock");
    let authorization = headers
        .get("authorization")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default();
    match inner.media.get(&media_id) {
        Some((mime, bytes, token)) if token == authorization => (
            StatusCode::OK,
            Json(json!({"messaging_product": "whatsapp",
                       // A media id starting `redirect-` gets a URL that only redirects to the file
                       // (standing in for a URL that bounces to an internal address).
                       "url": if media_id.starts_with("redirect-") {
                           format!("{}/redirect/{media_id}", inner.base)
                       } else {
                           format!("{}/media-files/{media_id}", inner.base)
                       },
                        "mime_type": mime, "sha256": "fake", "file_size": bytes.len(), "id": media_id})),
        ),
        Some(_) => (
            StatusCode::UNAUTHORIZED,
            Json(meta_error(190, "Invalid OAuth access token", "")),
        ),
        None => (
            StatusCode::NOT_FOUND,
            Json(meta_error(100, "Unsupported get request", "")),
        ),
    }
}

/// `GET /redirect/{media_id}`: a 302 to the file.
async fn redirect(
    Path(media_id): Path<String>,
) -> (StatusCode, [(axum::http::HeaderName, String); 1]) {
    (
        StatusCode::FOUND,
        [(
            axum::http::header::LOCATION,
            format!("/media-files/{media_id}"),
        )],
    )
}

/// `GET /media-files/{media_id}`: the file, only with the bearer token.
async fn media_file(
    State(inner): State<Arc<Mutex<Inner>>>,
    Path(media_id): Path<String>,
    headers: HeaderMap,
) -> Result<([(axum::http::HeaderName, String); 1], Vec<u8>), StatusCode> {
    let inner = inner.lock().expect("lock");
    let authorization = headers
        .get("authorization")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default();
    match inner.media.get(&media_id) {
        Some((mime, bytes, token)) if token == authorization => Ok((
            [(axum::http::header::CONTENT_TYPE, mime.clone())],
            bytes.clone(),
        )),
        Some(_) => Err(StatusCode::UNAUTHORIZED),
        None => Err(StatusCode::NOT_FOUND),
    }
}

async fn send(
    State(inner): State<Arc<Mutex<Inner>>>,
    Path((_version, phone_number_id)): Path<(String, String)>,
    headers: HeaderMap,
    Json(body): Json<Value>,
) -> (StatusCode, Json<Value>) {
    let authorization = headers
        .get("authorization")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_string();
    let (mut wamid, scripted) = {
        let mut inner = inner.lock().expect("lock");
        let wamid = format!("wamid.OUT{}", inner.sent.len() + 1);
        inner.sent.push(SentRequest {
            phone_number_id: phone_number_id.clone(),
            authorization,
            body: body.clone(),
            wamid: wamid.clone(),
        });
        let scripted = inner
            .scripts
            .get_mut(&phone_number_id)
            .and_then(VecDeque::pop_front);
        (wamid, scripted)
    };
    match scripted {
        Some(Reply::Error(status, error)) => {
            return (
                StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR),
                Json(error),
            );
        }
        Some(Reply::Hang(pause)) => tokio::time::sleep(pause).await,
        Some(Reply::AcceptAs(id)) => wamid = id,
        None => {}
    }
    // The Messenger Send API answers in its own shape.
    if let Some(recipient) = body.pointer("/recipient/id").and_then(Value::as_str) {
        return (
            StatusCode::OK,
            Json(json!({"recipient_id": recipient, "message_id": wamid})),
        );
    }
    let to = body["to"].as_str().unwrap_or_default().to_string();
    (
        StatusCode::OK,
        Json(
            json!({"messaging_product": "whatsapp", "contacts": [{"input": to, "wa_id": to}],
                    "messages": [{"id": wamid}]}),
        ),
    )
}
