//! The operator console end to end, in real headless Chromium (Debian's
//! chromium + chromium-driver) against `huytk serve` reading a real Dovecot
//! and sending through a real Postfix: an operator logs in, finds a request
//! that came in through the daemon, sees its photos and approves it;
//! another rejects one and the citizen's mailbox gets the reason; a
//! logged-out visitor reaches nothing but the login page. Attack tests:
//! hostile markup renders inert (checked in the browser), cross-site posts
//! are refused, an SVG or HTML "photo" is never served as a picture, and
//! the operator role cannot do supervisor things through pages or API.
//! Screenshots land in `target/test-artifacts/console/`.

mod support;

use fantoccini::{Client, Locator};
use serde_json::{json, Value};
use std::path::{Path, PathBuf};
use std::time::Duration;
use support::desk::{TestDesk, TestOperator};
use support::mail::{Mail, EXIF_MODEL};
use support::{
    append, artifacts, browser_login, click_confirmed, demo, folder, http, huytk_cli, path_of,
    start_daemon, wait_for, wait_until, ChromeDriver, Daemon, Dovecot, HttpResponse, Postfix,
    TempDir,
};

const LAN_PASSWORD: &str = "mat-khau-thu-nhat";
const MINH_PASSWORD: &str = "mat-khau-thu-hai";
const HA_PASSWORD: &str = "giam-sat-vien-1";

fn console_message(name: &str, to: &str) -> Vec<u8> {
    let raw = std::fs::read(
        PathBuf::from(env!("CARGO_MANIFEST_DIR"))
            .join("tests/console")
            .join(name),
    )
    .unwrap();
    let text = String::from_utf8_lossy(&raw);
    let text = text.replace("an@test", to).replace("hostile@test", to);
    text.into_bytes()
}

/// The portal accounts of the test requests.
const CONSOLE_ACCOUNTS: &str = r#"
[[account]]
account_id = "DVC-CCCD-1"
id_number = "079203001234"
full_name = "Nguyễn Văn An"
birth_date = "2003-05-12"
phone = "+84912345678"
email = "an@test"

[[account]]
account_id = "DVC-CMND-1"
id_number = "025123456"
full_name = "Nguyen Van An"
birth_date = "2003-05-12"

[[account]]
account_id = "DVC-VIET"
id_number = "034078005566"
full_name = "Bùi Quốc Việt"
phone = "+84818444555"
"#;

/// A [`TestDesk`] on a real Dovecot and Postfix, with three operators
/// (Lan and Minh, operators; Hà, supervisor) and the accounts of the test
/// requests in its embedded directory.
struct Desk {
    desk: TestDesk,
    dovecot: Dovecot,
    _postfix: Postfix,
    config: PathBuf,
    web: u16,
    log: PathBuf,
}

impl Desk {
    fn start(users: &[&str], desk_extra: &str) -> Desk {
        let dovecot = Dovecot::start(users);
        let postfix = Postfix::start(dovecot.lmtp_port);
        let desk = TestDesk::embedded("console")
            .imap(&dovecot, postfix.port)
            .grace_seconds(3 * 86_400)
            .desk(&format!(
                "message_id_domain = \"desk.test\"\n{desk_extra}\n"
            ))
            .operators(&[
                TestOperator::new("lan", "operator", LAN_PASSWORD).named("Nguyễn Thị Lan"),
                TestOperator::new("minh", "operator", MINH_PASSWORD).named("Trần Văn Minh"),
                TestOperator::new("ha", "supervisor", HA_PASSWORD),
            ])
            .accounts(CONSOLE_ACCOUNTS)
            .start();
        Desk {
            config: desk.config.clone(),
            web: desk.web,
            log: desk.log_path(),
            desk,
            dovecot,
            _postfix: postfix,
        }
    }

    fn token(&self, login: &str) -> String {
        self.desk.token(login)
    }

    fn api(&self, token: &str, method: &str, path: &str, body: Option<Value>) -> HttpResponse {
        self.desk.api_as(token, method, path, body)
    }

    /// Waits until `n` requests are in `state`; returns their references.
    async fn wait_for_requests(&self, token: &str, state: &str, n: usize) -> Vec<String> {
        let what = format!("{n} requests in {state}");
        wait_for(&what, Duration::from_secs(90), || async {
            let r = self.api(token, "GET", &format!("/requests?state={state}"), None);
            assert_eq!(r.status, 200, "{}", r.text());
            let items = r.json()["items"].as_array().unwrap().clone();
            if items.len() >= n {
                return Ok(items
                    .iter()
                    .map(|i| i["reference"].as_str().unwrap().to_owned())
                    .collect());
            }
            Err(format!(
                "{} of them; log:\n{}",
                items.len(),
                std::fs::read_to_string(&self.log).unwrap_or_default()
            ))
        })
        .await
    }

    fn url(&self, path: &str) -> String {
        self.desk.url(path)
    }
}

async fn login(b: &Client, desk: &Desk, login: &str, password: &str) {
    browser_login(b, &desk.url(""), login, password).await;
}

async fn screenshot(b: &Client, name: &str) {
    let png = b.screenshot().await.unwrap();
    assert!(png.starts_with(b"\x89PNG"));
    std::fs::write(artifacts("console").join(name), png).unwrap();
}

async fn js(b: &Client, script: &str) -> Value {
    b.execute(script, vec![]).await.unwrap()
}

async fn wait_path(b: &Client, prefix: &str) {
    wait_for(
        &format!("the browser at {prefix}"),
        Duration::from_secs(10),
        || async {
            let p = path_of(b).await;
            p.starts_with(prefix).then_some(()).ok_or(p)
        },
    )
    .await;
}

#[tokio::test(flavor = "multi_thread")]
async fn operators_review_approve_and_reject_in_chromium() {
    let desk = Desk::start(&["desk@test", "an@test", "viet@test"], "");
    let imap = desk.dovecot.imap_port;
    let lan_token = desk.token("lan");
    append(
        imap,
        "desk@test",
        &console_message("cccd_with_old_cmnd.eml", "an@test"),
    )
    .await;
    append(
        imap,
        "desk@test",
        &demo("2-html-only-request.eml", "citizen@gmail.com", "viet@test"),
    )
    .await;
    let refs = desk
        .wait_for_requests(&lan_token, "pending_review", 2)
        .await;
    let find = |number: &str| {
        let r = desk.api(
            &lan_token,
            "GET",
            &format!("/requests?q={number}&state=all"),
            None,
        );
        r.json()["items"][0]["reference"]
            .as_str()
            .unwrap()
            .to_owned()
    };
    let an_ref = find("079203001234");
    let viet_ref = find("034078005566");
    assert!(refs.contains(&an_ref) && refs.contains(&viet_ref));

    let driver = ChromeDriver::start();
    let b = driver.browser().await;

    // Logged out: the queue sends us to the login page.
    b.goto(&desk.url("/queue")).await.unwrap();
    wait_path(&b, "/login").await;
    screenshot(&b, "login.png").await;

    // A wrong password is refused with a clear message.
    b.find(Locator::Css("#login"))
        .await
        .unwrap()
        .send_keys("lan")
        .await
        .unwrap();
    b.find(Locator::Css("#password"))
        .await
        .unwrap()
        .send_keys("sai-mat-khau")
        .await
        .unwrap();
    b.find(Locator::Css("#login-submit"))
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
    let err = b
        .wait()
        .for_element(Locator::Css("#login-error"))
        .await
        .unwrap();
    assert!(err
        .text()
        .await
        .unwrap()
        .contains("Sai tên đăng nhập hoặc mật khẩu"));

    // Lan logs in, finds the request by its ID number, opens it.
    login(&b, &desk, "lan", LAN_PASSWORD).await;
    wait_path(&b, "/queue").await;
    let search = b.find(Locator::Css("#search")).await.unwrap();
    search.send_keys("079203001234").await.unwrap();
    search.send_keys("\u{E007}").await.unwrap(); // Enter
    b.wait()
        .for_element(Locator::Css(&format!("tr[data-href='/requests/{an_ref}']")))
        .await
        .unwrap();
    let rows = b
        .find_all(Locator::Css("#queue tbody tr[data-href]"))
        .await
        .unwrap();
    assert_eq!(rows.len(), 1, "the search finds exactly the one request");
    screenshot(&b, "queue.png").await;
    // Keyboard: j selects the row, Enter opens it.
    js(&b, "document.activeElement.blur()").await;
    b.find(Locator::Css("body"))
        .await
        .unwrap()
        .send_keys("j")
        .await
        .unwrap();
    b.find(Locator::Css("body"))
        .await
        .unwrap()
        .send_keys("\u{E007}")
        .await
        .unwrap();
    wait_path(&b, &format!("/requests/{an_ref}")).await;

    // The fields are marked; both accounts (CCCD and the old CMND) show.
    let marks = js(&b, "return Object.fromEntries(Array.from(document.querySelectorAll('#fields tr')).map(t => [t.dataset.field, t.dataset.mark]))").await;
    assert_eq!(marks["id_number"], "green", "{marks}");
    assert_eq!(marks["full_name"], "green", "{marks}");
    assert_eq!(marks["phone"], "green", "{marks}");
    assert_eq!(marks["reason"], "yellow", "{marks}");
    let accounts = js(&b, "return Array.from(document.querySelectorAll('#accounts tr[data-account]')).map(t => t.dataset.account)").await;
    assert_eq!(accounts, json!(["DVC-CCCD-1"]));
    // The old CMND account is found only through the card's QR: apart.
    let accounts = js(&b, "return Array.from(document.querySelectorAll('#qr-accounts tr[data-account]')).map(t => t.dataset.account)").await;
    assert_eq!(accounts, json!(["DVC-CMND-1"]));
    // The SMS its holder will get, as sent, with its segment count.
    let preview = b
        .find(Locator::Css("#sms-preview"))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(
        preview.contains("(2 tin, GSM-7)") && preview.contains("Tai khoan cua ban tren Cong DVCQG"),
        "{preview}"
    );
    let qr = b
        .find(Locator::Css("#qr"))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(qr.contains("025123456"), "{qr}");

    // The photos load, as pictures, re-encoded.
    wait_for("the three photos to load", Duration::from_secs(20), || async {
        let ok = js(&b, "return Array.from(document.querySelectorAll('figure.photo img')).map(i => i.complete && i.naturalWidth > 0)").await;
        let v = ok.as_array().unwrap();
        (v.len() == 3 && v.iter().all(|x| x == true))
            .then_some(())
            .ok_or(ok.to_string())
    })
    .await;
    // Rotate and zoom work.
    b.find(Locator::Css("figure.photo button[data-photo='rotate']"))
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
    let t = js(
        &b,
        "return document.querySelector('figure.photo img').style.transform",
    )
    .await;
    assert!(t.as_str().unwrap().contains("rotate(90deg)"), "{t}");
    screenshot(&b, "request.png").await;

    // Lan claims it; Minh, in another browser, sees who holds it.
    b.find(Locator::Css("#claim-button"))
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
    b.wait()
        .for_element(Locator::Css("#release"))
        .await
        .unwrap();
    let b2 = driver.browser().await;
    login(&b2, &desk, "minh", MINH_PASSWORD).await;
    b2.goto(&desk.url(&format!("/requests/{an_ref}")))
        .await
        .unwrap();
    let held = b2
        .find(Locator::Css("#held-by"))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(held.contains("lan"), "{held}");
    // Minh's approval is refused while Lan holds it.
    b2.find(Locator::Css("input[name='account'][value='DVC-CCCD-1']"))
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
    click_confirmed(&b2, "#approve").await;
    let refusal = b2
        .wait()
        .for_element(Locator::Css("#refusal"))
        .await
        .unwrap();
    assert_eq!(
        refusal.attr("data-code").await.unwrap().as_deref(),
        Some("held_by_other")
    );

    // Lan approves the CCCD account.
    b.find(Locator::Css("input[name='account'][value='DVC-CCCD-1']"))
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
    click_confirmed(&b, "#approve").await;
    wait_path(&b, "/queue?done=approve").await;
    let v = desk
        .api(&lan_token, "GET", &format!("/requests/{an_ref}"), None)
        .json();
    assert_eq!(v["request"]["state"], "grace_period");
    assert_eq!(v["request"]["approved_account"], "DVC-CCCD-1");
    let history: Vec<String> = v["history"]
        .as_array()
        .unwrap()
        .iter()
        .map(|h| h["action"].as_str().unwrap().to_owned())
        .collect();
    assert!(history.contains(&"approve".to_owned()), "{history:?}");

    // Minh rejects the other request with an edited reason template.
    b2.goto(&desk.url(&format!("/requests/{viet_ref}")))
        .await
        .unwrap();
    js(&b2, "const s = document.getElementById('reason-template'); s.value = s.options[1].value; s.dispatchEvent(new Event('change'));").await;
    let reason = b2.find(Locator::Css("#reason")).await.unwrap();
    let template = reason.prop("value").await.unwrap().unwrap();
    assert!(!template.is_empty());
    reason.send_keys(" Mã kiểm tra: R-4711.").await.unwrap();
    click_confirmed(&b2, "#reject").await;
    wait_path(&b2, "/queue?done=reject").await;
    wait_until("the rejection letter in viet@test", 60, || async {
        folder(imap, "viet@test", "INBOX")
            .await
            .iter()
            .any(|(s, _)| s.contains("không được chấp nhận"))
    })
    .await;
    let letters = folder(imap, "viet@test", "INBOX").await;
    let (_, raw) = letters
        .iter()
        .find(|(s, _)| s.contains("không được chấp nhận"))
        .unwrap();
    let m = mail_parser::MessageParser::default().parse(raw).unwrap();
    let body = m.body_text(0).unwrap();
    assert!(body.contains("R-4711"), "{body}");
    assert!(body.contains(template.trim()), "{body}");
    assert!(m.subject().unwrap().contains(&viet_ref));

    // Logging out ends the session; a logged-out visitor reaches nothing
    // but the login page.
    b.find(Locator::Css("#logout"))
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
    wait_path(&b, "/login").await;
    let photo_sha = v["photos"][0]["sha256"].as_str().unwrap().to_owned();
    for p in [
        "/queue".to_owned(),
        "/dashboard".to_owned(),
        "/audit".to_owned(),
        "/account".to_owned(),
        format!("/requests/{an_ref}"),
        format!("/requests/{an_ref}/photos/{photo_sha}"),
        "/audit.csv".to_owned(),
    ] {
        b.goto(&desk.url(&p)).await.unwrap();
        wait_path(&b, "/login").await;
        let r = http(desk.web, "GET", &p, &[], b"");
        assert_eq!(r.status, 303, "{p}");
        assert!(r.header("location").unwrap().starts_with("/login"), "{p}");
    }
    for p in [
        "/api/v1/requests",
        &format!("/api/v1/requests/{an_ref}"),
        "/api/v1/dashboard",
    ] {
        assert_eq!(http(desk.web, "GET", p, &[], b"").status, 401, "{p}");
    }
    b.close().await.unwrap();
    b2.close().await.unwrap();
}

#[tokio::test(flavor = "multi_thread")]
async fn hostile_markup_renders_inert_and_fake_photos_are_not_served() {
    let desk = Desk::start(&["desk@test", "hostile@test"], "");
    let token = desk.token("lan");
    append(
        desk.dovecot.imap_port,
        "desk@test",
        &console_message("hostile.eml", "hostile@test"),
    )
    .await;
    let refs = desk.wait_for_requests(&token, "needs_info", 1).await;
    let reference = &refs[0];
    let driver = ChromeDriver::start();
    let b = driver.browser().await;
    login(&b, &desk, "lan", LAN_PASSWORD).await;
    b.goto(&desk.url("/queue?state=all")).await.unwrap();
    b.goto(&desk.url(&format!("/requests/{reference}")))
        .await
        .unwrap();
    b.wait().for_element(Locator::Css("#fields")).await.unwrap();
    tokio::time::sleep(Duration::from_secs(1)).await;
    screenshot(&b, "hostile-request.png").await;
    // No payload ran, none became an element, the page is still visible.
    let pwned = js(
        &b,
        "return window.__pwned === undefined ? null : String(window.__pwned)",
    )
    .await;
    assert_eq!(pwned, Value::Null, "a payload ran");
    let injected = js(&b, "return document.querySelectorAll('main script, main iframe, main svg, main style, main img[src=\"x\"]').length").await;
    assert_eq!(injected, json!(0));
    let display = js(&b, "return getComputedStyle(document.body).display").await;
    assert_ne!(display, "none");
    // The payloads are shown as text, so the operator sees what was sent.
    let text = js(&b, "return document.body.innerText").await;
    let text = text.as_str().unwrap();
    assert!(
        text.contains("<script>window.__pwned=\"name\"</script>")
            || text.contains("<script>window.__pwned=\"name\""),
        "{text}"
    );
    assert!(text.contains("<svg onload="), "the file name shows as text");
    assert!(text.contains("<style>body{display:none}</style>"));
    // Only real pictures are shown as images: the SVG and the HTML file are not.
    let imgs = js(
        &b,
        "return document.querySelectorAll('figure.photo img').length",
    )
    .await;
    assert_eq!(imgs, json!(3));

    // Their URLs do not serve them, in the browser or to a script.
    let v = desk
        .api(&token, "GET", &format!("/requests/{reference}"), None)
        .json();
    let fakes: Vec<String> = v["photos"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|p| p["format"].is_null())
        .map(|p| p["sha256"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(fakes.len(), 2, "{v}");
    for sha in &fakes {
        let r = desk.api(
            &token,
            "GET",
            &format!("/requests/{reference}/photos/{sha}"),
            None,
        );
        assert_ne!(r.status, 200);
        assert_ne!(r.header("content-type"), Some("image/svg+xml"));
        b.goto(&desk.url(&format!("/requests/{reference}/photos/{sha}")))
            .await
            .unwrap();
        let pwned = js(
            &b,
            "return window.__pwned === undefined ? null : String(window.__pwned)",
        )
        .await;
        assert_eq!(pwned, Value::Null);
    }
    // A real photo comes back as a fresh JPEG without EXIF.
    let real = v["photos"]
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["format"] == "jpeg")
        .unwrap()["sha256"]
        .as_str()
        .unwrap()
        .to_owned();
    let r = desk.api(
        &token,
        "GET",
        &format!("/requests/{reference}/photos/{real}"),
        None,
    );
    assert_eq!(r.status, 200);
    assert_eq!(r.header("content-type"), Some("image/jpeg"));
    assert!(r.body.starts_with(&[0xFF, 0xD8]));
    // These fixtures carry no EXIF: that the served copy has none is
    // checked against photos that do, in
    // `a_served_photo_carries_none_of_the_uploads_exif`.
    let csp = r.header("content-security-policy").unwrap();
    assert!(csp.contains("script-src 'self'"));
    b.close().await.unwrap();
}

/// The EXIF fields a reader finds in `jpeg` (empty when it has none).
fn exif_fields(jpeg: &[u8]) -> Vec<String> {
    match exif::Reader::new().read_from_container(&mut std::io::Cursor::new(jpeg)) {
        Ok(e) => e
            .fields()
            .map(|f| format!("{}={}", f.tag, f.display_value()))
            .collect(),
        Err(_) => Vec::new(),
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn a_served_photo_carries_none_of_the_uploads_exif() {
    let desk = TestDesk::embedded("exif").start();
    let mail = Mail::request("an@test", "079203001234", "Nguyễn Văn An", "0912345678").exif();
    // The upload really carries the camera and the place it was taken.
    for (name, bytes) in &mail.files {
        let fields = exif_fields(bytes);
        assert!(
            fields.iter().any(|f| f.contains(EXIF_MODEL)),
            "{name}: {fields:?}"
        );
        assert!(
            fields.iter().any(|f| f.starts_with("GPSLatitude=")),
            "{name}: {fields:?}"
        );
    }
    desk.deliver(&mail.bytes());
    let v = desk.settle("079203001234", 1).await.remove(0);
    let reference = v["request"]["reference"].as_str().unwrap();
    let photos = v["photos"].as_array().unwrap();
    assert_eq!(photos.len(), 3, "{v}");
    for p in photos {
        let sha = p["sha256"].as_str().unwrap();
        let r = desk.api("GET", &format!("/requests/{reference}/photos/{sha}"), None);
        assert_eq!(r.status, 200, "{}", r.text());
        assert_eq!(r.header("content-type"), Some("image/jpeg"));
        assert!(r.body.starts_with(&[0xFF, 0xD8]));
        assert_eq!(exif_fields(&r.body), Vec::<String>::new(), "{sha}");
        assert!(!r.body.windows(6).any(|w| w == b"Exif\0\0"), "{sha}");
        assert!(
            !r.body
                .windows(EXIF_MODEL.len())
                .any(|w| w == EXIF_MODEL.as_bytes()),
            "{sha}: the camera model is still in the served photo"
        );
    }
}

/// Serves one fixed HTML page on a port of its own (a site of another
/// origin), for the cross-site test.
fn serve_attacker_page(html: String) -> u16 {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    std::thread::spawn(move || {
        use std::io::{Read, Write};
        for s in listener.incoming().flatten() {
            let mut s = s;
            let mut buf = [0u8; 4096];
            let _ = s.read(&mut buf);
            let _ = write!(
                s,
                "HTTP/1.1 200 OK\r\nContent-Type: text/html; charset=utf-8\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{html}",
                html.len()
            );
        }
    });
    port
}

#[tokio::test(flavor = "multi_thread")]
async fn cross_site_posts_and_role_escalation_are_refused() {
    let desk = Desk::start(&["desk@test", "an@test"], "four_eyes = true");
    let imap = desk.dovecot.imap_port;
    let lan = desk.token("lan");
    let ha = desk.token("ha");
    append(
        imap,
        "desk@test",
        &console_message("cccd_with_old_cmnd.eml", "an@test"),
    )
    .await;
    let reference = desk.wait_for_requests(&lan, "pending_review", 1).await[0].clone();

    // A page on another site posts a rejection form to the console while
    // Lan is logged in: refused, nothing changes.
    let driver = ChromeDriver::start();
    let b = driver.browser().await;
    login(&b, &desk, "lan", LAN_PASSWORD).await;
    let attacker = serve_attacker_page(format!(
        r#"<html><body><form id="f" method="post" action="http://127.0.0.1:{}/requests/{reference}/reject">
<input name="csrf" value="guess"><input name="version" value="0"><input name="reason" value="bị giả mạo">
<button id="go" type="submit">go</button></form></body></html>"#,
        desk.web
    ));
    b.goto(&format!("http://localhost:{attacker}/"))
        .await
        .unwrap();
    b.find(Locator::Css("#go"))
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
    tokio::time::sleep(Duration::from_secs(1)).await;
    let v = desk
        .api(&lan, "GET", &format!("/requests/{reference}"), None)
        .json();
    assert_eq!(
        v["request"]["state"], "pending_review",
        "a cross-site post changed the request"
    );
    // The same post from a same-site page without the session's token: 403.
    let cookie = b.get_named_cookie("huytk_session").await.unwrap();
    let cookie = format!("huytk_session={}", cookie.value());
    let form = b"csrf=guess&version=0&reason=gia+mao";
    let r = http(
        desk.web,
        "POST",
        &format!("/requests/{reference}/reject"),
        &[
            ("Cookie", &cookie),
            ("Content-Type", "application/x-www-form-urlencoded"),
        ],
        form,
    );
    assert_eq!(r.status, 403, "{}", r.text());
    // With the right token but from another origin: 403 too.
    b.goto(&desk.url(&format!("/requests/{reference}")))
        .await
        .unwrap();
    let csrf = js(
        &b,
        "return document.querySelector('input[name=csrf]').value",
    )
    .await;
    let form = format!("csrf={}&version=0&reason=gia+mao", csrf.as_str().unwrap());
    let r = http(
        desk.web,
        "POST",
        &format!("/requests/{reference}/reject"),
        &[
            ("Cookie", &cookie),
            ("Content-Type", "application/x-www-form-urlencoded"),
            ("Origin", "http://evil.example"),
        ],
        form.as_bytes(),
    );
    assert_eq!(r.status, 403);
    let v = desk
        .api(&lan, "GET", &format!("/requests/{reference}"), None)
        .json();
    assert_eq!(v["request"]["state"], "pending_review");

    // Operator role: no audit log, no CSV, no taking over claims, through
    // the page or the API. The supervisor can.
    for p in ["/audit", "/audit.csv"] {
        let r = http(desk.web, "GET", p, &[("Cookie", &cookie)], b"");
        assert_eq!(r.status, 403, "{p}");
    }
    b.goto(&desk.url("/audit")).await.unwrap();
    let code = b
        .find(Locator::Css("#error-code"))
        .await
        .unwrap()
        .attr("data-code")
        .await
        .unwrap();
    assert_eq!(code.as_deref(), Some("forbidden"));
    assert_eq!(desk.api(&lan, "GET", "/audit", None).status, 403);
    assert_eq!(desk.api(&ha, "GET", "/audit", None).status, 200);
    let r = desk.api(&ha, "POST", &format!("/requests/{reference}/claim"), None);
    assert_eq!(r.status, 200, "{}", r.text());
    let r = desk.api(
        &lan,
        "POST",
        &format!("/requests/{reference}/take-over"),
        None,
    );
    assert_eq!(r.status, 403, "{}", r.text());
    let form = format!("csrf={}", csrf.as_str().unwrap());
    let r = http(
        desk.web,
        "POST",
        &format!("/requests/{reference}/take-over"),
        &[
            ("Cookie", &cookie),
            ("Content-Type", "application/x-www-form-urlencoded"),
        ],
        form.as_bytes(),
    );
    assert_eq!(r.status, 403, "{}", r.text());
    let r = desk.api(&lan, "POST", &format!("/requests/{reference}/claim"), None);
    assert_eq!(r.status, 409);
    assert_eq!(r.json()["holder"], "ha");
    assert_eq!(
        desk.api(&ha, "POST", &format!("/requests/{reference}/release"), None)
            .status,
        200
    );

    // Four-eyes: Lan approves first; Lan again is refused; Minh confirms.
    let approve = |version: Option<i64>| json!({ "account": "DVC-CCCD-1", "version": version });
    let r = desk.api(
        &lan,
        "POST",
        &format!("/requests/{reference}/approve"),
        Some(approve(None)),
    );
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(r.json()["result"]["outcome"], "awaiting_second_approval");
    assert_eq!(r.json()["state"], "pending_review");
    let r = desk.api(
        &lan,
        "POST",
        &format!("/requests/{reference}/approve"),
        Some(approve(None)),
    );
    assert_eq!(r.status, 409);
    assert_eq!(r.json()["error"], "same_approver");
    // A stale version is refused.
    let r = desk.api(
        &desk.token("minh"),
        "POST",
        &format!("/requests/{reference}/approve"),
        Some(approve(Some(0))),
    );
    assert_eq!(r.json()["error"], "stale", "{}", r.text());
    // An account that is not the request's is refused.
    let r = desk.api(
        &desk.token("minh"),
        "POST",
        &format!("/requests/{reference}/approve"),
        Some(json!({ "account": "DVC-VIET" })),
    );
    assert_eq!(r.json()["error"], "unknown_account", "{}", r.text());
    let r = desk.api(
        &desk.token("minh"),
        "POST",
        &format!("/requests/{reference}/approve"),
        Some(approve(None)),
    );
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(r.json()["state"], "grace_period");
    let audit = desk
        .api(&ha, "GET", &format!("/audit?ref={reference}"), None)
        .json();
    let actions: Vec<(String, String)> = audit
        .as_array()
        .unwrap()
        .iter()
        .map(|l| {
            (
                l["actor"].as_str().unwrap().to_owned(),
                l["action"].as_str().unwrap().to_owned(),
            )
        })
        .collect();
    assert!(
        actions.contains(&("lan".into(), "approve_first".into())),
        "{actions:?}"
    );
    assert!(
        actions.contains(&("minh".into(), "approve".into())),
        "{actions:?}"
    );
    // The CSV export carries the same lines.
    let csv = http(
        desk.web,
        "GET",
        &format!("/api/v1/audit?ref={reference}"),
        &[
            ("Authorization", &format!("Bearer {ha}")),
            ("Accept", "text/csv"),
        ],
        b"",
    );
    assert_eq!(csv.header("content-type"), Some("text/csv; charset=utf-8"));
    assert!(csv.text().contains("approve_first"));
    b.close().await.unwrap();
}

#[tokio::test(flavor = "multi_thread")]
async fn logins_are_limited_and_sessions_end_everywhere() {
    let desk = Desk::start(&["desk@test"], "");
    let login_form = |password: &str| format!("login=lan&password={password}&next=/queue");
    for _ in 0..5 {
        let r = http(
            desk.web,
            "POST",
            "/login",
            &[("Content-Type", "application/x-www-form-urlencoded")],
            login_form("wrong-one").as_bytes(),
        );
        assert_eq!(r.status, 401);
    }
    // The sixth try is refused even with the right password, and says why.
    let r = http(
        desk.web,
        "POST",
        "/login",
        &[("Content-Type", "application/x-www-form-urlencoded")],
        login_form(LAN_PASSWORD).as_bytes(),
    );
    assert_eq!(r.status, 429);
    assert!(r.text().contains("quá nhiều lần"), "{}", r.text());
    let r = desk.api(
        "",
        "POST",
        "/login",
        Some(json!({ "login": "lan", "password": LAN_PASSWORD })),
    );
    assert_eq!(r.status, 429);
    assert!(r.header("retry-after").is_some());
    // Other operators are not blocked.
    let r = http(
        desk.web,
        "POST",
        "/login",
        &[("Content-Type", "application/x-www-form-urlencoded")],
        format!("login=minh&password={MINH_PASSWORD}").as_bytes(),
    );
    assert_eq!(r.status, 303);
    let set = r.header("set-cookie").unwrap().to_owned();
    assert!(
        set.contains("HttpOnly") && set.contains("SameSite=Strict"),
        "{set}"
    );
    assert!(!set.contains("Secure"), "plain HTTP on loopback: {set}");
    // Behind a TLS-terminating proxy the cookie is Secure.
    let tls = http(
        desk.web,
        "POST",
        "/login",
        &[
            ("Content-Type", "application/x-www-form-urlencoded"),
            ("X-Forwarded-Proto", "https"),
        ],
        format!("login=minh&password={MINH_PASSWORD}").as_bytes(),
    );
    assert!(tls.header("set-cookie").unwrap().contains("; Secure"));
    let cookie = set.split(';').next().unwrap().to_owned();
    // Two browsers, then "log out everywhere" from one ends both.
    let r2 = http(
        desk.web,
        "POST",
        "/login",
        &[("Content-Type", "application/x-www-form-urlencoded")],
        format!("login=minh&password={MINH_PASSWORD}").as_bytes(),
    );
    let cookie2 = r2
        .header("set-cookie")
        .unwrap()
        .split(';')
        .next()
        .unwrap()
        .to_owned();
    assert_eq!(
        http(desk.web, "GET", "/queue", &[("Cookie", &cookie2)], b"").status,
        200
    );
    let page = http(desk.web, "GET", "/account", &[("Cookie", &cookie)], b"").text();
    let csrf = page
        .split("name=\"csrf\" value=\"")
        .nth(1)
        .unwrap()
        .split('"')
        .next()
        .unwrap()
        .to_owned();
    let r = http(
        desk.web,
        "POST",
        "/logout-everywhere",
        &[
            ("Cookie", &cookie),
            ("Content-Type", "application/x-www-form-urlencoded"),
        ],
        format!("csrf={csrf}").as_bytes(),
    );
    assert_eq!(r.status, 303);
    for c in [&cookie, &cookie2] {
        let r = http(desk.web, "GET", "/queue", &[("Cookie", c)], b"");
        assert_eq!(r.status, 303);
    }
    // A disabled operator's token stops working.
    let token = desk.token("minh");
    assert_eq!(desk.api(&token, "GET", "/me", None).status, 200);
    huytk_cli(&desk.config, &["operator", "disable", "minh"], "");
    assert_eq!(desk.api(&token, "GET", "/me", None).status, 401);
    // The OpenAPI document is served and names every path.
    let doc = http(desk.web, "GET", "/api/v1/openapi.json", &[], b"").json();
    assert_eq!(doc["openapi"], "3.0.3");
    for p in [
        "/requests",
        "/requests/{reference}/approve",
        "/requests/{reference}/note",
        "/audit",
        "/dashboard",
        "/login",
    ] {
        assert!(doc["paths"].get(p).is_some(), "{p}");
    }
    // The served copy names the desk's reject reason codes.
    let codes = &doc["components"]["schemas"]["RejectBody"]["allOf"][1]["properties"]
        ["reason_code"]["enum"];
    assert!(codes.as_array().is_some_and(|c| !c.is_empty()), "{codes}");
    let _ = Path::new("");
}

#[tokio::test(flavor = "multi_thread")]
async fn the_first_start_prints_a_one_time_admin_password() {
    let dir = TempDir::new("first-admin");
    let web = support::free_port();
    let config = dir.path().join("huytk.toml");
    std::fs::write(
        &config,
        format!(
            "[database]\nurl = \"sqlite://{d}/desk.db\"\n[mailbox]\npath = \"{d}/spool\"\n[mail_out]\npath = \"{d}/outbox\"\n[web]\nbind = \"127.0.0.1:{web}\"\n[templates]\ndir = \"{t}\"\n",
            d = dir.path().display(),
            t = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("templates").display()
        ),
    )
    .unwrap();
    let out = dir.path().join("out.txt");
    let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_huytk"))
        .arg("--config")
        .arg(&config)
        .arg("serve")
        .stdout(std::fs::File::create(&out).unwrap())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    support::wait_for_port(web, "the console");
    let printed = std::fs::read_to_string(&out).unwrap();
    let _ = child.kill();
    let _ = child.wait();
    // Standard output is not a terminal here (it could be a journal): the
    // password is not in it, but in a file only the desk's user reads.
    let out_text = printed.clone();
    let file = dir.path().join("first-admin-password.txt");
    assert!(printed.contains(&file.display().to_string()), "{printed}");
    let mode =
        std::os::unix::fs::PermissionsExt::mode(&std::fs::metadata(&file).unwrap().permissions());
    assert_eq!(mode & 0o077, 0, "{mode:o}");
    let printed = std::fs::read_to_string(&file).unwrap();
    let password = printed
        .split("one-time password: ")
        .nth(1)
        .and_then(|s| s.split_whitespace().next())
        .unwrap_or_else(|| panic!("no password printed: {printed}"))
        .to_owned();
    assert!(!out_text.contains(&password), "{out_text}");
    // The one-time password logs in, and the console insists on a new one.
    let _d = Daemon(
        std::process::Command::new(env!("CARGO_BIN_EXE_huytk"))
            .arg("--config")
            .arg(&config)
            .arg("serve")
            .stdout(std::fs::File::create(dir.path().join("out2.txt")).unwrap())
            .stderr(std::process::Stdio::null())
            .spawn()
            .unwrap(),
    );
    support::wait_for_port(web, "the console");
    let r = http(
        web,
        "POST",
        "/login",
        &[("Content-Type", "application/x-www-form-urlencoded")],
        format!("login=admin&password={password}").as_bytes(),
    );
    assert_eq!(r.status, 303);
    assert_eq!(r.header("location"), Some("/password"));
    let cookie = r
        .header("set-cookie")
        .unwrap()
        .split(';')
        .next()
        .unwrap()
        .to_owned();
    let r = http(web, "GET", "/queue", &[("Cookie", &cookie)], b"");
    assert_eq!(r.header("location"), Some("/password"));
    // Printed once: the second start printed nothing.
    std::thread::sleep(Duration::from_millis(300));
    let second = std::fs::read_to_string(dir.path().join("out2.txt")).unwrap();
    assert!(!second.contains("one-time password"), "{second}");
}

/// Letters in the embedded Maildir outbox: (subject, text body).
fn outbox_letters(dir: &Path) -> Vec<(String, String)> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(dir.join("outbox/new"))
        .map(|d| d.filter_map(|e| e.ok().map(|e| e.path())).collect())
        .unwrap_or_default();
    files.sort();
    files
        .iter()
        .map(|f| {
            let raw = std::fs::read(f).unwrap();
            let m = mail_parser::MessageParser::default().parse(&raw).unwrap();
            (
                m.subject().unwrap_or("").to_owned(),
                m.body_text(0).map(|b| b.into_owned()).unwrap_or_default(),
            )
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread")]
async fn every_decision_through_the_api_on_postgres() {
    let pg = support::Postgres::start();
    let db = pg.fresh_database("console");
    let dir = TempDir::new("console-pg");
    let web = support::free_port();
    let config = dir.path().join("huytk.toml");
    std::fs::write(
        &config,
        format!(
            "[database]\nurl = \"{db}\"\n[desk]\naddress = \"desk@test\"\n[mailbox]\npath = \"{d}/spool\"\npoll_seconds = 1\n\
             [mail_out]\npath = \"{d}/outbox\"\n[web]\nbind = \"127.0.0.1:{web}\"\n[templates]\ndir = \"{t}\"\n",
            d = dir.path().display(),
            t = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("templates").display()
        ),
    )
    .unwrap();
    huytk_cli(
        &config,
        &["operator", "add", "lan", "--password-stdin"],
        &format!("{LAN_PASSWORD}\n"),
    );
    huytk_cli(
        &config,
        &[
            "operator",
            "add",
            "ha",
            "--role",
            "supervisor",
            "--password-stdin",
        ],
        &format!("{HA_PASSWORD}\n"),
    );
    let accounts = dir.path().join("accounts.toml");
    std::fs::write(
        &accounts,
        "[[account]]\naccount_id = \"DVC-AN\"\nid_number = \"079203001234\"\nfull_name = \"Nguyễn Văn An\"\n\
         [[account]]\naccount_id = \"DVC-AN-CMND\"\nid_number = \"025123456\"\nfull_name = \"Nguyễn Văn An\"\n",
    )
    .unwrap();
    huytk_cli(
        &config,
        &["accounts", "load", accounts.to_str().unwrap()],
        "",
    );
    let spool = huytk::mailbox::maildir::Spool::open(&dir.path().join("spool")).unwrap();
    let corpus = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/corpus");
    spool
        .deliver(
            &console_message("cccd_with_old_cmnd.eml", "an@test"),
            "1-an",
        )
        .unwrap();
    spool
        .deliver(
            &std::fs::read(corpus.join("03_windows1258_body.eml")).unwrap(),
            "2-long",
        )
        .unwrap();
    spool
        .deliver(
            &std::fs::read(corpus.join("04_windows1258_subject.eml")).unwrap(),
            "3-hoa",
        )
        .unwrap();
    let _daemon = start_daemon(&config, &dir.path().join("daemon.log"));
    support::wait_for_port(web, "the console");
    let token = huytk_cli(&config, &["operator", "token", "lan"], "")
        .trim()
        .to_owned();
    let ha_token = huytk_cli(&config, &["operator", "token", "ha"], "")
        .trim()
        .to_owned();
    let call = |token: &str, method: &str, path: &str, body: Option<Value>| {
        let auth = format!("Bearer {token}");
        let body = body.map(|b| b.to_string()).unwrap_or_default();
        http(
            web,
            method,
            &format!("/api/v1{path}"),
            &[
                ("Authorization", &auth),
                ("Content-Type", "application/json"),
            ],
            body.as_bytes(),
        )
    };
    let api = |method: &str, path: &str, body: Option<Value>| call(&token, method, path, body);
    wait_until("the three requests", 60, || async {
        api("GET", "/requests", None).json()["total"] == 3
    })
    .await;
    // Keyset paging walks the queue once, in due order.
    let mut seen = Vec::new();
    let mut after = String::new();
    loop {
        let page = api("GET", &format!("/requests?limit=1&after={after}"), None).json();
        for i in page["items"].as_array().unwrap() {
            seen.push(i["reference"].as_str().unwrap().to_owned());
        }
        match page["next_after"].as_str() {
            Some(a) => after = a.to_owned(),
            None => break,
        }
    }
    seen.dedup();
    assert_eq!(seen.len(), 3, "{seen:?}");
    let by_number = |n: &str| {
        api("GET", &format!("/requests?q={n}"), None).json()["items"][0]["reference"]
            .as_str()
            .unwrap()
            .to_owned()
    };
    let (an, long, hoa) = (
        by_number("079203001234"),
        by_number("040089012345"),
        by_number("052189000123"),
    );
    // The request view names both of An's accounts.
    let v = api("GET", &format!("/requests/{an}"), None).json();
    let ids: Vec<&str> = v["accounts"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a["account_id"].as_str().unwrap())
        .collect();
    assert_eq!(ids, ["DVC-AN", "DVC-AN-CMND"]);
    assert_eq!(v["accounts"][1]["number_type"], "CMND");
    // Found only through the card's QR (the sender's claim), and with no
    // phone of its own: an operator cannot approve it alone, nor confirm.
    let cmnd = Some(json!({ "account": "DVC-AN-CMND" }));
    let r = api("POST", &format!("/requests/{an}/approve"), cmnd.clone());
    assert_eq!(r.status, 409, "{}", r.text());
    assert_eq!(r.json()["error"], "needs_supervisor", "{}", r.text());
    let r = api(
        "POST",
        &format!("/requests/{an}/confirm-holder-risk"),
        cmnd.clone(),
    );
    assert_eq!(r.status, 403, "{}", r.text());
    // The supervisor's separate confirmation is audited; then it can go.
    let r = call(
        &ha_token,
        "POST",
        &format!("/requests/{an}/confirm-holder-risk"),
        cmnd.clone(),
    );
    assert_eq!(r.status, 200, "{}", r.text());
    let v = api("GET", &format!("/requests/{an}"), None).json();
    let confirmed = v["history"]
        .as_array()
        .unwrap()
        .iter()
        .find(|h| h["action"] == "holder_risk_confirmed")
        .unwrap_or_else(|| panic!("{}", v["history"]));
    assert_eq!(confirmed["actor"], "ha");
    assert!(
        confirmed["detail"]
            .as_str()
            .unwrap()
            .contains("found_only_through_qr"),
        "{confirmed}"
    );
    let r = api("POST", &format!("/requests/{an}/approve"), cmnd);
    assert_eq!(r.json()["state"], "grace_period", "{}", r.text());
    // Deciding twice is refused: the state machine has moved on.
    let r = api(
        "POST",
        &format!("/requests/{an}/reject"),
        Some(json!({ "reason": "x" })),
    );
    assert_eq!(r.status, 409);
    let r = api(
        "POST",
        &format!("/requests/{long}/reject"),
        Some(json!({ "reason_code": "no_account" })),
    );
    assert_eq!(r.json()["state"], "rejected", "{}", r.text());
    let r = api(
        "POST",
        &format!("/requests/{hoa}/ask"),
        Some(json!({ "message": "Xin gửi lại ảnh mặt sau thẻ, ảnh cũ bị lóa." })),
    );
    assert_eq!(r.json()["state"], "needs_info", "{}", r.text());
    let r = api(
        "POST",
        &format!("/requests/{hoa}/note"),
        Some(json!({ "text": "Đã gọi điện nhắc." })),
    );
    assert_eq!(r.json()["result"]["outcome"], "noted", "{}", r.text());
    let r = api(
        "POST",
        &format!("/requests/{hoa}/ask"),
        Some(json!({ "message": "  " })),
    );
    assert_eq!(r.status, 422, "{}", r.text());
    assert_eq!(r.json()["error"], "bad_text");
    // The letters go out with the operator's words.
    let (rejected, asked) = wait_for("the two letters", Duration::from_secs(30), || async {
        let letters = outbox_letters(dir.path());
        let rejected = letters
            .iter()
            .find(|(s, _)| s.contains(&long) && s.contains("không được chấp nhận"));
        let asked = letters
            .iter()
            .find(|(s, _)| s.contains(&hoa) && s.contains("bổ sung thông tin cho"));
        match (rejected, asked) {
            (Some(r), Some(a)) => Ok((r.clone(), a.clone())),
            _ => Err(format!("{letters:?}")),
        }
    })
    .await;
    assert!(
        rejected.1.contains("Không tìm thấy tài khoản nào"),
        "{}",
        rejected.1
    );
    assert!(asked.1.contains("ảnh cũ bị lóa"), "{}", asked.1);
    // The audit log filters on PostgreSQL too.
    let ha = huytk_cli(&config, &["operator", "token", "ha"], "")
        .trim()
        .to_owned();
    let lines = http(
        web,
        "GET",
        "/api/v1/audit?actor=lan&action=approve",
        &[("Authorization", &format!("Bearer {ha}"))],
        b"",
    )
    .json();
    let lines = lines.as_array().unwrap();
    assert_eq!(lines.len(), 1);
    assert_eq!(lines[0]["reference"], an.as_str());
    assert!(lines[0]["detail"].as_str().unwrap().contains("DVC-AN-CMND"));
    let d = api("GET", "/dashboard", None).json();
    assert!(
        d["by_state"]
            .as_array()
            .unwrap()
            .iter()
            .any(|s| s[0] == "grace_period" && s[1] == 1),
        "{d}"
    );
}

#[tokio::test]
async fn an_idle_session_ends() {
    let dir = TempDir::new("idle");
    let store = huytk::store::Store::connect(&format!("sqlite://{}/d.db", dir.path().display()))
        .await
        .unwrap();
    let login = huytk::domain::Login::parse("lan").unwrap();
    store
        .add_operator(&login, "Lan", huytk::domain::Role::Operator, "x", false)
        .await
        .unwrap();
    let op = store.operator(&login).await.unwrap().unwrap();
    store.create_session("h1", op.id, "csrf").await.unwrap();
    let now = huytk::domain::time::now_ms();
    let opened = now - 3_600_000;
    // Seen within the idle window: live; the window moved past it: gone.
    assert!(store
        .session("h1", now - 60_000, opened)
        .await
        .unwrap()
        .is_some());
    assert!(store
        .session("h1", now + 1, opened)
        .await
        .unwrap()
        .is_none());
    // Past its absolute lifetime: gone, however recently seen.
    assert!(store
        .session("h1", now - 60_000, now + 1)
        .await
        .unwrap()
        .is_none());
    // A disabled operator's session is gone at once.
    store.set_disabled(&login, true).await.unwrap();
    assert!(store
        .session("h1", now - 60_000, opened)
        .await
        .unwrap()
        .is_none());
}

#[tokio::test(flavor = "multi_thread")]
async fn admins_manage_operators_and_nobody_else_can() {
    let dir = TempDir::new("operators");
    let web = support::free_port();
    let config = dir.path().join("huytk.toml");
    std::fs::write(
        &config,
        format!(
            "[database]\nurl = \"sqlite://{d}/desk.db\"\n[mailbox]\npath = \"{d}/spool\"\n[mail_out]\npath = \"{d}/outbox\"\n\
             [web]\nbind = \"127.0.0.1:{web}\"\n[templates]\ndir = \"{t}\"\n",
            d = dir.path().display(),
            t = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("templates").display()
        ),
    )
    .unwrap();
    huytk_cli(
        &config,
        &[
            "operator",
            "add",
            "boss",
            "--role",
            "admin",
            "--password-stdin",
        ],
        "quan-tri-vien-1\n",
    );
    huytk_cli(
        &config,
        &[
            "operator",
            "add",
            "ha",
            "--role",
            "supervisor",
            "--password-stdin",
        ],
        &format!("{HA_PASSWORD}\n"),
    );
    let boss = huytk_cli(&config, &["operator", "token", "boss"], "")
        .trim()
        .to_owned();
    let ha = huytk_cli(&config, &["operator", "token", "ha"], "")
        .trim()
        .to_owned();
    let _d = start_daemon(&config, &dir.path().join("daemon.log"));
    support::wait_for_port(web, "the console");
    let call = |token: &str, method: &str, path: &str, body: &str| {
        http(
            web,
            method,
            path,
            &[
                ("Authorization", &format!("Bearer {token}")),
                ("Content-Type", "application/json"),
            ],
            body.as_bytes(),
        )
    };
    // A supervisor cannot, through the API or the page.
    assert_eq!(call(&ha, "GET", "/api/v1/operators", "").status, 403);
    let r = call(
        &ha,
        "POST",
        "/api/v1/operators",
        r#"{"action":"add","login":"x1"}"#,
    );
    assert_eq!(r.status, 403);
    let login = |who: &str, pw: &str| {
        http(
            web,
            "POST",
            "/login",
            &[("Content-Type", "application/x-www-form-urlencoded")],
            format!("login={who}&password={pw}").as_bytes(),
        )
    };
    let ha_cookie = login("ha", HA_PASSWORD)
        .header("set-cookie")
        .unwrap()
        .split(';')
        .next()
        .unwrap()
        .to_owned();
    assert_eq!(
        http(web, "GET", "/operators", &[("Cookie", &ha_cookie)], b"").status,
        403
    );
    // The admin adds a supervisor, who gets a one-time password.
    let r = call(
        &boss,
        "POST",
        "/api/v1/operators",
        r#"{"action":"add","login":"Moi","name":"Cán bộ mới","role":"supervisor"}"#,
    );
    assert_eq!(r.status, 200, "{}", r.text());
    let one_time = r.json()["one_time_password"].as_str().unwrap().to_owned();
    let r = login("moi", &one_time);
    assert_eq!(
        r.header("location"),
        Some("/password"),
        "a one-time password must be changed"
    );
    let list = call(&boss, "GET", "/api/v1/operators", "").json();
    assert!(
        list.as_array()
            .unwrap()
            .iter()
            .any(|o| o["login"] == "moi" && o["role"] == "supervisor" && o["must_change"] == true),
        "{list}"
    );
    // Through the page: disabling ends their access.
    let boss_cookie = login("boss", "quan-tri-vien-1")
        .header("set-cookie")
        .unwrap()
        .split(';')
        .next()
        .unwrap()
        .to_owned();
    let page = http(web, "GET", "/operators", &[("Cookie", &boss_cookie)], b"").text();
    assert!(page.contains("Cán bộ mới"));
    let csrf = page
        .split("name=\"csrf\" value=\"")
        .nth(1)
        .unwrap()
        .split('"')
        .next()
        .unwrap()
        .to_owned();
    let r = http(
        web,
        "POST",
        "/operators",
        &[
            ("Cookie", &boss_cookie),
            ("Content-Type", "application/x-www-form-urlencoded"),
        ],
        format!("csrf={csrf}&action=disable&login=moi").as_bytes(),
    );
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(login("moi", &one_time).status, 401);
    // A reset gives a new one-time password and ends the old sessions.
    let r = call(
        &boss,
        "POST",
        "/api/v1/operators",
        r#"{"action":"reset","login":"ha"}"#,
    );
    let new = r.json()["one_time_password"].as_str().unwrap().to_owned();
    assert_eq!(
        http(web, "GET", "/queue", &[("Cookie", &ha_cookie)], b"").status,
        303
    );
    assert_eq!(login("ha", &new).header("location"), Some("/password"));
    // Each step is in the audit log.
    let audit = call(&boss, "GET", "/api/v1/audit?actor=boss", "").json();
    let actions: Vec<&str> = audit
        .as_array()
        .unwrap()
        .iter()
        .map(|l| l["action"].as_str().unwrap())
        .collect();
    for a in ["operator_add", "operator_disable", "operator_reset"] {
        assert!(actions.contains(&a), "{actions:?}");
    }
}
