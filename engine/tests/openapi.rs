//! The OpenAPI document (issue 14), against the real binary: an OpenAPI 3.1 document generated from
//! the handlers is served at `/api/v1/openapi.json` with a browsable page; every operation it lists is
//! a route of the node, every schema it names is in it, and no route of the public API is registered
//! outside it.

mod support;

use serde_json::Value;
use std::collections::BTreeSet;
use support::Node;

/// Every `$ref` in a JSON value.
fn refs(value: &Value, out: &mut BTreeSet<String>) {
    match value {
        Value::Object(map) => {
            for (key, inner) in map {
                if key == "$ref"
                    && let Some(target) = inner.as_str()
                {
                    out.insert(target.to_string());
                }
                refs(inner, out);
            }
        }
        Value::Array(items) => items.iter().for_each(|item| refs(item, out)),
        _ => {}
    }
}

#[tokio::test]
async fn the_openapi_document_lists_every_route_and_each_of_its_operations_is_served() {
    let node = Node::start().await;
    let client = reqwest::Client::new();
    let response = client
        .get(node.url("/api/v1/openapi.json"))
        .send()
        .await
        .expect("document");
    assert_eq!(response.status(), 200);
    let document: Value = response.json().await.expect("json");
    assert!(
        document["openapi"]
            .as_str()
            .is_some_and(|v| v.starts_with("3.1")),
        "{}",
        document["openapi"]
    );
    let paths = document["paths"].as_object().expect("paths");
    let mut operation_ids = BTreeSet::new();
    let mut operations = 0;
    for (path, item) in paths {
        for (method, operation) in item.as_object().expect("path item") {
            operations += 1;
            let id = operation["operationId"].as_str().expect("operationId");
            assert!(operation_ids.insert(id.to_string()), "{id} twice");
            assert!(operation["tags"].is_array(), "{method} {path} has a tag");
            assert!(
                operation["responses"]
                    .as_object()
                    .is_some_and(|r| !r.is_empty()),
                "{method} {path} has responses"
            );
            // The operation is a route of the node: it may refuse us (no token, no body, unknown
            // id), but never as an unknown route or method.
            let concrete = path
                .split('/')
                .map(|segment| match segment.starts_with('{') {
                    true => uuid::Uuid::now_v7().to_string(),
                    false => segment.to_string(),
                })
                .collect::<Vec<_>>()
                .join("/");
            let method: reqwest::Method = method.to_uppercase().parse().expect("method");
            let answer = client
                .request(method.clone(), node.url(&concrete))
                .header("content-type", "application/json")
                .body("{}")
                .send()
                .await
                .expect("request");
            let status = answer.status().as_u16();
            let body: Value = answer.json().await.unwrap_or(Value::Null);
            assert_ne!(status, 405, "{method} {path} is not routed for its method");
            assert_ne!(
                body["code"].as_str(),
                Some("route_not_found"),
                "{method} {path} is not a route"
            );
        }
    }
    assert!(operations >= 50, "only {operations} operations");
    // The shared error answers are in every operation that names them, as problem+json.
    let get_contact = &paths["/api/v1/contacts/{id}"]["get"]["responses"];
    for status in ["200", "401", "404", "503"] {
        assert!(
            get_contact[status].is_object(),
            "{status} of GET /contacts/{{id}}"
        );
    }
    assert!(
        get_contact["404"]["content"]["application/problem+json"].is_object(),
        "{get_contact}"
    );
    for expected in [
        "/api/v1/conversations",
        "/api/v1/conversations/counts",
        "/api/v1/contacts/{id}/merge",
        "/api/v1/departments/{key}",
        "/api/v1/canned_responses",
        "/api/v1/conversations/{id}/toggle_status",
        "/api/v1/feed",
        "/api/v1/presence",
        "/api/v1/ws",
        "/webhooks/whatsapp/{connection_id}",
        "/api/v1/admin/tenants/{tenant}/agents",
    ] {
        assert!(paths.contains_key(expected), "{expected} missing");
    }
    // Every schema an operation names is in the document.
    let mut named = BTreeSet::new();
    refs(&document["paths"], &mut named);
    refs(&document["components"], &mut named);
    let schemas = document["components"]["schemas"]
        .as_object()
        .expect("schemas");
    for target in named {
        let name = target
            .strip_prefix("#/components/schemas/")
            .expect("a schema reference");
        assert!(
            schemas.contains_key(name),
            "{name} is referenced but missing"
        );
    }
    for schema in [
        "Conversation",
        "Message",
        "ContactRecord",
        "Department",
        "ErrorBody",
    ] {
        assert!(schemas.contains_key(schema), "{schema} missing");
    }

    // The browsable page is served by the node itself.
    let page = client
        .get(node.url("/api/v1/docs/"))
        .send()
        .await
        .expect("docs");
    assert_eq!(page.status(), 200);
    let html = page.text().await.expect("html");
    assert!(html.to_lowercase().contains("swagger"), "{html}");
}

#[test]
fn no_public_route_is_registered_outside_the_document() {
    // Routes come from `routes!(handler)`, which registers each handler at the path of its
    // `#[utoipa::path]`; a plain `.route(` would serve something the document does not list. The only
    // one allowed is the node-to-node command route of the cluster, which is not public.
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../gateway/src");
    let mut stack = vec![root];
    let mut offenders = Vec::new();
    while let Some(dir) = stack.pop() {
        for entry in std::fs::read_dir(&dir).expect("read dir") {
            let path = entry.expect("entry").path();
            if path.is_dir() {
                stack.push(path);
            } else if path.extension().is_some_and(|e| e == "rs") {
                let text = std::fs::read_to_string(&path).expect("read");
                let internal = path.ends_with("cluster.rs");
                if text.contains(".route(") && !internal {
                    offenders.push(path.display().to_string());
                }
            }
        }
    }
    assert!(offenders.is_empty(), "plain routes in {offenders:?}");
}
