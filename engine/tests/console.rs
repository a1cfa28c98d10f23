//! The agent console in a real Chromium (issue 16, first part): the node serves it at `/` under a
//! policy that forbids inline scripts; a user signs in and sees the inbox; a customer's message
//! arrives and shows in the open inbox without a reload; after the socket drops, the inbox catches
//! up; an agent replies and watches the ticks advance, then takes and resolves the ticket. Screenshots of the screens (desktop and phone widths, light and dark) are saved as review
//! artefacts under `$CARGO_TARGET_DIR/console-screenshots/`.

mod support;

use serde_json::json;
use support::browser::{Browser, PASSWORD, SCREENS, user_with_password};
use support::fake_graph::FakeGraph;
use support::{Node, customer_writes, eventually, provision, whatsapp};

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
    user_with_password(&node, &tenant, "Ana Souza", "agent", "ana@example.com").await;
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
        browser.fill("[data-testid=password]", PASSWORD).await;
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
    user_with_password(&node, &tenant, "Bia Lima", "agent", "bia@example.com").await;
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
        browser.sign_in(&node, "bia@example.com", "Bia Lima").await;
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

        // Take the ticket (the second round finds it already hers), then resolve it. On a phone
        // the ticket's panel opens from the header.
        if width < 768 {
            browser.click("[data-testid=details]").await;
        }
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

#[tokio::test]
async fn an_agent_answers_with_a_quick_reply_adds_a_note_assigns_transfers_and_finds_the_ticket_in_its_views()
 {
    let graph = FakeGraph::start().await;
    let node = Node::start_with(Some(graph.base.clone()), Vec::new()).await;
    let tenant = provision(&node, "console-helpdesk").await;
    let (_, admin) = support::browser::user_with_password(
        &node,
        &tenant,
        "Dora Admin",
        "admin",
        "dora@example.com",
    )
    .await;
    let (eva, _) =
        user_with_password(&node, &tenant, "Eva Nunes", "agent", "eva@example.com").await;
    user_with_password(&node, &tenant, "Fabio Melo", "agent", "fabio@example.com").await;
    for (path, body) in [
        (
            "/api/v1/canned_responses",
            json!({"short_code": "/saudacao", "content": "Olá, {{contact.name}}! Sou {{agent.name}}."}),
        ),
        (
            "/api/v1/departments",
            json!({"key": "financeiro", "name": "Financeiro"}),
        ),
    ] {
        let (status, answer) = support::api_post(&node, &admin, path, body).await;
        assert!(status == 200 || status == 201, "{path}: {answer}");
    }
    customer_writes(
        &node,
        &tenant,
        "5511970000951",
        "wamid.H1",
        "Quero segunda via do boleto",
    )
    .await;
    customer_writes(&node, &tenant, "5511970000952", "wamid.H2", "Outro assunto").await;

    for (name, width, height, dark) in SCREENS {
        let browser = Browser::start(width, height, dark).await;
        browser.sign_in(&node, "eva@example.com", "Eva Nunes").await;
        browser
            .click_text("[data-testid=conversation-item] a", "5511970000951")
            .await;
        browser
            .until_text("[data-testid=message]", "segunda via")
            .await;

        // `/` opens the quick replies; Enter takes the highlighted one, rendered for this ticket.
        browser.fill("[data-testid=reply]", "/sau").await;
        browser
            .until_text("[data-testid=quick-replies]", "/saudacao")
            .await;
        browser.fill("[data-testid=reply]", &enter()).await;
        browser
            .until(
                "the rendered quick reply",
                "document.querySelector('[data-testid=reply]').value.includes('Sou Eva Nunes')",
            )
            .await;
        browser.screenshot(&format!("quick-reply-{name}")).await;
        browser.click("[data-testid=send]").await;
        browser
            .until_text("[data-testid=message]", "Sou Eva Nunes")
            .await;

        // An internal note shows in the timeline, marked as such.
        let note = format!("Cliente pediu boleto ({name})");
        browser.click("[data-testid=note-mode]").await;
        browser.fill("[data-testid=reply]", &note).await;
        browser.click("[data-testid=send]").await;
        browser.until_text("[data-testid=note]", &note).await;

        // Assign to a colleague, then transfer to a department.
        if width < 768 {
            browser.click("[data-testid=details]").await;
        }
        browser.select("[data-testid=assignee]", "Fabio Melo").await;
        browser
            .until(
                "the new assignee",
                "document.querySelector('[data-testid=assignee]').selectedOptions[0].text === 'Fabio Melo'",
            )
            .await;
        browser
            .select("[data-testid=department]", "Financeiro")
            .await;
        browser.click("[data-testid=transfer]").await;
        browser.screenshot(&format!("ticket-{name}")).await;
        let conversation = browser
            .client
            .execute("return location.hash.split('/').pop()", vec![])
            .await
            .expect("id");
        let id = conversation.as_str().expect("id").to_string();
        eventually("the transfer is stored", || async {
            let (_, c) =
                support::api_get(&node, &admin, &format!("/api/v1/conversations/{id}")).await;
            (c["team"] == "financeiro").then_some(())
        })
        .await;

        // The inbox's views: not in "mine" (Fabio has it), found by its department and by a word.
        browser.go("#/").await;
        browser.click("[data-testid=tab-mine]").await;
        browser
            .until_text("[data-testid=tab-mine][aria-selected=true]", "")
            .await;
        browser
            .until(
                "an empty view",
                "!document.querySelector('[data-testid=conversation-item]')",
            )
            .await;
        browser
            .select_value("[data-testid=filter]", "team:financeiro")
            .await;
        browser
            .until_text("[data-testid=conversation-item]", "Sou Eva Nunes")
            .await;
        browser.click("[data-testid=tab-all]").await;
        let items = "document.querySelectorAll('[data-testid=conversation-item]')";
        browser
            .until("both conversations", &format!("{items}.length === 2"))
            .await;
        browser
            .fill("[data-testid=search]", &format!("boleto{}", enter()))
            .await;
        browser
            .until(
                "only the one that mentions it",
                &format!(
                    "{items}.length === 1 && {items}[0].textContent.includes('Sou Eva Nunes')"
                ),
            )
            .await;
        browser.screenshot(&format!("inbox-views-{name}")).await;
        browser.close().await;

        // The next round starts with Eva holding it again.
        let (status, body) = support::api_post(
            &node,
            &admin,
            &format!("/api/v1/conversations/{id}/assignments"),
            json!({"assignee_id": eva}),
        )
        .await;
        assert_eq!(status, 200, "{body}");
    }
}

/// The Enter key, as WebDriver types it.
fn enter() -> String {
    char::from(fantoccini::key::Key::Enter).to_string()
}
