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
        browser
            .screenshot(&format!("conversation-ticks-{name}"))
            .await;

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
        (
            "/api/v1/departments",
            json!({"key": "suporte", "name": "Suporte"}),
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

    let (_, fabio) = support::api_get(&node, &admin, "/api/v1/users").await;
    let fabio = fabio
        .as_array()
        .and_then(|all| all.iter().find(|u| u["name"] == "Fabio Melo"))
        .and_then(|u| u["id"].as_str())
        .expect("Fabio")
        .to_string();
    // Each round transfers to another department, so the transfer is a change every time.
    let rounds = SCREENS
        .into_iter()
        .zip([("financeiro", "Financeiro"), ("suporte", "Suporte")]);
    for ((name, width, height, dark), (team, team_name)) in rounds {
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
        let conversation = browser
            .client
            .execute("return location.hash.split('/').pop()", vec![])
            .await
            .expect("id");
        let id = conversation.as_str().expect("id").to_string();
        stored(&node, &admin, &id, "assignee", &fabio).await;
        browser.select("[data-testid=department]", team_name).await;
        browser.click("[data-testid=transfer]").await;
        stored(&node, &admin, &id, "team", team).await;
        browser.screenshot(&format!("ticket-{name}")).await;

        // A tag from the panel.
        let tag = format!("boleto-{}", &name[..5]);
        browser
            .fill("[data-testid=tag]", &format!("{tag}{}", enter()))
            .await;
        browser.until_text(".tags .badge.tag", &tag).await;

        // The inbox's views: not in "mine" (Fabio has it), found by its department, its status, its
        // tag and a word; not among the resolved.
        browser.go("#/").await;
        browser.click("[data-testid=tab-mine]").await;
        browser
            .until_text("[data-testid=tab-mine][aria-selected=true]", "")
            .await;
        browser
            .until(
                "the view read and empty",
                "document.querySelector('[data-testid=inbox]')?.dataset.loading === 'false' \
                 && !document.querySelector('[data-testid=conversation-item]')",
            )
            .await;
        browser
            .select_value("[data-testid=filter]", &format!("team:{team}"))
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
        // A view is read when its kind is shown and no read is in flight (not the previous list).
        let read = "document.querySelector('[data-testid=inbox]')?.dataset.loading === 'false' \
                    && document.querySelector('[data-testid=inbox]')?.dataset.view === ";
        let search = browser
            .client
            .find(fantoccini::Locator::Css("[data-testid=search]"))
            .await
            .expect("search");
        search.clear().await.expect("clear");
        browser
            .fill("[data-testid=search]", &format!("#{tag}{}", enter()))
            .await;
        browser
            .until(
                "only the tagged one",
                &format!(
                    "{read}'tag' && {items}.length === 1 && {items}[0].textContent.includes('#{tag}')"
                ),
            )
            .await;
        browser
            .select_value("[data-testid=filter]", "status:resolved")
            .await;
        browser
            .until(
                "no resolved ticket",
                &format!("{read}'status' && {items}.length === 0"),
            )
            .await;
        browser
            .select_value("[data-testid=filter]", "status:open")
            .await;
        browser
            .until_text("[data-testid=conversation-item]", "Sou Eva Nunes")
            .await;
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

#[tokio::test]
async fn the_console_is_usable_with_the_keyboard_alone() {
    let graph = FakeGraph::start().await;
    let node = Node::start_with(Some(graph.base.clone()), Vec::new()).await;
    let tenant = provision(&node, "console-keys").await;
    user_with_password(&node, &tenant, "Gil Teclado", "agent", "gil@example.com").await;
    customer_writes(&node, &tenant, "5511970000961", "wamid.K1", "Alguém aí?").await;
    let browser = Browser::start(1280, 800, false).await;
    browser
        .client
        .goto(&node.url("/"))
        .await
        .expect("open the console");
    let tab = char::from(fantoccini::key::Key::Tab).to_string();

    // The email field has the focus; Tab reaches the password; Enter signs in.
    browser
        .until(
            "the email field focused",
            "document.activeElement?.dataset.testid === 'email'",
        )
        .await;
    browser
        .keys(&format!("gil@example.com{tab}{PASSWORD}{}", enter()))
        .await;
    browser.until_text("[data-testid=who]", "Gil Teclado").await;

    // Tab to the conversation, Enter opens it; Tab to the reply box, type, Enter sends.
    browser
        .until_text("[data-testid=conversation-item]", "Alguém aí?")
        .await;
    browser
        .tab_until("document.activeElement?.closest('[data-testid=conversation-item]')")
        .await;
    browser.keys(&enter()).await;
    browser
        .until_text("[data-testid=message]", "Alguém aí?")
        .await;
    browser
        .tab_until("document.activeElement?.dataset.testid === 'reply'")
        .await;
    browser.keys(&format!("Sim, estou aqui{}", enter())).await;
    browser
        .until_text("[data-testid=message]", "Sim, estou aqui")
        .await;

    // The ticket's buttons are reached the same way.
    browser
        .tab_until("document.activeElement?.dataset.testid === 'resolve'")
        .await;
    browser.keys(&enter()).await;
    browser
        .until_text("[data-testid=status].status-resolved", "")
        .await;
    browser.close().await;
}

/// Waits until the conversation's `field` holds `wanted` on the server.
async fn stored(node: &Node, token: &str, id: &str, field: &str, wanted: &str) {
    eventually(&format!("the {field} is stored"), || async {
        let (_, c) = support::api_get(node, token, &format!("/api/v1/conversations/{id}")).await;
        (c[field] == wanted).then_some(())
    })
    .await;
}

#[tokio::test]
async fn a_closed_window_offers_a_template_and_an_open_one_a_file_by_link() {
    let graph = FakeGraph::start().await;
    let node = Node::start_with(Some(graph.base.clone()), Vec::new()).await;
    let tenant = provision(&node, "console-window").await;
    let (_, token) =
        user_with_password(&node, &tenant, "Hugo Prado", "agent", "hugo@example.com").await;
    // The agent wrote first, with a template: the customer has not written, the window is closed.
    let (status, started) = support::api_post(
        &node,
        &token,
        "/api/v1/conversations",
        json!({"connection_id": tenant.connection_id,
               "contact": {"address": "5511970000971", "name": "Joana"},
               "message": {"template": {"name": "boas_vindas", "language": "pt_BR"}}}),
    )
    .await;
    assert_eq!(status, 202, "{started}");
    let id = started["conversation_id"].as_str().expect("id").to_string();

    for (name, width, height, dark) in SCREENS {
        let browser = Browser::start(width, height, dark).await;
        browser
            .sign_in(&node, "hugo@example.com", "Hugo Prado")
            .await;
        browser.go(&format!("#/conversations/{id}")).await;
        browser
            .until_text("[data-testid=message]", "boas_vindas")
            .await;
        browser.until_text("[data-testid=template]", "").await;
        assert_eq!(browser.count("[data-testid=reply]").await, 0);
        let template = format!("pedido_{}", name.replace('-', "_"));
        browser.fill("[data-testid=template-name]", &template).await;
        browser.click("[data-testid=send]").await;
        eventually("the template reaches the Cloud API", || async {
            graph
                .requests()
                .into_iter()
                .find(|r| r.body["template"]["name"] == template.as_str())
        })
        .await;
        browser.until_text("[data-testid=message]", &template).await;
        browser.screenshot(&format!("template-{name}")).await;
        browser.close().await;
    }

    // The customer answers: the window opens, and a file goes by its link.
    customer_writes(&node, &tenant, "5511970000971", "wamid.W1", "Recebi!").await;
    let browser = Browser::start(1280, 800, false).await;
    browser
        .sign_in(&node, "hugo@example.com", "Hugo Prado")
        .await;
    browser.go(&format!("#/conversations/{id}")).await;
    browser.until_text("[data-testid=message]", "Recebi!").await;
    browser.click("[data-testid=attach]").await;
    browser
        .fill(
            "[data-testid=media-url]",
            "https://files.example.com/nota.jpg",
        )
        .await;
    browser.fill("[data-testid=reply]", "Sua nota").await;
    browser.click("[data-testid=send]").await;
    eventually("the image link reaches the Cloud API", || async {
        graph.requests().into_iter().find(|r| {
            r.body["image"]["link"] == "https://files.example.com/nota.jpg"
                && r.body["image"]["caption"] == "Sua nota"
        })
    })
    .await;
    browser.close().await;
}
