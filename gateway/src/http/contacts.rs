//! `/api/v1/contacts…`: the tenant's customers (listing and search in `contact_search`). Every customer who writes (or is written to first) gets
//! a contact with that address; agents search them by name, phone or email, edit them, add notes and
//! list their conversations across connections; admins and supervisors merge and delete them. Every
//! role reads; auditors change nothing. The tenant always comes from the authenticated agent.
//!
//! Edits name the `version` they were made on when the client has one (409 `version_conflict` when
//! another edit came first); without it the edit applies to the newest version.

use crate::AppState;
use crate::auth::{AuthenticatedAgent, require};
use crate::error::ApiError;
use crate::http::admin::json_body;
use crate::http::conversations::conversation;
use crate::http::parse_id;
use crate::http::problems::{BadRequest, NotFound, Refused, Unauthorized, Unavailable};
use axum::body::Body;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::IntoResponse;
use jiff::Timestamp;
use schema::ContactId;
use schema::api::ErrorBody;
use schema::contact::{
    self, Channel, ContactAddress, ContactNote, ContactRecord, ContactWrite, MAX_NOTES,
};
use schema::permission::Permission;
use schema::records::{Agent, Conversation};
use schema::store::StoreError;
use serde::{Deserialize, Deserializer};
use std::collections::{BTreeMap, HashSet};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

/// Attempts of an edit that names no version, when other edits keep coming first.
const EDIT_TRIES: usize = 3;

/// The contact routes.
pub fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(super::contact_search::list, create))
        .routes(routes!(get_one, edit, remove))
        .routes(routes!(add_note))
        .routes(routes!(merge))
        .routes(routes!(conversations))
        .routes(routes!(of_conversation))
}

/// A field that may be absent (unchanged), `null` (cleared) or a value.
fn present<'de, D: Deserializer<'de>, T: Deserialize<'de>>(d: D) -> Result<Option<T>, D::Error> {
    T::deserialize(d).map(Some)
}

/// The body of a create (every field optional but one address) or an edit (only what changes).
#[derive(Deserialize, Default, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ContactRequest {
    #[serde(default, deserialize_with = "present")]
    name: Option<Option<String>>,
    #[serde(default, deserialize_with = "present")]
    email: Option<Option<String>>,
    addresses: Option<Vec<ContactAddress>>,
    /// Keys to set; a `null` value removes the key.
    custom_fields: Option<BTreeMap<String, serde_json::Value>>,
    tags: Option<Vec<String>>,
    /// The version the edit was made on (edits only).
    version: Option<u64>,
}

impl ContactRequest {
    fn apply(self, contact: &mut ContactRecord) -> Result<(), ApiError> {
        if let Some(name) = self.name {
            contact.name = name.map(|n| n.trim().to_string());
        }
        if let Some(email) = self.email {
            contact.email = email.map(|e| e.trim().to_lowercase());
        }
        if let Some(addresses) = self.addresses {
            // Addresses a person types are held to the channel's form; those providers gave the
            // contact (kept as they came) need not be.
            for address in addresses.iter().filter(|a| !contact.addresses.contains(a)) {
                address
                    .validate()
                    .map_err(|e| ApiError::bad_request("invalid_contact", e))?;
            }
            contact.addresses = addresses;
        }
        for (key, value) in self.custom_fields.unwrap_or_default() {
            match value {
                serde_json::Value::Null => contact.custom_fields.remove(&key),
                value => contact.custom_fields.insert(key, value),
            };
        }
        if let Some(tags) = self.tags {
            let mut normalized = Vec::with_capacity(tags.len());
            for tag in tags {
                let tag = schema::helpdesk::change::tag(&tag)
                    .map_err(|e| ApiError::bad_request("invalid_tag", e.to_string()))?;
                if !normalized.contains(&tag) {
                    normalized.push(tag);
                }
            }
            contact.tags = normalized;
        }
        contact
            .validate()
            .map_err(|e| ApiError::bad_request("invalid_contact", e))
    }
}

fn conflict(error: StoreError) -> ApiError {
    match error {
        StoreError::Conflict(detail) if detail.contains("address") => {
            ApiError::new(StatusCode::CONFLICT, "address_taken", detail)
        }
        StoreError::Conflict(detail) => {
            ApiError::new(StatusCode::CONFLICT, "version_conflict", detail)
        }
        other => other.into(),
    }
}

pub(crate) async fn existing(
    state: &AppState,
    agent: &Agent,
    raw: &str,
) -> Result<ContactRecord, ApiError> {
    let id: ContactId = parse_id(raw, "contact_not_found")?;
    state
        .store
        .contact(agent.tenant_id, id)
        .await?
        .ok_or_else(|| ApiError::not_found("contact_not_found", "no such contact in this tenant"))
}

/// `GET /api/v1/contacts/{id}`.
#[utoipa::path(
    get,
    path = "/api/v1/contacts/{id}",
    tag = "contacts",
    operation_id = "contacts_get",
    params(
        ("id" = Uuid, Path, description = "contact id"),
    ),
    responses(
        (status = 200, description = "the contact", body = ContactRecord),
        Unauthorized,
        NotFound,
        Unavailable,
    ),
    security(("bearer" = [])),
)]
pub async fn get_one(
    State(state): State<AppState>,
    AuthenticatedAgent(agent): AuthenticatedAgent,
    Path(id): Path<String>,
) -> Result<axum::Json<ContactRecord>, ApiError> {
    Ok(axum::Json(existing(&state, &agent, &id).await?))
}

/// `POST /api/v1/contacts` → 201; 409 `address_taken` when an address is another contact's.
#[utoipa::path(
    post,
    path = "/api/v1/contacts",
    tag = "contacts",
    operation_id = "contacts_create",
    request_body = ContactRequest,
    responses(
        (status = 201, description = "the contact", body = ContactRecord),
        Unauthorized,
        BadRequest,
        (status = 403, description = "auditors change nothing", body = ErrorBody, content_type = "application/problem+json"),
        (status = 409, description = "an address belongs to another contact (address_taken)", body = ErrorBody, content_type = "application/problem+json"),
        Unavailable,
    ),
    security(("bearer" = [])),
)]
pub async fn create(
    State(state): State<AppState>,
    AuthenticatedAgent(agent): AuthenticatedAgent,
    headers: HeaderMap,
    body: Body,
) -> Result<impl IntoResponse, ApiError> {
    require(&state, &agent, Permission::EditContacts).await?;
    let request: ContactRequest = json_body(&state, &headers, body).await?;
    if request.version.is_some() {
        return Err(ApiError::bad_request(
            "invalid_contact",
            "a new contact has no version",
        ));
    }
    let now = Timestamp::now();
    let mut contact = ContactRecord {
        id: ContactId::new(),
        tenant_id: agent.tenant_id,
        name: None,
        email: None,
        addresses: Vec::new(),
        custom_fields: BTreeMap::new(),
        tags: Vec::new(),
        notes: Vec::new(),
        version: 1,
        created_at: now,
        updated_at: now,
    };
    request.apply(&mut contact)?;
    if contact.name.is_none() && contact.addresses.is_empty() && contact.email.is_none() {
        return Err(ApiError::bad_request(
            "invalid_contact",
            "a contact needs a name, an email or an address",
        ));
    }
    let write = ContactWrite {
        before: None,
        after: Some(contact.clone()),
    };
    state
        .store
        .write_contacts(agent.tenant_id, &[write])
        .await
        .map_err(conflict)?;
    Ok((StatusCode::CREATED, axum::Json(contact)))
}

/// Applies `change` to the newest version (or to `version`, refused if another edit came first) and
/// stores it; retried on a race when no version was named.
async fn change_contact(
    state: &AppState,
    agent: &Agent,
    raw_id: &str,
    version: Option<u64>,
    change: impl Fn(&mut ContactRecord) -> Result<(), ApiError>,
) -> Result<ContactRecord, ApiError> {
    for attempt in 1..=EDIT_TRIES {
        let before = existing(state, agent, raw_id).await?;
        if version.is_some_and(|v| v != before.version) {
            return Err(ApiError::new(
                StatusCode::CONFLICT,
                "version_conflict",
                format!("the contact is at version {}", before.version),
            ));
        }
        let mut after = before.clone();
        change(&mut after)?;
        after.version = before.version + 1;
        after.updated_at = Timestamp::now();
        let write = ContactWrite {
            before: Some(before),
            after: Some(after.clone()),
        };
        match state.store.write_contacts(agent.tenant_id, &[write]).await {
            Ok(()) => return Ok(after),
            Err(StoreError::Conflict(detail))
                if version.is_none() && !detail.contains("address") && attempt < EDIT_TRIES =>
            {
                continue;
            }
            Err(error) => return Err(conflict(error)),
        }
    }
    Err(ApiError::new(
        StatusCode::CONFLICT,
        "version_conflict",
        "the contact kept changing; read it again",
    ))
}

/// `PATCH /api/v1/contacts/{id}`: the fields given change (`custom_fields` key by key).
#[utoipa::path(
    patch,
    path = "/api/v1/contacts/{id}",
    tag = "contacts",
    operation_id = "contacts_edit",
    params(
        ("id" = Uuid, Path, description = "contact id"),
    ),
    request_body = ContactRequest,
    responses(
        (status = 200, description = "the contact after the edit", body = ContactRecord),
        Unauthorized,
        BadRequest,
        (status = 403, description = "auditors change nothing", body = ErrorBody, content_type = "application/problem+json"),
        NotFound,
        (status = 409, description = "version_conflict or address_taken", body = ErrorBody, content_type = "application/problem+json"),
        Unavailable,
    ),
    security(("bearer" = [])),
)]
pub async fn edit(
    State(state): State<AppState>,
    AuthenticatedAgent(agent): AuthenticatedAgent,
    Path(id): Path<String>,
    headers: HeaderMap,
    body: Body,
) -> Result<axum::Json<ContactRecord>, ApiError> {
    require(&state, &agent, Permission::EditContacts).await?;
    let raw: serde_json::Value = json_body(&state, &headers, body).await?;
    // Parsed once up front so a bad body is a 400 before anything is read.
    let request: ContactRequest = serde_json::from_value(raw.clone())
        .map_err(|e| ApiError::bad_request("invalid_json", e.to_string()))?;
    let version = request.version;
    let contact = change_contact(&state, &agent, &id, version, |contact| {
        let request: ContactRequest = serde_json::from_value(raw.clone())
            .map_err(|e| ApiError::bad_request("invalid_json", e.to_string()))?;
        request.apply(contact)
    })
    .await?;
    Ok(axum::Json(contact))
}

#[derive(Deserialize, utoipa::ToSchema)]
#[schema(as = ContactNoteRequest)]
#[serde(deny_unknown_fields)]
pub struct NoteRequest {
    body: String,
}

/// `POST /api/v1/contacts/{id}/notes` → 201 with the note; 422 when the contact keeps
/// [`MAX_NOTES`] already.
#[utoipa::path(
    post,
    path = "/api/v1/contacts/{id}/notes",
    tag = "contacts",
    operation_id = "contacts_note",
    params(
        ("id" = Uuid, Path, description = "contact id"),
    ),
    request_body = NoteRequest,
    responses(
        (status = 201, description = "the note", body = ContactNote),
        Unauthorized,
        BadRequest,
        (status = 403, description = "auditors change nothing", body = ErrorBody, content_type = "application/problem+json"),
        NotFound,
        Refused,
        Unavailable,
    ),
    security(("bearer" = [])),
)]
pub async fn add_note(
    State(state): State<AppState>,
    AuthenticatedAgent(agent): AuthenticatedAgent,
    Path(id): Path<String>,
    headers: HeaderMap,
    body: Body,
) -> Result<impl IntoResponse, ApiError> {
    require(&state, &agent, Permission::EditContacts).await?;
    let request: NoteRequest = json_body(&state, &headers, body).await?;
    let note = ContactNote {
        id: uuid::Uuid::now_v7(),
        body: request.body.trim().to_string(),
        by: Some(agent.id),
        at: Timestamp::now(),
    };
    change_contact(&state, &agent, &id, None, |contact| {
        if contact.notes.len() >= MAX_NOTES {
            return Err(ApiError::new(
                StatusCode::UNPROCESSABLE_ENTITY,
                "contact_notes_full",
                format!("a contact keeps at most {MAX_NOTES} notes"),
            ));
        }
        contact.notes.push(note.clone());
        contact
            .validate()
            .map_err(|e| ApiError::bad_request("invalid_note", e))
    })
    .await?;
    Ok((StatusCode::CREATED, axum::Json(note)))
}

#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct MergeRequest {
    /// The contact merged into this one, then removed.
    from: String,
}

/// `POST /api/v1/contacts/{id}/merge` with `{"from": id}`: `from`'s addresses (so its
/// conversations), tags, notes and the fields this contact lacks move here; `from` is removed.
/// Admins and supervisors.
#[utoipa::path(
    post,
    path = "/api/v1/contacts/{id}/merge",
    tag = "contacts",
    operation_id = "contacts_merge",
    params(
        ("id" = Uuid, Path, description = "contact id"),
    ),
    request_body = MergeRequest,
    responses(
        (status = 200, description = "the kept contact after the merge", body = ContactRecord),
        Unauthorized,
        BadRequest,
        (status = 403, description = "only admins and supervisors", body = ErrorBody, content_type = "application/problem+json"),
        NotFound,
        (status = 409, description = "changed meanwhile", body = ErrorBody, content_type = "application/problem+json"),
        Refused,
        Unavailable,
    ),
    security(("bearer" = [])),
)]
pub async fn merge(
    State(state): State<AppState>,
    AuthenticatedAgent(agent): AuthenticatedAgent,
    Path(id): Path<String>,
    headers: HeaderMap,
    body: Body,
) -> Result<axum::Json<ContactRecord>, ApiError> {
    require(&state, &agent, Permission::ManageHelpdesk).await?;
    let request: MergeRequest = json_body(&state, &headers, body).await?;
    let into = existing(&state, &agent, &id).await?;
    let from = existing(&state, &agent, &request.from).await?;
    let merged = contact::merge(&into, &from, Timestamp::now())
        .map_err(|e| ApiError::new(StatusCode::UNPROCESSABLE_ENTITY, "cannot_merge", e))?;
    let writes = [
        ContactWrite {
            before: Some(from),
            after: None,
        },
        ContactWrite {
            before: Some(into),
            after: Some(merged.clone()),
        },
    ];
    state
        .store
        .write_contacts(agent.tenant_id, &writes)
        .await
        .map_err(conflict)?;
    Ok(axum::Json(merged))
}

/// `DELETE /api/v1/contacts/{id}` → 204: the contact goes and its addresses are free; its
/// conversations stay. Admins and supervisors.
#[utoipa::path(
    delete,
    path = "/api/v1/contacts/{id}",
    tag = "contacts",
    operation_id = "contacts_remove",
    params(
        ("id" = Uuid, Path, description = "contact id"),
    ),
    responses(
        (status = 204, description = "removed; its addresses are free, its conversations stay"),
        Unauthorized,
        (status = 403, description = "only admins and supervisors", body = ErrorBody, content_type = "application/problem+json"),
        NotFound,
        (status = 409, description = "changed meanwhile", body = ErrorBody, content_type = "application/problem+json"),
        Unavailable,
    ),
    security(("bearer" = [])),
)]
pub async fn remove(
    State(state): State<AppState>,
    AuthenticatedAgent(agent): AuthenticatedAgent,
    Path(id): Path<String>,
) -> Result<StatusCode, ApiError> {
    require(&state, &agent, Permission::ManageHelpdesk).await?;
    let before = existing(&state, &agent, &id).await?;
    let write = ContactWrite {
        before: Some(before),
        after: None,
    };
    state
        .store
        .write_contacts(agent.tenant_id, &[write])
        .await
        .map_err(conflict)?;
    Ok(StatusCode::NO_CONTENT)
}

/// `GET /api/v1/contacts/{id}/conversations`: on every connection of the tenant, the conversation
/// with each of the contact's addresses on that connection's channel, newest activity first.
#[utoipa::path(
    get,
    path = "/api/v1/contacts/{id}/conversations",
    tag = "contacts",
    operation_id = "contacts_conversations",
    params(
        ("id" = Uuid, Path, description = "contact id"),
    ),
    responses(
        (status = 200, description = "its conversations on every connection, newest first", body = Vec<Conversation>),
        Unauthorized,
        NotFound,
        Unavailable,
    ),
    security(("bearer" = [])),
)]
pub async fn conversations(
    State(state): State<AppState>,
    AuthenticatedAgent(agent): AuthenticatedAgent,
    Path(id): Path<String>,
) -> Result<axum::Json<Vec<Conversation>>, ApiError> {
    let contact = existing(&state, &agent, &id).await?;
    let viewer = crate::permissions::viewer(&state, &agent).await?;
    let conversations = contact_conversations(&state, agent.tenant_id, &contact).await?;
    Ok(axum::Json(
        conversations
            .into_iter()
            .filter(|c| viewer.sees(c))
            .map(|c| viewer.conversation(c))
            .collect(),
    ))
}

/// The contact's conversations: on every connection of the tenant, the one with each of its
/// addresses on that connection's channel, newest activity first.
pub(crate) async fn contact_conversations(
    state: &AppState,
    tenant: schema::TenantId,
    contact: &ContactRecord,
) -> Result<Vec<Conversation>, ApiError> {
    let connections = state.store.connections(tenant).await?;
    let mut seen = HashSet::new();
    let mut found = Vec::new();
    for connection in &connections {
        let channel = Channel::of(connection.provider);
        for address in contact.addresses.iter().filter(|a| a.channel == channel) {
            let id = schema::ConversationId::for_contact(tenant, connection.id, &address.address);
            if seen.insert(id)
                && let Some(conversation) = state.store.conversation(tenant, id).await?
            {
                found.push(conversation);
            }
        }
    }
    found.sort_by_key(|c| std::cmp::Reverse(c.last_activity_at));
    Ok(found)
}

/// `GET /api/v1/conversations/{id}/contact`: the contact holding the conversation's address.
#[utoipa::path(
    get,
    path = "/api/v1/conversations/{id}/contact",
    tag = "contacts",
    operation_id = "conversations_contact",
    params(
        ("id" = Uuid, Path, description = "conversation id"),
    ),
    responses(
        (status = 200, description = "the contact holding the conversation's address", body = ContactRecord),
        Unauthorized,
        NotFound,
        Unavailable,
    ),
    security(("bearer" = [])),
)]
pub async fn of_conversation(
    State(state): State<AppState>,
    AuthenticatedAgent(agent): AuthenticatedAgent,
    Path(id): Path<String>,
) -> Result<axum::Json<ContactRecord>, ApiError> {
    let conversation = conversation(&state, &agent, &id).await?;
    let not_found = || ApiError::not_found("contact_not_found", "the conversation has no contact");
    let connection = state
        .store
        .connection(conversation.connection_id)
        .await?
        .filter(|c| c.tenant_id == agent.tenant_id)
        .ok_or_else(not_found)?;
    let address = ContactAddress::new(
        Channel::of(connection.provider),
        conversation.contact.address,
    );
    let contact = state
        .store
        .contact_by_address(agent.tenant_id, &address)
        .await?
        .ok_or_else(not_found)?;
    Ok(axum::Json(contact))
}
