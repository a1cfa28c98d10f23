//! The HTTP router: every route of the node and the layers around them.

pub mod admin;
pub mod api_keys;
pub mod audit;
pub mod auth;
pub mod connection_update;
pub mod connections;
pub mod console;
pub mod contact_search;
pub mod contacts;
pub mod conversations;
pub mod credentials;
pub mod dashboard;
pub mod deletion;
pub mod departments;
pub mod features;
pub mod inbox;
pub mod invitations;
pub mod media;
pub mod ops;
pub mod pairing;
pub mod platform;
pub mod presence;
pub mod privacy;
pub mod problems;
pub mod quick_replies;
pub mod roles;
pub mod start;
pub mod tickets;
pub mod users;
pub mod webhooks;

use crate::AppState;
use crate::error::ApiError;
use axum::Router;
use schema::api::ErrorBody;
use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::{Modify, OpenApi};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;
use utoipa_swagger_ui::SwaggerUi;

/// The OpenAPI document's frame; the paths and schemas come from the handlers' annotations.
#[derive(OpenApi)]
#[openapi(
    info(
        title = "Conversa",
        description = "Conversa's REST API: the inbox, conversations and tickets, contacts, departments, quick replies, presence and the tenant feed for agents (bearer agent token); tenant provisioning for the operator (bearer admin token); provider webhooks (signed per provider). Errors are application/problem+json with a stable `code`. Live events go over the WebSocket at /api/v1/ws (see the README).",
        license(name = "Apache-2.0")
    ),
    modifiers(&BearerAuth),
    components(schemas(ErrorBody))
)]
pub struct ApiDoc;

/// The bearer scheme every agent and admin route names.
struct BearerAuth;

impl Modify for BearerAuth {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "bearer",
            SecurityScheme::Http(
                HttpBuilder::new()
                    .scheme(HttpAuthScheme::Bearer)
                    .description(Some("an agent token, or the admin token on /api/v1/admin"))
                    .build(),
            ),
        );
    }
}

/// Where the document and its browsable page are served.
pub const OPENAPI_PATH: &str = "/api/v1/openapi.json";
pub const DOCS_PATH: &str = "/api/v1/docs";

/// Every documented route, registered from its annotation (so the router and the document cannot
/// disagree), and the document itself.
pub fn api() -> (Router<AppState>, utoipa::openapi::OpenApi) {
    OpenApiRouter::with_openapi(ApiDoc::openapi())
        .routes(routes!(ops::healthz))
        .routes(routes!(ops::readyz))
        .routes(routes!(ops::metrics))
        .routes(routes!(webhooks::verify_meta, webhooks::receive_meta))
        .routes(routes!(webhooks::verify, webhooks::receive))
        .routes(routes!(webhooks::receive_evolution))
        .routes(routes!(webhooks::receive_zapi))
        .routes(routes!(conversations::list, start::start))
        .routes(routes!(inbox::counts))
        .routes(routes!(dashboard::dashboard))
        .routes(routes!(
            conversations::get_one,
            deletion::delete_conversation
        ))
        .routes(routes!(conversations::messages, conversations::send))
        .routes(routes!(conversations::events))
        .routes(routes!(media::download))
        .routes(routes!(conversations::mark_read))
        .routes(routes!(crate::ws::upgrade))
        .routes(routes!(admin::create_tenant, platform::list_tenants))
        .routes(routes!(admin::create_connection, admin::list_connections))
        .routes(routes!(admin::update_connection, admin::remove_connection))
        .routes(routes!(connections::connections, connections::create))
        .merge(connections::routes())
        .merge(pairing::routes())
        .routes(routes!(admin::create_agent))
        .merge(tickets::routes())
        .merge(deletion::routes())
        .merge(users::routes())
        .merge(departments::routes())
        .merge(quick_replies::routes())
        .merge(contacts::routes())
        .merge(presence::routes())
        .merge(auth::routes())
        .merge(api_keys::routes())
        .merge(credentials::routes())
        .merge(roles::routes())
        .merge(audit::routes())
        .merge(platform::routes())
        .merge(features::routes())
        .merge(invitations::routes())
        .merge(privacy::routes())
        .routes(routes!(console::index))
        .routes(routes!(console::asset))
        .split_for_parts()
}

/// All routes: the documented API, the document at [`OPENAPI_PATH`] and Swagger UI at [`DOCS_PATH`]
/// (vendored, nothing loaded from elsewhere).
pub fn router(state: AppState) -> Router {
    let (api, document) = api();
    api.merge(SwaggerUi::new(DOCS_PATH).url(OPENAPI_PATH, document))
        .fallback(not_found)
        .layer(axum::middleware::map_response(nosniff))
        .with_state(state)
}

/// Every answer says its content type is final: no browser guesses HTML out of a JSON or media body.
async fn nosniff(mut response: axum::response::Response) -> axum::response::Response {
    response
        .headers_mut()
        .entry(axum::http::header::X_CONTENT_TYPE_OPTIONS)
        .or_insert(axum::http::HeaderValue::from_static("nosniff"));
    response
}

async fn not_found() -> ApiError {
    ApiError::not_found("route_not_found", "no such route")
}

/// Parses a path segment as an id, answering 404 (not 400: an unparsable id names nothing that exists).
pub(crate) fn parse_id<T: std::str::FromStr>(raw: &str, code: &'static str) -> Result<T, ApiError> {
    raw.parse()
        .map_err(|_| ApiError::not_found(code, format!("{raw:?} is not a valid id")))
}

/// The agent's tenant's conversation named by a path segment, if the agent may see it (404 for an
/// unknown or foreign id, and for one the agent's view leaves out).
pub(crate) async fn conversation(
    state: &crate::AppState,
    agent: &schema::records::Agent,
    raw_id: &str,
) -> Result<schema::records::Conversation, crate::error::ApiError> {
    Ok(seen(state, agent, raw_id).await?.0)
}

/// [`conversation`], with the view it was checked against.
pub(crate) async fn seen(
    state: &crate::AppState,
    agent: &schema::records::Agent,
    raw_id: &str,
) -> Result<(schema::records::Conversation, schema::visibility::Viewer), crate::error::ApiError> {
    let id: schema::ConversationId = parse_id(raw_id, "conversation_not_found")?;
    let viewer = crate::permissions::viewer(state, agent).await?;
    let conversation = state
        .store
        .conversation(agent.tenant_id, id)
        .await?
        .filter(|c| viewer.sees(c))
        .ok_or_else(|| {
            crate::error::ApiError::not_found(
                "conversation_not_found",
                "no such conversation in this tenant",
            )
        })?;
    Ok((conversation, viewer))
}

/// `"field": null` (Some(None)) told apart from a missing field (None).
pub(crate) mod double_option {
    use serde::{Deserialize, Deserializer};

    pub fn deserialize<'de, T, D>(deserializer: D) -> Result<Option<Option<T>>, D::Error>
    where
        T: Deserialize<'de>,
        D: Deserializer<'de>,
    {
        Option::<T>::deserialize(deserializer).map(Some)
    }
}
