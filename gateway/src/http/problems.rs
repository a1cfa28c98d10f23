//! The error answers many routes share, as OpenAPI responses: each a problem+json `ErrorBody` with
//! one status and meaning, named once here and listed by the handlers' `#[utoipa::path]`.

use schema::api::ErrorBody;
use utoipa::IntoResponses;

/// 400: the request is malformed (the body names the field).
#[derive(IntoResponses)]
#[response(
    status = 400,
    description = "malformed request (problem+json names the field)",
    content_type = "application/problem+json"
)]
pub struct BadRequest(#[allow(dead_code)] ErrorBody);

/// 401: no token, or one that does not authenticate.
#[derive(IntoResponses)]
#[response(
    status = 401,
    description = "no or unknown bearer token",
    content_type = "application/problem+json"
)]
pub struct Unauthorized(#[allow(dead_code)] ErrorBody);

/// 404: not in the caller's tenant (another tenant's looks the same).
#[derive(IntoResponses)]
#[response(
    status = 404,
    description = "no such resource in this tenant",
    content_type = "application/problem+json"
)]
pub struct NotFound(#[allow(dead_code)] ErrorBody);

/// 422: well-formed, refused by a rule (the code says which).
#[derive(IntoResponses)]
#[response(
    status = 422,
    description = "well-formed but refused (the code says why)",
    content_type = "application/problem+json"
)]
pub struct Refused(#[allow(dead_code)] ErrorBody);

/// 503: the store or the owner could not answer (the detail says whether anything was done).
#[derive(IntoResponses)]
#[response(
    status = 503,
    description = "store or owner unavailable; the detail says whether to retry",
    content_type = "application/problem+json"
)]
pub struct Unavailable(#[allow(dead_code)] ErrorBody);
