//! The agent console in a real Chromium (issue 16, first part): the node serves it at `/` under a
//! policy that forbids inline scripts; a user signs in and sees the inbox; a customer's message
//! arrives and shows in the open inbox without a reload; after the socket drops, the inbox catches
//! up; an agent replies and watches the ticks advance, then takes and resolves the ticket. Screenshots of the screens (desktop and phone widths, light and dark) are saved as review
//! artefacts under `$CARGO_TARGET_DIR/console-screenshots/`.

mod support;

use serde_json::json;
use support::browser::Browser;
use support::fake_graph::FakeGraph;
use support::{ADMIN_TOKEN, Node, add_agent, customer_writes, eventually, provision, whatsapp};

/// The screens every browser test looks at: (name, width, height, dark).
const SCREENS: [(&str, u32, u32, bool); 2] = [
    ("desktop-light", 1280, 800, false),
    ("phone-dark", 375, 740, true),
];

/// Opens the console and signs in as `email`.
async fn sign_in(browser: &Browser, node: &Node, email: &str) {
    browser
        .client
        .goto(&node.url("/"))
        .await
        .expect("open the console");
    browser.fill("[data-testid=email]", email).await;
    browser
        .fill("[data-testid=password]", "correct horse battery")
        .await;
    browser.click("[data-testid=sign-in]").await;
}

/// A tenant user who can sign in with a password.
async fn user_with_password(node: &Node, tenant: &support::Tenant, email: &str) {
    let (id, _) = add_agent(node, tenant, "Ana Souza", "agent").await;
    let status = reqwest::Client::new()
        .put(node.url(&format!(
            "/api/v1/admin/tenants/{}/agents/{id}/credentials",
            tenant.tenant_id
        )))
        .bearer_auth(ADMIN_TOKEN)
        .json(&json!({"email": email, "password": "correct horse battery"}))
        .send()
        .await
        .expect("credentials")
        .status();
    assert!(status.is_success(), "{status}");
}

#[tokio::test]
async fn the_console_is_served_with_a_policy_that_forbids_inline_scripts() {
    let node = Node::start().await;
    let page = reqwest::get(node.url("/")).await.expect("GET /");
    assert_eq!(page.status(), 200);
    let policy = page
        .headers()
        .get("content-security-policy")
        .and_then(|v| v.to_str().ok())
        .expect("a CSP")
        .to_string();
    assert!(policy.contains("script-src 'self' 'sha256-"), "{policy}");
    assert!(!policy.contains("unsafe-inline"), "{policy}");
    assert!(policy.contains("frame-ancestors 'none'"), "{policy}");
    let html = page.text().await.expect("html");
    assert!(html.contains("/console/app.js"));
    let module = reqwest::get(node.url("/console/preact.mjs"))
        .await
        .expect("preact");
    assert_eq!(module.status(), 200);
    assert!(
        module
            .headers()
            .get("content-type")
            .and_then(|v| v.to_str().ok())
            .is_some_and(|t| t.starts_with("text/javascript"))
    );
    let missing = reqwest::get(node.url("/console/nothing.js"))
        .await
        .expect("404");
    assert_eq!(missing.status(), 404);
}

#[tokio::test]
async fn an_agent_signs_in_and_sees_a_customer_s_message_arrive_without_a_reload() {
    let node = Node::start().await;
    let tenant = provision(&node, "console").await;
    user_with_password(&node, &tenant, "ana@example.com").await;
    customer_writes(&node, &tenant, "5511970000701", "wamid.C1", "Bom dia!").await;

    for (name, width, height, dark) in SCREENS {
        let browser = Browser::start(width, height, dark).await;
        browser
            .client
            .goto(&node.url("/"))
            .await
            .expect("open the console");
        browser.screenshot(&format!("sign-in-{name}")).await;
        browser.fill("[data-testid=email]", "ana@example.com").await;
        browser
            .fill("[data-testid=password]", "wrong password")
            .await;
        browser.click("[data-testid=sign-in]").await;
        let refused = browser.text("[role=alert]").await;
        assert!(!refused.trim().is_empty(), "the refusal says why");
        browser
            .client
            .find(fantoccini::Locator::Css("[data-testid=password]"))
            .await
            .expect("password field")
            .clear()
            .await
            .expect("clear");
        browser
            .fill("[data-testid=password]", "correct horse battery")
            .await;
        browser.click("[data-testid=sign-in]").await;
        browser.until_text("[data-testid=who]", "Ana Souza").await;
        browser
            .until_text("[data-testid=conversation-item]", "Bom dia!")
            .await;
        browser
            .until_text("[data-testid=live-state][data-state=live]", "")
            .await;
        browser.screenshot(&format!("inbox-{name}")).await;

        // Live: a new message shows in the open inbox, no reload.
        let text = format!("Chegou agora ({name})");
        customer_writes(
            &node,
            &tenant,
            "5511970000702",
            &format!("wamid.{name}.1"),
            &text,
        )
        .await;
        browser
            .until_text("[data-testid=conversation-item]", &text)
            .await;

        // The socket drops; what arrives meanwhile is caught up by resuming when it comes back
        // (the inbox is not reloaded: the missed events are replayed).
        browser
            .client
            .execute("window.conversaSocket.drop()", vec![])
            .await
            .expect("drop the socket");
        browser
            .until_text("[data-testid=live-state][data-state=reconnecting]", "")
            .await;
        let later = format!("Enquanto caiu ({name})");
        customer_writes(
            &node,
            &tenant,
            "5511970000703",
            &format!("wamid.{name}.2"),
            &later,
        )
        .await;
        browser
            .client
            .execute("window.conversaSocket.reconnect()", vec![])
            .await
            .expect("reconnect");
        browser
            .until_text("[data-testid=conversation-item]", &later)
            .await;
        let reloads = browser
            .client
            .execute("return window.conversaReloads || 0", vec![])
            .await
            .expect("reloads");
        assert_eq!(reloads, json!(0), "caught up by resuming, not by a reload");
        browser.screenshot(&format!("inbox-live-{name}")).await;
        browser.close().await;
    }
}

#[tokio::test]
async fn an_agent_replies_watches_the_ticks_advance_then_takes_and_resolves_the_ticket() {
    let graph = FakeGraph::start().await;
    let node = Node::start_with(Some(graph.base.clone()), Vec::new()).await;
    let tenant = provision(&node, "console-reply").await;
    user_with_password(&node, &tenant, "bia@example.com").await;
    customer_writes(
        &node,
        &tenant,
        "5511970000801",
        "wamid.R1",
        "Meu pedido não chegou",
    )
    .await;

    for (name, width, height, dark) in SCREENS {
        let browser = Browser::start(width, height, dark).await;
        sign_in(&browser, &node, "bia@example.com").await;
        browser
            .until_text("[data-testid=conversation-item]", "Meu pedido")
            .await;
        browser.click("[data-testid=conversation-item] a").await;
        browser
            .until_text("[data-testid=message]", "Meu pedido não chegou")
            .await;

        // Reply; the provider takes it, then reports it sent, delivered and read: the ticks follow.
        let reply = format!("Vou verificar agora ({name})");
        browser.fill("[data-testid=reply]", &reply).await;
        browser.click("[data-testid=send]").await;
        browser.until_text("[data-testid=message]", &reply).await;
        let sent = eventually("the reply reaches the provider", || async {
            graph
                .requests()
                .into_iter()
                .find(|r| r.body["text"]["body"].as_str() == Some(reply.as_str()))
        })
        .await;
        browser
            .until_text("[data-testid=message][data-status=accepted]", &reply)
            .await;
        for status in ["sent", "delivered", "read"] {
            let payload = whatsapp::webhook(
                &tenant.phone_number_id,
                vec![],
                vec![whatsapp::status("5511970000801", &sent.wamid, status)],
            );
            let (code, body) = whatsapp::post(&node, &tenant, &payload).await;
            assert_eq!(code, 200, "{body}");
            browser
                .until_text(
                    &format!("[data-testid=message][data-status={status}]"),
                    &reply,
                )
                .await;
        }
        browser.screenshot(&format!("conversation-{name}")).await;

        // Take the ticket (the second round finds it already hers), then resolve it.
        if name == "desktop-light" {
            browser.click("[data-testid=take]").await;
            browser
                .until_text("[data-testid=status].status-in_progress", "")
                .await;
        }
        browser.click("[data-testid=resolve]").await;
        browser
            .until_text("[data-testid=status].status-resolved", "")
            .await;
        browser.close().await;
        // The next round starts from an open ticket.
        customer_writes(
            &node,
            &tenant,
            "5511970000801",
            &format!("wamid.R.{name}"),
            "Meu pedido não chegou",
        )
        .await;
    }
}
