//! The agent console's setup screens in a real Chromium (issue 16): an agent is offered neither the
//! connections nor the administration screens (in English or Portuguese, as the browser speaks),
//! and reaching them by address shows no access; an
//! admin sees departments, users, roles, feature flags and the audit log; a supervisor pairs a
//! WhatsApp Web number on the connections screen, whose QR code is replaced live as the gateway
//! renews it and gives way to "connected" once the phone has scanned it. Screenshots of each screen
//! at desktop and phone widths, light and dark, go to `$CARGO_TARGET_DIR/console-screenshots/`.

mod support;

use serde_json::json;
use support::browser::{Browser, EVERY_SCREEN, SCREENS, user_with_password};
use support::fake_wweb::FakeWweb;
use support::sessions::{add_session, evolution, post_webhook};
use support::{Node, api_post, customer_writes, provision};

#[tokio::test]
async fn an_agent_is_not_offered_the_admin_screens_and_cannot_open_them_by_address() {
    let node = Node::start().await;
    let tenant = provision(&node, "console-roles").await;
    user_with_password(&node, &tenant, "Caio Reis", "agent", "caio@example.com").await;
    for ((name, width, height, dark), lang) in SCREENS.into_iter().zip(["en-US", "pt-BR"]) {
        let browser = Browser::start_in(width, height, dark, lang).await;
        browser
            .sign_in(&node, "caio@example.com", "Caio Reis")
            .await;
        browser.until_text("[data-testid=nav-inbox]", "").await;
        assert_eq!(browser.count("[data-testid=nav-admin]").await, 0);
        // The words follow the browser's language.
        let inbox = browser.text("[data-testid=nav-inbox]").await;
        assert_eq!(
            inbox,
            if lang == "pt-BR" {
                "Caixa de entrada"
            } else {
                "Inbox"
            }
        );
        assert_eq!(browser.count("[data-testid=nav-connections]").await, 0);
        for (hash, screen) in [("#/admin", "admin"), ("#/connections", "connections")] {
            browser.go(hash).await;
            browser
                .until_text(
                    &format!("[data-testid=forbidden][data-screen={screen}]"),
                    "",
                )
                .await;
            assert_eq!(browser.count("[data-testid=admin]").await, 0, "{hash}");
            assert_eq!(browser.count("[data-testid=connections]").await, 0);
            assert_eq!(browser.count("[data-testid=departments]").await, 0);
        }
        browser.screenshot(&format!("agent-no-admin-{name}")).await;
        browser.close().await;
    }
}

#[tokio::test]
async fn an_admin_sees_departments_users_roles_flags_and_the_audit_log() {
    let node = Node::start().await;
    let tenant = provision(&node, "console-admin").await;
    let (_, admin) =
        user_with_password(&node, &tenant, "Dora Admin", "admin", "dora@example.com").await;
    user_with_password(&node, &tenant, "Caio Reis", "agent", "caio@example.com").await;
    let (status, body) = api_post(
        &node,
        &admin,
        "/api/v1/departments",
        json!({"key": "financeiro", "name": "Financeiro",
               "sla": {"first_response": "PT15M", "resolution": "PT24H"}, "distribution": "round_robin"}),
    )
    .await;
    assert_eq!(status, 201, "{body}");
    customer_writes(&node, &tenant, "5511970000901", "wamid.A1", "Olá").await;

    for (name, width, height, dark) in EVERY_SCREEN {
        let browser = Browser::start(width, height, dark).await;
        browser
            .client
            .goto(&node.url("/"))
            .await
            .expect("open the console");
        browser.until_text("[data-testid=sign-in]", "").await;
        browser.screenshot(&format!("sign-in-{name}")).await;
        browser
            .sign_in(&node, "dora@example.com", "Dora Admin")
            .await;
        browser
            .until_text("[data-testid=conversation-item]", "Olá")
            .await;
        browser.screenshot(&format!("inbox-{name}")).await;
        browser.click("[data-testid=conversation-item] a").await;
        browser.until_text("[data-testid=message]", "Olá").await;
        browser.until_text("[data-testid=contact]", "").await;
        browser.screenshot(&format!("conversation-{name}")).await;
        if width < 768 {
            browser.click("[data-testid=details]").await;
            browser.until_text("[data-testid=ticket]", "").await;
            browser
                .screenshot(&format!("conversation-details-{name}"))
                .await;
        }
        browser.click("[data-testid=nav-admin]").await;
        browser
            .until_text("[data-testid=department]", "Financeiro")
            .await;
        browser
            .screenshot(&format!("admin-departments-{name}"))
            .await;
        browser.click("[data-testid=tab-users]").await;
        browser.until_text("[data-testid=user]", "Caio Reis").await;
        browser.screenshot(&format!("admin-users-{name}")).await;
        browser.click("[data-testid=tab-roles]").await;
        browser.until_text("[data-testid=roles]", "").await;
        browser.screenshot(&format!("admin-roles-{name}")).await;
        browser.click("[data-testid=tab-features]").await;
        browser
            .until(
                "the flags",
                "document.querySelector('[data-testid=flag-groups]')",
            )
            .await;
        browser.screenshot(&format!("admin-features-{name}")).await;
        browser.click("[data-testid=tab-audit]").await;
        browser
            .until_text("[data-testid=audit-entry]", "auth.sign_in")
            .await;
        browser.screenshot(&format!("admin-audit-{name}")).await;
        browser.close().await;
    }

    // A department's SLA changes from its form; what the form does not show is kept.
    let browser = Browser::start(1280, 800, false).await;
    browser
        .sign_in(&node, "dora@example.com", "Dora Admin")
        .await;
    browser.go("#/admin").await;
    browser
        .click_text("[data-testid=department] button", "")
        .await;
    let first_response = "[data-testid=department-form] input[name=first_response]";
    browser
        .until(
            "the form",
            &format!("document.querySelector('{first_response}')?.value === '15'"),
        )
        .await;
    browser
        .client
        .execute(
            &format!("document.querySelector('{first_response}').value = ''"),
            vec![],
        )
        .await
        .expect("clear");
    browser.fill(first_response, "30").await;
    browser.click("[data-testid=save-department]").await;
    support::eventually("the department is stored", || async {
        let (_, d) = support::api_get(&node, &admin, "/api/v1/departments/financeiro").await;
        (d["sla"]["first_response"] == "PT30M").then_some(d)
    })
    .await;
    let (_, d) = support::api_get(&node, &admin, "/api/v1/departments/financeiro").await;
    assert_eq!(d["sla"]["resolution"], "PT24H", "{d}");
    assert_eq!(d["distribution"], "round_robin", "{d}");

    // Flags change from the screen: the server holds the new value.
    browser.click("[data-testid=tab-features]").await;
    browser.click("[data-testid=flag-groups]").await;
    support::eventually("the flag is stored", || async {
        let (_, flags) = support::api_get(&node, &admin, "/api/v1/features").await;
        (flags["groups"] == json!(true)).then_some(())
    })
    .await;
    browser.close().await;
}

#[tokio::test]
async fn the_qr_pairing_screen_updates_live_until_the_phone_is_paired() {
    let fake = FakeWweb::start().await;
    let node = Node::start().await;
    let tenant = provision(&node, "console-qr").await;
    user_with_password(&node, &tenant, "Sil Super", "supervisor", "sil@example.com").await;
    let session = add_session(
        &node,
        &tenant.tenant_id,
        json!({"name": "Loja Centro", "provider": "evolution", "server_url": fake.base,
               "instance": "acme-main", "api_key": "evo-key-1"}),
    )
    .await;
    let card = format!(
        "[data-testid=connection][data-id='{}']",
        session.connection_id
    );
    let image = |code: &str| {
        format!("document.querySelector(\"{card} [data-testid=qr]\")?.src === '{code}'")
    };

    for (round, (name, width, height, dark)) in EVERY_SCREEN.into_iter().enumerate() {
        let browser = Browser::start(width, height, dark).await;
        browser.sign_in(&node, "sil@example.com", "Sil Super").await;
        browser.click("[data-testid=nav-connections]").await;
        browser.until_text(&card, "Loja Centro").await;
        browser.screenshot(&format!("connections-{name}")).await;
        browser.click(&format!("{card} [data-testid=pair]")).await;
        // The screen reads the code the gateway shows now…
        let first = if round == 0 {
            "data:image/png;base64,QUdBSU4=".to_string()
        } else {
            format!("data:image/png;base64,{}", previous_code(round - 1))
        };
        browser.until("the first QR code", &image(&first)).await;
        // …and the gateway's renewed code replaces it live.
        let renewed = format!("data:image/png;base64,{}", previous_code(round));
        let qr = evolution(
            "qrcode.updated",
            json!({"qrcode": {"instance": "acme-main", "pairingCode": null, "code": "2@x",
                   "base64": renewed}}),
        );
        let (status, body) = post_webhook(&node, &session.webhook_path, &qr).await;
        assert_eq!(status, 200, "{body}");
        browser.until("the renewed QR code", &image(&renewed)).await;
        browser
            .until_text(
                &format!("{card} [data-testid=connection-status][data-status=qr_required]"),
                "",
            )
            .await;
        browser.screenshot(&format!("connections-qr-{name}")).await;
        browser.close().await;
    }

    // The phone scans it: the connection turns connected and there is nothing left to scan.
    let browser = Browser::start(1280, 800, false).await;
    browser.sign_in(&node, "sil@example.com", "Sil Super").await;
    browser.go("#/connections").await;
    browser.click(&format!("{card} [data-testid=pair]")).await;
    browser
        .until(
            "a QR code",
            &format!("document.querySelector(\"{card} [data-testid=qr]\")"),
        )
        .await;
    let open = evolution(
        "connection.update",
        json!({"instance": "acme-main", "state": "open", "statusReason": 200}),
    );
    assert_eq!(
        post_webhook(&node, &session.webhook_path, &open).await.0,
        200
    );
    browser
        .until_text(
            &format!("{card} [data-testid=connection-status][data-status=connected]"),
            "",
        )
        .await;
    browser
        .until(
            "the QR code to go",
            &format!("!document.querySelector(\"{card} [data-testid=pairing]\")"),
        )
        .await;
    browser.close().await;
}

/// The code the gateway renews to in round `n`: distinct 25×25 PNGs that look like QR codes, so
/// the screenshots show one.
fn previous_code(n: usize) -> &'static str {
    [
        "iVBORw0KGgoAAAANSUhEUgAAABkAAAAZAQAAAADskrjOAAAAgElEQVR42mNgnHKgnqE2P76ewbVvIpBYAyRc1gQCxern1zMwujnUM/yt+/qfwSvuyX8GCZW5/xlSjBbWM9i0TqlniCm79J9hVtvF/wzvr2TWMziyTv7PsEkt8D/DQm4ToF4/O6ApHP//M7jerQQaesr5P4PLAqCOWr//QNmgz/8Bav00mGfOGWQAAAAASUVORK5CYII=",
        "iVBORw0KGgoAAAANSUhEUgAAABkAAAAZAQAAAADskrjOAAAAgUlEQVR42mNgOOZQz1AzLb6ewZVBsJ7BxRpIuN6+WM9Qqy5fz8B4uAHIOvvnP8Pi9hv/GZQczOoZYq+a/mcQr+j4z9Dz1vs/g1zfxf8MszzC6hlUZX7VM+hJHqpnWB1z5T8D48f5QJNFhIDm3bACEtv+AY2/tRto3lveegYGxVP/AZi1MXFS9x0XAAAAAElFTkSuQmCC",
        "iVBORw0KGgoAAAANSUhEUgAAABkAAAAZAQAAAADskrjOAAAAg0lEQVR42mNgnHugnqHGRr6ewcUisJ7BdT+IyJ5Yz1C7Y349A2N8Qz1DedCpeoaQSQb/GX6KBtUzyMs51TMIvZlezzCZJeQ/A39hXD2DnHNvPcPbmMz/DOtjvv9n2Lak7z8Dg3cB0ORLW/8zuIY3/WdwYdwAJKL+/2eo3agBNPnKhHoAIvQwzWNkC0QAAAAASUVORK5CYII=",
        "iVBORw0KGgoAAAANSUhEUgAAABkAAAAZAQAAAADskrjOAAAAgElEQVR42mNg2ORQz1Czfn49g+v0iUAiCUTYXwSK/ZavZ2BcDJSNc9n8n+HL09X1DCmqQFnNbov/DCxvH9Yz7Ped8p9hbyfbfwaJxI31DDNu/PvPoBS/u54hmTnuPwOjldp/hpoDWv8ZXLfZ1DO4vFQDEiZbgWLvZf8zMFw+/B8AReMz6V2aUYAAAAAASUVORK5CYII=",
    ][n]
}

#[tokio::test]
async fn an_admin_creates_a_connection_then_pauses_and_resumes_it_from_the_screen() {
    let node = Node::start().await;
    let tenant = provision(&node, "console-connections").await;
    let (_, admin) =
        user_with_password(&node, &tenant, "Dora Admin", "admin", "dora@example.com").await;
    let browser = Browser::start(1280, 800, false).await;
    browser
        .sign_in(&node, "dora@example.com", "Dora Admin")
        .await;
    browser.click("[data-testid=nav-connections]").await;
    browser.click("[data-testid=new-connection]").await;
    let form = "[data-testid=create-connection]";
    browser
        .select_value(&format!("{form} select"), "zapi")
        .await;
    browser
        .fill(&format!("{form} input[name=name]"), "Loja Z")
        .await;
    browser
        .fill(&format!("{form} input[name=instance_id]"), "ZCONSOLE1")
        .await;
    browser
        .fill(&format!("{form} input[name=instance_token]"), "tok-z")
        .await;
    browser.click(&format!("{form} button[type=submit]")).await;
    browser
        .until_text("[data-testid=webhook-url]", "/webhooks/zapi/")
        .await;
    browser
        .screenshot("connections-created-desktop-light")
        .await;
    let card = "[data-testid=connection]";
    browser.until_text(card, "Loja Z").await;
    let (_, listed) = support::api_get(&node, &admin, "/api/v1/connections").await;
    let created = listed
        .as_array()
        .and_then(|all| all.iter().find(|c| c["name"] == "Loja Z"))
        .cloned()
        .expect("stored");
    assert_eq!(created["provider"], "zapi");
    assert_eq!(created["account_id"], "ZCONSOLE1");
    let id = created["id"].as_str().expect("id").to_string();
    let mine = format!("[data-testid=connection][data-id='{id}']");

    // Pause, then resume: the card follows the server.
    browser.click(&format!("{mine} [data-testid=pause]")).await;
    browser
        .until_text(
            &format!("{mine} [data-testid=connection-status][data-status=paused]"),
            "",
        )
        .await;
    assert_eq!(
        connection_status(&node, &admin, "Loja Z").await,
        Some(json!("paused"))
    );
    browser.click(&format!("{mine} [data-testid=resume]")).await;
    browser
        .until(
            "the connection to leave paused",
            &format!("document.querySelector(\"{mine} [data-testid=connection-status]\")?.dataset.status !== 'paused'"),
        )
        .await;
    assert_ne!(
        connection_status(&node, &admin, "Loja Z").await,
        Some(json!("paused"))
    );
    browser.close().await;
}

/// The status the server holds for the tenant's connection called `name`.
async fn connection_status(node: &Node, token: &str, name: &str) -> Option<serde_json::Value> {
    let (_, listed) = support::api_get(node, token, "/api/v1/connections").await;
    listed
        .as_array()
        .and_then(|all| all.iter().find(|c| c["name"] == name))
        .map(|c| c["status"].clone())
}
