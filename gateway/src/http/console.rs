//! The agent console (issue 16): static files embedded in the binary (`gateway/console/`, through
//! rust-embed) and served by the node itself at `/` and `/console/…`. Nothing is loaded from
//! elsewhere: Preact, htm and signals are vendored ES modules, resolved by the import map in
//! `index.html`. Every answer carries a Content-Security-Policy that forbids inline scripts (the
//! import map alone is allowed, by its SHA-256), other origins, plugins and framing.

use axum::extract::Path;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use base64::Engine;
use sha2::{Digest, Sha256};
use std::sync::LazyLock;

/// The console's files, compiled into the binary.
#[derive(rust_embed::RustEmbed)]
#[folder = "console/"]
struct Files;

/// The policy: scripts from this origin and the one inline import map; styles and images from this
/// origin (images also as `blob:`/`data:` for previews); the API and the WebSocket on this origin.
static POLICY: LazyLock<HeaderValue> = LazyLock::new(|| {
    let map = import_map().unwrap_or_default();
    let hash = base64::engine::general_purpose::STANDARD.encode(Sha256::digest(map.as_bytes()));
    let policy = format!(
        "default-src 'none'; script-src 'self' 'sha256-{hash}'; style-src 'self'; \
         img-src 'self' blob: data:; media-src 'self' blob:; connect-src 'self'; \
         base-uri 'none'; form-action 'self'; frame-ancestors 'none'"
    );
    HeaderValue::from_str(&policy).unwrap_or(HeaderValue::from_static("default-src 'none'"))
});

/// The text of `index.html`'s import map, exactly as the browser hashes it.
fn import_map() -> Option<String> {
    let index = Files::get("index.html")?;
    let text = std::str::from_utf8(&index.data).ok()?;
    let open = "<script type=\"importmap\">";
    let start = text.find(open)? + open.len();
    let end = start + text[start..].find("</script>")?;
    Some(text[start..end].to_owned())
}

/// `GET /`.
#[utoipa::path(get, path = "/", tag = "console", operation_id = "console_index",
    description = "The agent console (HTML; its modules under `/console/`).",
    responses((status = 200, description = "the console's page", content_type = "text/html")))]
pub async fn index() -> Response {
    file("index.html")
}

/// `GET /console/{path}`.
#[utoipa::path(get, path = "/console/{path}", tag = "console", operation_id = "console_file",
    params(("path" = String, Path, description = "a file of the console")),
    responses((status = 200, description = "the file", content_type = "text/javascript"),
        (status = 404, description = "no such file")))]
pub async fn asset(Path(path): Path<String>) -> Response {
    // The page is served at `/`; the licences and notes are for the repository, not the browser.
    if path == "index.html" || path.ends_with(".md") || path.ends_with(".txt") {
        return StatusCode::NOT_FOUND.into_response();
    }
    file(&path)
}

/// A file of the console: `name` in `console/`, else in `console/vendor/` (URLs are one segment).
fn file(name: &str) -> Response {
    let Some(found) = Files::get(name).or_else(|| Files::get(&format!("vendor/{name}"))) else {
        return StatusCode::NOT_FOUND.into_response();
    };
    let kind = match name.rsplit('.').next() {
        Some("html") => "text/html; charset=utf-8",
        Some("js" | "mjs") => "text/javascript; charset=utf-8",
        Some("css") => "text/css; charset=utf-8",
        Some("svg") => "image/svg+xml",
        Some("png") => "image/png",
        Some("json") => "application/json",
        _ => "text/plain; charset=utf-8",
    };
    let mut response = found.data.into_owned().into_response();
    let headers = response.headers_mut();
    headers.insert(header::CONTENT_TYPE, HeaderValue::from_static(kind));
    headers.insert(header::CONTENT_SECURITY_POLICY, POLICY.clone());
    headers.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("no-referrer"),
    );
    headers.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    // Files change with the binary, not by name: the browser asks again and gets 304-free copies.
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    response
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_policy_allows_the_import_map_by_hash_and_no_other_inline_script() {
        let map = import_map().expect("index.html has an import map");
        assert!(map.contains("\"preact\""));
        let policy = POLICY.to_str().expect("ascii");
        assert!(policy.contains("script-src 'self' 'sha256-"), "{policy}");
        assert!(!policy.contains("unsafe-inline"));
        assert!(Files::get("vendor/preact.mjs").is_some());
        assert_eq!(file("preact.mjs").status(), StatusCode::OK);
        assert_eq!(file("nothing.mjs").status(), StatusCode::NOT_FOUND);
    }
}
