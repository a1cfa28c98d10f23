//! Signing in, the mechanics: argon2id password hashes (computed on the blocking pool, a few at a
//! time, so a burst of sign-ins cannot take the async threads or the memory), the failed-attempt
//! throttle, and issuing and revoking the tokens of a session. The routes are `http/auth.rs`.

use crate::auth::{new_agent_token, token_hash};
use crate::error::ApiError;
use argon2::Argon2;
use argon2::password_hash::{PasswordHash, PasswordHasher, PasswordVerifier, SaltString};
use jiff::{SignedDuration, Timestamp};
use schema::account::{ACCESS_TTL, Grant, GrantKind, REFRESH_TTL, Session, SessionKind, Throttle};
use schema::records::Agent;
use schema::store::Store;
use std::sync::{Arc, Mutex};
use tokio::sync::Semaphore;
use uuid::Uuid;

/// Password hashes computed at once on a node (argon2id takes ~19 MiB and tens of ms each).
const HASHING_PERMITS: usize = 4;
/// Failed sign-ins an email may have in [`THROTTLE_WINDOW`].
const THROTTLE_FAILURES: usize = 5;
const THROTTLE_WINDOW: SignedDuration = SignedDuration::from_mins(15);
/// Emails the throttle remembers at once.
const THROTTLE_KEYS: usize = 100_000;

/// The salt of the decoy hash computed when an email is unknown, so that an unknown email takes as
/// long to refuse as a wrong password.
const DECOY_SALT: &str = "ZGVjb3lzYWx0ZGVjb3k";

/// The node's sign-in state: the hashing permits and the throttle.
pub struct SignIn {
    hashing: Arc<Semaphore>,
    throttle: Mutex<Throttle>,
    /// Password reset emails per address: [`RESETS_PER_WINDOW`] per [`THROTTLE_WINDOW`].
    resets: Mutex<Throttle>,
    /// Password resets being looked up and sent at once (the requests answer before).
    pub reset_permits: Arc<Semaphore>,
}

/// Password reset emails an address may be sent per [`THROTTLE_WINDOW`].
const RESETS_PER_WINDOW: usize = 3;

impl Default for SignIn {
    fn default() -> Self {
        Self {
            hashing: Arc::new(Semaphore::new(HASHING_PERMITS)),
            throttle: Mutex::new(Throttle::new(
                THROTTLE_FAILURES,
                THROTTLE_WINDOW,
                THROTTLE_KEYS,
            )),
            resets: Mutex::new(Throttle::new(
                RESETS_PER_WINDOW,
                THROTTLE_WINDOW,
                THROTTLE_KEYS,
            )),
            reset_permits: Arc::new(Semaphore::new(32)),
        }
    }
}

/// The two tokens of a sign-in, shown once.
pub struct Issued {
    pub access_token: String,
    pub access_expires_at: Timestamp,
    pub refresh_token: String,
    pub refresh_expires_at: Timestamp,
}

impl SignIn {
    /// An argon2id hash (PHC string) of `password`.
    pub async fn hash(&self, password: String) -> Result<String, ApiError> {
        let permit = self.permit().await?;
        tokio::task::spawn_blocking(move || {
            // Held by the job itself: a caller that goes away does not free it before the hash ends.
            let _permit = permit;
            // 16 random bytes from the crate the node already uses for tokens (the OS's generator).
            let salt = SaltString::encode_b64(&rand::random::<[u8; 16]>())?;
            Argon2::default()
                .hash_password(password.as_bytes(), &salt)
                .map(|hash| hash.to_string())
        })
        .await
        .map_err(|_| ApiError::internal("password hashing stopped"))?
        .map_err(|_| ApiError::internal("password hashing failed"))
    }

    /// Whether `password` matches `phc` (the decoy when the user is unknown: always false, same cost).
    pub async fn verify(&self, password: String, phc: Option<String>) -> Result<bool, ApiError> {
        let permit = self.permit().await?;
        tokio::task::spawn_blocking(move || {
            let _permit = permit;
            match phc {
                Some(phc) => PasswordHash::new(&phc).is_ok_and(|parsed| {
                    Argon2::default()
                        .verify_password(password.as_bytes(), &parsed)
                        .is_ok()
                }),
                None => {
                    if let Ok(salt) = SaltString::from_b64(DECOY_SALT) {
                        let _ = Argon2::default().hash_password(password.as_bytes(), &salt);
                    }
                    false
                }
            }
        })
        .await
        .map_err(|_| ApiError::internal("password check stopped"))
    }

    async fn permit(&self) -> Result<tokio::sync::OwnedSemaphorePermit, ApiError> {
        let hashing = Arc::clone(&self.hashing);
        tokio::time::timeout(std::time::Duration::from_secs(5), hashing.acquire_owned())
            .await
            .ok()
            .and_then(Result::ok)
            .ok_or_else(|| {
                ApiError::unavailable(
                    "overloaded",
                    "too many sign-ins at once; nothing was done, retry",
                )
            })
    }

    /// Counts an attempt of `email` before its password is checked (so attempts made in parallel
    /// are all counted), or `Err(until)` while it must wait. A success forgets the count.
    pub fn attempt(&self, email: &str, now: Timestamp) -> Result<(), Timestamp> {
        let Ok(mut throttle) = self.throttle.lock() else {
            return Ok(());
        };
        if let Some(until) = throttle.blocked_until(email, now) {
            metrics::counter!("conversa_sign_ins_total", "outcome" => "throttled").increment(1);
            return Err(until);
        }
        throttle.failed(email, now);
        Ok(())
    }

    /// Whether another password reset email may go to `email` now (each call counts one).
    pub fn reset_allowed(&self, email: &str, now: Timestamp) -> bool {
        let Ok(mut resets) = self.resets.lock() else {
            return false;
        };
        if resets.blocked_until(email, now).is_some() {
            return false;
        }
        resets.failed(email, now);
        true
    }

    pub fn failed(&self) {
        metrics::counter!("conversa_sign_ins_total", "outcome" => "refused").increment(1);
    }

    pub fn succeeded(&self, email: &str) {
        if let Ok(mut throttle) = self.throttle.lock() {
            throttle.succeeded(email);
        }
        metrics::counter!("conversa_sign_ins_total", "outcome" => "signed_in").increment(1);
    }
}

/// Stores a new access and refresh token for `session` (created when new, renewed otherwise) and
/// returns them. The session's previous tokens are removed, except `spent`, the refresh token the
/// caller just spent (`CredentialStore::spend_grant`), which stays so that presenting it again
/// ends the session.
pub async fn issue(
    store: &dyn Store,
    agent: &Agent,
    mut session: Session,
    spent: Option<[u8; 32]>,
) -> Result<(Session, Issued), ApiError> {
    let now = Timestamp::now();
    let (access_token, access_hash) = new_agent_token();
    let (refresh_token, refresh_hash) = new_agent_token();
    let grant = |kind, expires_at| Grant {
        kind,
        agent: agent.clone(),
        session: session.id,
        expires_at: Some(expires_at),
        email: None,
    };
    let (access_expires_at, refresh_expires_at) = (now + ACCESS_TTL, now + REFRESH_TTL);
    store
        .put_grant(access_hash, &grant(GrantKind::Access, access_expires_at))
        .await?;
    store
        .put_grant(refresh_hash, &grant(GrantKind::Refresh, refresh_expires_at))
        .await?;
    let previous: Vec<[u8; 32]> = session
        .tokens
        .iter()
        .filter_map(|hex| decode_hash(hex))
        .filter(|hash| Some(*hash) != spent)
        .collect();
    store.remove_grants(&previous).await?;
    session.tokens = [Some(access_hash), Some(refresh_hash), spent]
        .into_iter()
        .flatten()
        .map(hex::encode)
        .collect();
    session.renewed_at = now;
    session.expires_at = Some(refresh_expires_at);
    store.put_session(&session).await?;
    Ok((
        session,
        Issued {
            access_token,
            access_expires_at,
            refresh_token,
            refresh_expires_at,
        },
    ))
}

/// A new sign-in session of `agent`.
pub fn new_session(agent: &Agent, kind: SessionKind, label: Option<String>) -> Session {
    let now = Timestamp::now();
    Session {
        id: Uuid::now_v7(),
        tenant_id: agent.tenant_id,
        agent_id: agent.id,
        kind,
        label,
        created_at: now,
        renewed_at: now,
        expires_at: None,
        tokens: Vec::new(),
    }
}

/// Ends a session: every token it holds stops working at once, then the session goes.
pub async fn revoke(store: &dyn Store, session: &Session) -> Result<(), ApiError> {
    let tokens: Vec<[u8; 32]> = session
        .tokens
        .iter()
        .filter_map(|h| decode_hash(h))
        .collect();
    store.remove_grants(&tokens).await?;
    store
        .remove_session(session.tenant_id, session.agent_id, session.id)
        .await?;
    Ok(())
}

/// The grant a presented token carries, by its hash.
pub async fn grant_of(store: &dyn Store, token: &str) -> Result<Option<Grant>, ApiError> {
    Ok(store.grant(token_hash(token)).await?)
}

fn decode_hash(hex_hash: &str) -> Option<[u8; 32]> {
    hex::decode(hex_hash).ok()?.try_into().ok()
}

/// Shared handle.
pub type Shared = Arc<SignIn>;
