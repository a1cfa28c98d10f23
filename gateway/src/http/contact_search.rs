//! `GET /api/v1/contacts`: a tenant's contacts by id, or those matching a search by name, email or
//! phone (every word of the search must start one of the contact's words; each contact listed once,
//! under its first matching word, so pages never repeat one).

use crate::AppState;
use crate::auth::AuthenticatedAgent;
use crate::error::ApiError;
use crate::http::problems::{BadRequest, Unauthorized, Unavailable};
use axum::extract::{Query, State};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use schema::ContactId;
use schema::api::Page;
use schema::contact::{self, ContactRecord};
use schema::store::TermCursor;
use serde::Deserialize;

const DEFAULT_PAGE: usize = 50;
/// Store pages one search request reads at most (each up to the page size) before answering with
/// what it found and a cursor.
const SEARCH_ROUNDS: usize = 8;

#[derive(Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct ListQuery {
    cursor: Option<String>,
    limit: Option<usize>,
    /// Words each contact must have a word starting with: name, email, or phone (digits only).
    search: Option<String>,
}

fn page_size(limit: Option<usize>) -> Result<usize, ApiError> {
    match limit.unwrap_or(DEFAULT_PAGE) {
        n @ 1..=schema::store::MAX_CONTACT_PAGE => Ok(n),
        _ => Err(ApiError::bad_request(
            "invalid_limit",
            format!("limit must be 1 to {}", schema::store::MAX_CONTACT_PAGE),
        )),
    }
}

/// `GET /api/v1/contacts?search=&cursor=&limit=`: by id, or the contacts matching every word of
/// `search` (each listed once, under its first matching word).
#[utoipa::path(
    get,
    path = "/api/v1/contacts",
    tag = "contacts",
    operation_id = "contacts_list",
    params(
        ListQuery,
    ),
    responses(
        (status = 200, description = "contacts by id, or those matching search", body = Page<ContactRecord>),
        Unauthorized,
        BadRequest,
        Unavailable,
    ),
    security(("bearer" = [])),
)]
pub async fn list(
    State(state): State<AppState>,
    AuthenticatedAgent(agent): AuthenticatedAgent,
    Query(query): Query<ListQuery>,
) -> Result<axum::Json<Page<ContactRecord>>, ApiError> {
    let limit = page_size(query.limit)?;
    let invalid_cursor = || ApiError::bad_request("invalid_cursor", "cursor is not one we gave");
    let Some(search) = query.search else {
        let after = match query.cursor {
            Some(cursor) => Some(cursor.parse::<ContactId>().map_err(|_| invalid_cursor())?),
            None => None,
        };
        let items = state.store.contacts(agent.tenant_id, after, limit).await?;
        let next_cursor = (items.len() == limit)
            .then(|| items.last().map(|c| c.id.to_string()))
            .flatten();
        return Ok(axum::Json(Page { items, next_cursor }));
    };
    if search.chars().count() > 128 {
        return Err(ApiError::bad_request(
            "invalid_search",
            "search has at most 128 characters",
        ));
    }
    let words = contact::query_words(&search).ok_or_else(|| {
        ApiError::bad_request("invalid_search", "search needs a word of two characters")
    })?;
    let mut cursor: Option<TermCursor> = match query.cursor {
        Some(raw) => Some(
            URL_SAFE_NO_PAD
                .decode(raw)
                .ok()
                .and_then(|bytes| serde_json::from_slice(&bytes).ok())
                .ok_or_else(invalid_cursor)?,
        ),
        None => None,
    };
    let prefix = &words[0];
    let mut items: Vec<ContactRecord> = Vec::new();
    let mut more = false;
    for _ in 0..SEARCH_ROUNDS {
        let hits = state
            .store
            .search_contacts(agent.tenant_id, prefix, cursor.as_ref(), limit)
            .await?;
        more = hits.len() == limit;
        for (term, contact) in hits {
            cursor = Some(TermCursor {
                term: term.clone(),
                contact: contact.id,
            });
            // Listed under its first term with this prefix only, so once across pages.
            let first = contact
                .search_terms()
                .into_iter()
                .find(|t| t.starts_with(prefix.as_str()));
            if first.as_ref() == Some(&term) && contact.matches(&words) {
                items.push(contact);
                if items.len() == limit {
                    // Stopped inside a page: the rest of it comes next.
                    more = true;
                    break;
                }
            }
        }
        if !more || items.len() == limit {
            break;
        }
    }
    let next_cursor = more
        .then(|| cursor.as_ref().and_then(|c| serde_json::to_vec(c).ok()))
        .flatten()
        .map(|bytes| URL_SAFE_NO_PAD.encode(bytes));
    Ok(axum::Json(Page { items, next_cursor }))
}
