//! A real Chromium for the console's tests: Debian's `chromium` driven through Debian's
//! `chromedriver` (both installed by `deploy/scripts/ensure-chromium.sh`, nothing downloaded) over
//! WebDriver, with fantoccini. Each browser runs headless on a fresh profile, without sandbox, and
//! with background networking, component updates and sync off (the machine has no outside network).

use super::{ADMIN_TOKEN, Node, Tenant, add_agent};
use fantoccini::{Client, ClientBuilder, Locator};
use serde_json::json;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

/// A ChromeDriver process and one browser session on it.
pub struct Browser {
    pub client: Client,
    driver: Child,
    _profile: tempfile::TempDir,
}

fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("repo root")
        .to_path_buf()
}

/// ChromeDriver's path, installing Chromium and ChromeDriver first if they are missing.
fn chromedriver() -> String {
    let output = Command::new("bash")
        .arg(repo_root().join("deploy/scripts/ensure-chromium.sh"))
        .stderr(Stdio::inherit())
        .output()
        .expect("run ensure-chromium.sh");
    assert!(output.status.success(), "Chromium could not be installed");
    String::from_utf8(output.stdout)
        .expect("path")
        .trim()
        .to_string()
}

impl Browser {
    /// A browser whose window is `width` × `height` CSS pixels, preferring a dark or light scheme.
    pub async fn start(width: u32, height: u32, dark: bool) -> Browser {
        Self::start_in(width, height, dark, "en-US").await
    }

    /// The same, with the browser's language set to `lang` (`pt-BR`, `en-US`).
    pub async fn start_in(width: u32, height: u32, dark: bool, lang: &str) -> Browser {
        // Several rustls providers are linked in: the WebDriver client uses ring, like reqwest.
        let _ = rustls::crypto::ring::default_provider().install_default();
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .expect("a free port")
            .port();
        let driver = Command::new(chromedriver())
            .arg(format!("--port={port}"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start chromedriver");
        let profile = tempfile::tempdir().expect("profile dir");
        let mut args = vec![
            "--headless=new".to_string(),
            "--no-sandbox".into(),
            "--disable-gpu".into(),
            "--disable-dev-shm-usage".into(),
            "--disable-background-networking".into(),
            "--disable-component-update".into(),
            "--disable-sync".into(),
            "--no-first-run".into(),
            format!("--user-data-dir={}", profile.path().display()),
            format!("--window-size={width},{height}"),
        ];
        if dark {
            args.push("--force-dark-mode".into());
            args.push("--blink-settings=preferredColorScheme=0".into());
        } else {
            args.push("--blink-settings=preferredColorScheme=1".into());
        }
        let mut capabilities = serde_json::Map::new();
        capabilities.insert("browserName".into(), json!("chrome"));
        let mut options = json!({"binary": "/usr/bin/chromium", "args": args});
        // A headless window is at least 500 px wide: phone widths are emulated, as DevTools does.
        if width < 500 {
            options["mobileEmulation"] = json!({
                "deviceMetrics": {"width": width, "height": height, "pixelRatio": 2.0, "touch": true}
            });
        }
        options["args"]
            .as_array_mut()
            .expect("args")
            .push(json!(format!("--lang={lang}")));
        options["prefs"] = json!({"intl.accept_languages": lang});
        capabilities.insert("goog:chromeOptions".into(), options);
        let url = format!("http://127.0.0.1:{port}");
        let mut last = None;
        // ChromeDriver listens a moment after it starts.
        for _ in 0..200 {
            match ClientBuilder::rustls()
                .expect("tls")
                .capabilities(capabilities.clone())
                .connect(&url)
                .await
            {
                Ok(client) => {
                    return Browser {
                        client,
                        driver,
                        _profile: profile,
                    };
                }
                Err(error) => last = Some(error),
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        panic!("no browser session: {last:?}");
    }

    /// Waits (up to the suite's deadline) for the element matching `css`.
    async fn element(&self, css: &str) -> fantoccini::elements::Element {
        self.client
            .wait()
            .at_most(super::WAIT)
            .for_element(Locator::Css(css))
            .await
            .unwrap_or_else(|e| panic!("no {css}: {e}"))
    }

    /// Waits for the element matching `css` and returns its text.
    pub async fn text(&self, css: &str) -> String {
        self.element(css).await.text().await.expect("text")
    }

    /// Waits until some element matching `css` has text containing `wanted`.
    pub async fn until_text(&self, css: &str, wanted: &str) {
        self.with_text(css, wanted).await;
    }

    /// Waits for an element matching `css` whose text contains `wanted`, polling until the suite's
    /// deadline.
    async fn with_text(&self, css: &str, wanted: &str) -> fantoccini::elements::Element {
        let deadline = tokio::time::Instant::now() + super::WAIT;
        loop {
            let elements = self
                .client
                .find_all(Locator::Css(css))
                .await
                .unwrap_or_default();
            for element in elements {
                if element.text().await.is_ok_and(|t| t.contains(wanted)) {
                    return element;
                }
            }
            assert!(
                tokio::time::Instant::now() < deadline,
                "gave up waiting for {wanted:?} in {css}"
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// Types into the element matching `css`.
    pub async fn fill(&self, css: &str, text: &str) {
        self.element(css).await.send_keys(text).await.expect("type");
    }

    pub async fn click(&self, css: &str) {
        self.element(css).await.click().await.expect("click");
    }

    /// Saves a screenshot as a review artefact under `$CARGO_TARGET_DIR/console-screenshots/`.
    pub async fn screenshot(&self, name: &str) {
        let png = self.client.screenshot().await.expect("screenshot");
        let dir = std::env::var("CARGO_TARGET_DIR")
            .map(PathBuf::from)
            .unwrap_or_else(|_| repo_root().join("target"))
            .join("console-screenshots");
        std::fs::create_dir_all(&dir).expect("screenshot dir");
        std::fs::write(dir.join(format!("{name}.png")), png).expect("write screenshot");
    }

    pub async fn close(mut self) {
        let _ = self.client.clone().close().await;
        let _ = self.driver.kill();
        let _ = self.driver.wait();
    }
}

impl Drop for Browser {
    fn drop(&mut self) {
        let _ = self.driver.kill();
    }
}

/// The screens every browser test looks at: (name, width, height, dark).
pub const SCREENS: [(&str, u32, u32, bool); 2] = [
    ("desktop-light", 1280, 800, false),
    ("phone-dark", 375, 740, true),
];

/// Every width in both themes, for the screenshots of each main screen.
pub const EVERY_SCREEN: [(&str, u32, u32, bool); 4] = [
    ("desktop-light", 1280, 800, false),
    ("desktop-dark", 1280, 800, true),
    ("phone-light", 375, 740, false),
    ("phone-dark", 375, 740, true),
];

/// The password every console test user signs in with.
pub const PASSWORD: &str = "correct horse battery";

/// A tenant user with `role` who can sign in as `email`; returns its id and API token.
pub async fn user_with_password(
    node: &Node,
    tenant: &Tenant,
    name: &str,
    role: &str,
    email: &str,
) -> (String, String) {
    let (id, token) = add_agent(node, tenant, name, role).await;
    let status = reqwest::Client::new()
        .put(node.url(&format!(
            "/api/v1/admin/tenants/{}/agents/{id}/credentials",
            tenant.tenant_id
        )))
        .bearer_auth(ADMIN_TOKEN)
        .json(&json!({"email": email, "password": PASSWORD}))
        .send()
        .await
        .expect("credentials")
        .status();
    assert!(status.is_success(), "{status}");
    (id, token)
}

impl Browser {
    /// Opens the console and signs in as `email`, waiting until the shell shows `name`.
    pub async fn sign_in(&self, node: &Node, email: &str, name: &str) {
        self.client
            .goto(&node.url("/"))
            .await
            .expect("open the console");
        self.fill("[data-testid=email]", email).await;
        self.fill("[data-testid=password]", PASSWORD).await;
        self.click("[data-testid=sign-in]").await;
        self.until_text("[data-testid=who]", name).await;
    }

    /// Goes to a place in the console (`#/admin`, …) without reloading the page.
    pub async fn go(&self, hash: &str) {
        self.client
            .execute(&format!("location.hash = {}", json!(hash)), vec![])
            .await
            .expect("navigate");
    }

    /// Chooses the option whose text is `label` in the select matching `css` (as a user would).
    pub async fn select(&self, css: &str, label: &str) {
        self.element(css)
            .await
            .select_by_label(label)
            .await
            .unwrap_or_else(|e| panic!("no option {label:?} in {css}: {e}"));
    }

    /// Waits for an element matching `css` whose text contains `wanted`, and clicks it.
    pub async fn click_text(&self, css: &str, wanted: &str) {
        self.with_text(css, wanted)
            .await
            .click()
            .await
            .expect("click");
    }

    /// Chooses the option with `value` in the select matching `css`.
    pub async fn select_value(&self, css: &str, value: &str) {
        self.element(css)
            .await
            .select_by_value(value)
            .await
            .unwrap_or_else(|e| panic!("no option {value:?} in {css}: {e}"));
    }

    /// Types `keys` into whatever has the focus, as a keyboard would.
    pub async fn keys(&self, keys: &str) {
        self.client
            .active_element()
            .await
            .expect("a focused element")
            .send_keys(keys)
            .await
            .expect("type");
    }

    /// Presses Tab (at most 60 times) until `script` holds for the focused element.
    pub async fn tab_until(&self, script: &str) {
        let tab = char::from(fantoccini::key::Key::Tab).to_string();
        for _ in 0..60 {
            let reached = self
                .client
                .execute(&format!("return !!({script})"), vec![])
                .await
                .unwrap_or(json!(false));
            if reached == json!(true) {
                return;
            }
            self.keys(&tab).await;
        }
        panic!("Tab never reached {script}");
    }

    /// How many elements match `css` now.
    pub async fn count(&self, css: &str) -> usize {
        self.client
            .find_all(Locator::Css(css))
            .await
            .map(|all| all.len())
            .unwrap_or(0)
    }

    /// Waits until `script` (a JavaScript expression) is true in the page.
    pub async fn until(&self, what: &str, script: &str) {
        let deadline = tokio::time::Instant::now() + super::WAIT;
        loop {
            let value = self
                .client
                .execute(&format!("return !!({script})"), vec![])
                .await
                .unwrap_or(json!(false));
            if value == json!(true) {
                return;
            }
            assert!(
                tokio::time::Instant::now() < deadline,
                "gave up waiting for {what}"
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
}
