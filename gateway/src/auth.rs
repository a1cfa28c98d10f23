//! Bearer tokens. Agent tokens are random 256-bit secrets shown once and stored only as SHA-256, so a
//! leaked database does not leak usable tokens; the admin token comes from config. Tokens arrive in the
//! `Authorization: Bearer` header; only the WebSocket upgrade also takes an agent's token as `?token=`
//! (browsers cannot set headers on a WebSocket). The admin token is accepted in the header alone.

use crate::AppState;
use crate::error::ApiError;
use axum::extract::FromRequestParts;
use axum::http::header;
use axum::http::request::Parts;
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use rand::RngCore;
use schema::records::Agent;
use sha2::{Digest, Sha256};

/// Prefix that makes Conversa tokens recognisable in logs and secret scanners.
const TOKEN_PREFIX: &str = "cva_";

/// A new agent token and the hash to store.
pub fn new_agent_token() -> (String, [u8; 32]) {
    let mut secret = [0u8; 32];
    rand::rng().fill_bytes(&mut secret);
    let token = format!("{TOKEN_PREFIX}{}", URL_SAFE_NO_PAD.encode(secret));
    let hash = token_hash(&token);
    (token, hash)
}

/// SHA-256 of a token, the form in which it is stored and looked up.
pub fn token_hash(token: &str) -> [u8; 32] {
    Sha256::digest(token.as_bytes()).into()
}

/// Compares two secrets without leaking where they differ (compares their SHA-256 digests).
pub fn secrets_match(given: &str, expected: &str) -> bool {
    use hmac::Mac;
    let Ok(mut mac) = hmac::Hmac::<Sha256>::new_from_slice(b"conversa-secret-compare") else {
        return false;
    };
    mac.update(expected.as_bytes());
    let expected_tag = mac.finalize().into_bytes();
    let Ok(mut mac) = hmac::Hmac::<Sha256>::new_from_slice(b"conversa-secret-compare") else {
        return false;
    };
    mac.update(given.as_bytes());
    mac.verify_slice(&expected_tag).is_ok()
}

/// The token in a request's `Authorization: Bearer …` header. Tokens in URLs end up in proxy logs and
/// browser history, so no route but the WebSocket upgrade reads one there (`query_token`).
pub fn bearer_token(parts: &Parts) -> Option<String> {
    bearer_from_headers(&parts.headers)
}

/// With the tenant's `admin_security` flag on, a change to the tenant's setup (roles, users, flags,
/// SMTP, invitations, connections) and a contact's export or erasure are accepted only from a
/// sign-in's access token: an API key or an agent token (long-lived, kept by integrations and
/// scripts) gets 403 `session_required`. Off, any credential of a role allowed to do it will do.
pub async fn require_session_for_setup(
    state: &AppState,
    agent: &Agent,
    headers: &axum::http::HeaderMap,
) -> Result<(), ApiError> {
    let view = state
        .tenancy
        .view(state.store.as_ref(), agent.tenant_id)
        .await?;
    if !view.flags.admin_security {
        return Ok(());
    }
    let signed_in = match bearer_from_headers(headers) {
        Some(token) => state
            .store
            .grant(token_hash(&token))
            .await?
            .is_some_and(|g| g.kind == schema::account::GrantKind::Access),
        None => false,
    };
    match signed_in {
        true => Ok(()),
        false => Err(ApiError::new(
            axum::http::StatusCode::FORBIDDEN,
            "session_required",
            "this account's admin security takes a signed-in session for this, not an API key or agent token",
        )),
    }
}

/// The bearer token of a request's headers.
pub fn bearer_from_headers(headers: &axum::http::HeaderMap) -> Option<String> {
    headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|value| value.strip_prefix("Bearer "))
        .map(|t| t.trim().to_string())
}

/// `?token=…` of a URL: browsers cannot set headers on a WebSocket, so the upgrade alone accepts it.
fn query_token(parts: &Parts) -> Option<String> {
    parts.uri.query().and_then(|query| {
        query
            .split('&')
            .find_map(|pair| pair.strip_prefix("token=").map(str::to_string))
    })
}

/// An authenticated agent (token in the `Authorization` header); extracting it answers 401 for a
/// missing or unknown token.
pub struct AuthenticatedAgent(pub Agent);

impl FromRequestParts<AppState> for AuthenticatedAgent {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, ApiError> {
        let token = bearer_token(parts).ok_or_else(|| {
            ApiError::unauthorized("a bearer token is required in the Authorization header")
        })?;
        agent_by_token(state, &token).await.map(AuthenticatedAgent)
    }
}

/// An agent opening the WebSocket: the `Authorization` header, else `?token=`; with the token's
/// SHA-256, so the socket ends when the token stops working (`still_valid`).
pub struct WebSocketAgent(pub Agent, pub [u8; 32]);

impl FromRequestParts<AppState> for WebSocketAgent {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, ApiError> {
        let token = bearer_token(parts)
            .or_else(|| query_token(parts))
            .ok_or_else(|| ApiError::unauthorized("a bearer token is required"))?;
        let agent = agent_by_token(state, &token).await?;
        Ok(WebSocketAgent(agent, token_hash(&token)))
    }
}

/// The agent a token authenticates: a sign-in's access token or an API key while its grant lasts;
/// else a token issued before grants existed (`agent_tokens`), which revoking its session removes
/// too. A refresh token authenticates nothing but `POST /auth/refresh`.
pub(crate) async fn agent_by_token(state: &AppState, token: &str) -> Result<Agent, ApiError> {
    let agent = token_agent(state, token).await?;
    crate::tenancy::require_active(state, agent.tenant_id).await?;
    Ok(agent)
}

/// The agent a token names, whatever its tenant's standing.
async fn token_agent(state: &AppState, token: &str) -> Result<Agent, ApiError> {
    let hash = token_hash(token);
    if let Some(grant) = state.store.grant(hash).await? {
        if !grant.authorizes(jiff::Timestamp::now()) {
            return Err(ApiError::unauthorized(
                "the token expired or is not an access token; refresh or sign in",
            ));
        }
        // An API key lives for months: it acts as the user as stored now (an access token's copy
        // is at most 15 minutes old).
        if grant.kind == schema::account::GrantKind::ApiKey {
            return state
                .store
                .agent(grant.agent.tenant_id, grant.agent.id)
                .await?
                .ok_or_else(|| ApiError::unauthorized("the key's user no longer exists"));
        }
        return Ok(grant.agent);
    }
    let unknown = || ApiError::unauthorized("unknown or revoked token");
    let copy = state
        .store
        .agent_by_token(hash)
        .await?
        .ok_or_else(unknown)?;
    // The token's row keeps a copy of the user from when it was issued: act as the user is now.
    state
        .store
        .agent(copy.tenant_id, copy.id)
        .await?
        .ok_or_else(unknown)
}

/// Whether the token with this hash still authenticates, and its tenant is not suspended (an open
/// socket checks it every minute).
pub async fn still_valid(state: &AppState, token_sha256: [u8; 32]) -> Result<bool, ApiError> {
    let tenant = match state.store.grant(token_sha256).await? {
        Some(grant) if grant.authorizes(jiff::Timestamp::now()) => grant.agent.tenant_id,
        Some(_) => return Ok(false),
        None => match state.store.agent_by_token(token_sha256).await? {
            Some(agent) => agent.tenant_id,
            None => return Ok(false),
        },
    };
    let view = state.tenancy.view(state.store.as_ref(), tenant).await?;
    Ok(view.account.suspended.is_none())
}

/// 403 unless the agent's role has `permission` in its tenant (`schema::permission`, the tenant's
/// choices over the defaults), saying what is refused.
pub async fn require(
    state: &AppState,
    agent: &Agent,
    permission: schema::permission::Permission,
) -> Result<(), ApiError> {
    let permissions = state
        .permissions
        .of(state.store.as_ref(), agent.tenant_id)
        .await?;
    match permissions.allows(agent.role, permission) {
        true => Ok(()),
        false => Err(ApiError::new(
            axum::http::StatusCode::FORBIDDEN,
            "forbidden",
            format!("your role may not {}", permission.describe()),
        )),
    }
}

/// The operator, authenticated by the configured admin token.
pub struct Admin;

impl FromRequestParts<AppState> for Admin {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, ApiError> {
        let Some(expected) = state.config.admin_token.as_deref() else {
            return Err(ApiError::not_found(
                "admin_api_disabled",
                "no admin token is configured",
            ));
        };
        match bearer_token(parts) {
            Some(given) if secrets_match(&given, expected) => Ok(Admin),
            _ => Err(ApiError::unauthorized(
                "the admin token is required in the Authorization header",
            )),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn new_tokens_are_distinct_and_hash_to_their_stored_form() {
        let (a, hash_a) = new_agent_token();
        let (b, _) = new_agent_token();
        assert_ne!(a, b);
        assert!(a.starts_with(TOKEN_PREFIX));
        assert_eq!(token_hash(&a), hash_a);
    }

    #[test]
    fn secrets_match_only_when_equal() {
        assert!(secrets_match("s3cret", "s3cret"));
        assert!(!secrets_match("s3cret", "s3cres"));
        assert!(!secrets_match("", "s3cret"));
    }
}
