//! ChromeDriver driving Debian's headless Chromium, and the browser
//! steps the console tests share (log in, confirm a dialog).

use std::process::{Child, Command, Stdio};
use std::time::Duration;

use super::{free_port, wait_for_port, wait_until, TempDir};

/// ChromeDriver driving Debian's headless Chromium.
pub struct ChromeDriver {
    child: Child,
    /// Its port.
    pub port: u16,
    profiles: TempDir,
}

impl ChromeDriver {
    /// Starts chromedriver on a free loopback port.
    pub fn start() -> ChromeDriver {
        let port = free_port();
        let child = Command::new("chromedriver")
            .arg(format!("--port={port}"))
            .arg("--allowed-ips=127.0.0.1")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("chromedriver (Debian package chromium-driver; scripts/test installs it)");
        wait_for_port(port, "chromedriver");
        ChromeDriver {
            child,
            port,
            profiles: TempDir::new("chrome"),
        }
    }

    /// A new browser with an empty profile.
    pub async fn browser(&self) -> fantoccini::Client {
        let profile = self.profiles.path().join(format!("p{}", free_port()));
        std::fs::create_dir_all(&profile).unwrap();
        let caps = serde_json::json!({
            "goog:chromeOptions": {
                "binary": "/usr/bin/chromium",
                "args": [
                    "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic",
                    "--no-first-run", "--disable-background-networking",
                    "--disable-component-update", "--disable-sync", "--disable-dev-shm-usage",
                    "--window-size=1400,1000",
                    format!("--user-data-dir={}", profile.display()),
                ]
            },
            "unhandledPromptBehavior": "ignore"
        });
        let caps = caps.as_object().unwrap().clone().into_iter().collect();
        // Plain HTTP to chromedriver on loopback: no TLS stack needed.
        let connector = hyper_util::client::legacy::connect::HttpConnector::new();
        fantoccini::ClientBuilder::new(connector)
            .capabilities(caps)
            .connect(&format!("http://127.0.0.1:{}", self.port))
            .await
            .expect("a Chromium session through chromedriver")
    }
}

impl Drop for ChromeDriver {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The browser's path and query.
pub async fn path_of(b: &fantoccini::Client) -> String {
    let u = b.current_url().await.unwrap();
    match u.query() {
        Some(q) => format!("{}?{q}", u.path()),
        None => u.path().to_owned(),
    }
}

/// Logs in through the console's login page at `base` (`http://host:port`).
pub async fn browser_login(b: &fantoccini::Client, base: &str, login: &str, password: &str) {
    use fantoccini::Locator;
    b.goto(&format!("{base}/login")).await.unwrap();
    b.find(Locator::Css("#login"))
        .await
        .unwrap()
        .send_keys(login)
        .await
        .unwrap();
    b.find(Locator::Css("#password"))
        .await
        .unwrap()
        .send_keys(password)
        .await
        .unwrap();
    b.find(Locator::Css("#login-submit"))
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
    if b.wait()
        .at_most(Duration::from_secs(10))
        .for_element(Locator::Css("#me"))
        .await
        .is_err()
    {
        panic!(
            "{login} did not get in: at {}\n{}",
            path_of(b).await,
            b.source().await.unwrap_or_default()
        );
    }
}

/// Clicks what `css` names (a button that asks for confirmation) and
/// confirms.
pub async fn click_confirmed(b: &fantoccini::Client, css: &str) {
    b.find(fantoccini::Locator::Css(css))
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
    accept_confirmation(b).await;
}

/// Accepts the confirmation dialog that a click opened.
pub async fn accept_confirmation(b: &fantoccini::Client) {
    wait_until("a confirmation dialog to accept", 5, || async {
        b.accept_alert().await.is_ok()
    })
    .await;
}
