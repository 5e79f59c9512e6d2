//! The console's accessibility, in Debian's Chromium through chromedriver:
//! axe-core (npm, installed by `scripts/test` into `target/node`) is
//! injected into every page an admin reaches on a seeded desk (requests
//! waiting, asked for more, rejected, in their grace period, with photos)
//! and must report no violation at all; each one found is printed with its
//! id, impact and nodes. Then a request is reviewed from the keyboard only:
//! the approve shortcut, confirmed with Enter, decides it, Escape leaves a
//! request as it was, and the next-request shortcut moves on. A screenshot
//! of a request page lands in `target/artifacts/request.png`.

mod support;

use fantoccini::actions::{InputSource, KeyAction, KeyActions};
use fantoccini::key::Key;
use fantoccini::{Client, Locator};
use serde_json::{json, Value};
use std::path::PathBuf;
use std::time::{Duration, Instant};
use support::desk::{TestDesk, OPERATOR_PASSWORD};
use support::mail::Mail;
use support::{browser_login, huytk_cli, path_of, ChromeDriver};

const ADMIN_PASSWORD: &str = "quan-tri-vien-1";

/// The seeded requests: (number, name, phone, photos, portal account).
const SEED: [(&str, &str, &str, usize, Option<&str>); 6] = [
    (
        "034078005566",
        "Bùi Quốc Việt",
        "0818444555",
        3,
        Some("DVC-VIET"),
    ),
    (
        "001099012345",
        "Trần Thị Bình",
        "0912000111",
        3,
        Some("DVC-BINH"),
    ),
    (
        "079188004455",
        "Lê Văn Cường",
        "0987654321",
        3,
        Some("DVC-CUONG"),
    ),
    ("031200006789", "Phạm Minh Đức", "0903111222", 1, None),
    (
        "036195001122",
        "Hoàng Thị Em",
        "0904333444",
        3,
        Some("DVC-EM"),
    ),
    ("038090003344", "Vũ Văn Giang", "0905555666", 3, None),
];

fn accounts() -> String {
    SEED.iter()
        .filter_map(|(number, name, phone, _, account)| {
            account.map(|a| {
                format!(
                    "[[account]]\naccount_id = \"{a}\"\nid_number = \"{number}\"\nfull_name = \"{name}\"\n\
                     phone = \"+84{}\"\n\n",
                    &phone[1..]
                )
            })
        })
        .collect()
}

/// A desk with an admin and requests in several states; returns it and
/// the references by seed index.
async fn seeded_desk() -> (TestDesk, Vec<String>) {
    let desk = TestDesk::embedded("a11y").accounts(&accounts()).start();
    huytk_cli(
        &desk.config,
        &[
            "operator",
            "add",
            "quantri",
            "--role",
            "admin",
            "--name",
            "Quản trị viên",
            "--password-stdin",
        ],
        &format!("{ADMIN_PASSWORD}\n"),
    );
    let mut refs = Vec::new();
    for (i, (number, name, phone, photos, _)) in SEED.iter().enumerate() {
        let from = format!("citizen{i}@test");
        desk.deliver(
            &Mail::request(&from, number, name, phone)
                .photos(*photos)
                .bytes(),
        );
        let r = desk.settle(number, 1).await;
        refs.push(r[0]["request"]["reference"].as_str().unwrap().to_owned());
    }
    // Bình's request is in its grace period, Em's is rejected.
    let r = desk.approve(&refs[1], "DVC-BINH");
    assert_eq!(r.status, 200, "{}", r.text());
    let r = desk.api(
        "POST",
        &format!("/requests/{}/reject", refs[4]),
        Some(json!({ "reason_code": "name_mismatch" })),
    );
    assert_eq!(r.status, 200, "{}", r.text());
    let states: Vec<String> = refs
        .iter()
        .map(|r| {
            desk.request(r)["request"]["state"]
                .as_str()
                .unwrap()
                .to_owned()
        })
        .collect();
    assert_eq!(
        states,
        [
            "pending_review",
            "grace_period",
            "pending_review",
            "needs_info",
            "rejected",
            "pending_review"
        ],
        "{refs:?}"
    );
    (desk, refs)
}

fn axe_source() -> String {
    let p = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("target/node/node_modules/axe-core/axe.min.js");
    std::fs::read_to_string(&p).unwrap_or_else(|e| {
        panic!(
            "{}: {e} (scripts/test installs axe-core from npm)",
            p.display()
        )
    })
}

/// Runs axe-core on the page the browser shows; returns its violations,
/// each as "id (impact): help — nodes" lines.
async fn axe(b: &Client, source: &str) -> Vec<String> {
    b.execute(source, vec![])
        .await
        .expect("axe-core loads in the page");
    let result = b
        .execute_async(
            "const done = arguments[arguments.length - 1];
             axe.run(document, { resultTypes: ['violations'] })
               .then(r => done(r.violations.map(v => ({ id: v.id, impact: v.impact, help: v.help,
                  nodes: v.nodes.map(n => n.target.join(' ') + ' ' + n.failureSummary) }))))
               .catch(e => done([{ id: 'axe-error', impact: 'critical', help: String(e), nodes: [] }]));",
            vec![],
        )
        .await
        .unwrap();
    result
        .as_array()
        .unwrap()
        .iter()
        .map(|v| {
            let nodes: Vec<String> = v["nodes"]
                .as_array()
                .unwrap()
                .iter()
                .map(|n| format!("    {}", n.as_str().unwrap_or("").replace('\n', " ")))
                .collect();
            format!(
                "{} ({}): {}\n{}",
                v["id"],
                v["impact"],
                v["help"],
                nodes.join("\n")
            )
        })
        .collect()
}

/// The page at `path`, loaded: not the error page unless `error`, so a
/// template that fails (strict undefined) is seen here.
async fn visit(b: &Client, base: &str, path: &str, error: bool) {
    b.goto(&format!("{base}{path}")).await.unwrap();
    b.wait()
        .at_most(Duration::from_secs(10))
        .for_element(Locator::Css("main"))
        .await
        .unwrap_or_else(|_| panic!("{path} did not load"));
    let failed = b.find(Locator::Css("#error-code")).await.is_ok();
    assert_eq!(
        failed,
        error,
        "{path}: error page {failed}, expected {error}\n{}",
        b.source().await.unwrap_or_default()
    );
}

/// Presses one key on whatever has the focus.
async fn press(b: &Client, key: char) {
    let keys = KeyActions::new("keyboard".into())
        .then(KeyAction::Down { value: key })
        .then(KeyAction::Up { value: key });
    b.perform_actions(keys).await.unwrap();
}

async fn wait_for(b: &Client, what: &str, script: &str) -> Value {
    let start = Instant::now();
    loop {
        let v = b.execute(script, vec![]).await.unwrap();
        if !v.is_null() && v != json!(false) {
            return v;
        }
        assert!(
            start.elapsed() < Duration::from_secs(10),
            "timed out waiting for {what} (at {})",
            path_of(b).await
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

async fn photos_loaded(b: &Client) {
    wait_for(
        b,
        "the photos",
        "const i = Array.from(document.querySelectorAll('figure.photo img'));
         return i.length >= 3 && i.every(x => x.complete && x.naturalWidth > 0);",
    )
    .await;
}

#[tokio::test(flavor = "multi_thread")]
async fn every_console_page_has_no_axe_violation() {
    let (desk, refs) = seeded_desk().await;
    let base = format!("http://127.0.0.1:{}", desk.web);
    let source = axe_source();
    let driver = ChromeDriver::start();
    let b = driver.browser().await;
    let mut report = Vec::new();
    let mut check = |page: &str, found: Vec<String>| {
        eprintln!("axe: {page}: {} violation(s)", found.len());
        for v in found {
            report.push(format!("{page}: {v}"));
        }
    };

    visit(&b, &base, "/login", false).await;
    check("login", axe(&b, &source).await);
    browser_login(&b, &base, "quantri", ADMIN_PASSWORD).await;
    let pages = [
        ("queue", "/queue".to_owned(), false),
        ("queue, every state", "/queue?state=all".to_owned(), false),
        ("hotline", "/hotline?q=001099012345".to_owned(), false),
        ("dashboard", "/dashboard".to_owned(), false),
        (
            "request waiting for review",
            format!("/requests/{}", refs[0]),
            false,
        ),
        (
            "request in its grace period",
            format!("/requests/{}", refs[1]),
            false,
        ),
        (
            "request asked for more",
            format!("/requests/{}", refs[3]),
            false,
        ),
        ("request rejected", format!("/requests/{}", refs[4]), false),
        ("audit", "/audit".to_owned(), false),
        ("operators", "/operators".to_owned(), false),
        ("account", "/account".to_owned(), false),
        ("password", "/password".to_owned(), false),
        ("error page", "/requests/HTK-000000-0".to_owned(), true),
    ];
    for (name, path, error) in &pages {
        visit(&b, &base, path, *error).await;
        // The request asked for more has one photo; the others three.
        if path.starts_with("/requests/HTK") && !error && *name != "request asked for more" {
            photos_loaded(&b).await;
        }
        check(name, axe(&b, &source).await);
    }
    // The labels: the request page speaks Vietnamese, not codes.
    visit(&b, &base, &format!("/requests/{}", refs[4]), false).await;
    let history = b
        .find(Locator::Css("#history"))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(
        history.contains("Hệ thống tạo yêu cầu → Chờ duyệt"),
        "{history}"
    );
    assert!(history.contains("lan từ chối → Từ chối"), "{history}");
    assert!(
        !history.contains("problems:") && !history.contains("pending_review"),
        "{history}"
    );
    // Every action the seeded desk wrote reads as a label on the audit page.
    visit(&b, &base, "/audit", false).await;
    let raw = b
        .execute(
            "const c = Array.from(document.querySelectorAll('#audit td[data-action]'));
             return [c.length, c.filter(td => td.textContent.trim() === td.dataset.action).map(td => td.dataset.action)];",
            vec![],
        )
        .await
        .unwrap();
    assert!(raw[0].as_u64().unwrap() >= 10, "{raw}");
    assert_eq!(raw[1], json!([]), "audit actions shown as codes");
    b.close().await.unwrap();
    assert!(
        report.is_empty(),
        "axe-core found {} violation(s):\n{}",
        report.len(),
        report.join("\n")
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_request_is_approved_from_the_keyboard_and_the_next_one_follows() {
    let (desk, refs) = seeded_desk().await;
    let base = format!("http://127.0.0.1:{}", desk.web);
    let driver = ChromeDriver::start();
    let b = driver.browser().await;
    browser_login(&b, &base, "lan", OPERATOR_PASSWORD).await;
    visit(&b, &base, &format!("/requests/{}", refs[0]), false).await;
    photos_loaded(&b).await;
    // The card's two sides and the portrait stand in one row, the QR beside.
    let row = wait_for(
        &b,
        "the review row",
        "const f = Array.from(document.querySelectorAll('#review figure.photo, #review .qr-panel'));
         return f.map(e => [e.dataset.role || 'qr', Math.round(e.getBoundingClientRect().top)]);",
    )
    .await;
    let row = row.as_array().unwrap();
    let roles: Vec<&str> = row.iter().map(|r| r[0].as_str().unwrap()).collect();
    assert_eq!(roles, ["id_front", "id_back", "portrait", "qr"], "{row:?}");
    assert!(
        row.iter().all(|r| r[1] == row[0][1]),
        "not side by side: {row:?}"
    );
    std::fs::create_dir_all(PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("target/artifacts"))
        .unwrap();
    let png = b.screenshot().await.unwrap();
    assert!(png.starts_with(b"\x89PNG"));
    std::fs::write(
        PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("target/artifacts/request.png"),
        png,
    )
    .unwrap();

    let open = "return document.getElementById('shortcut-dialog').open";
    // While typing in a field the keys are text, not shortcuts.
    b.find(Locator::Css("#note"))
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
    press(&b, 'a').await;
    assert_eq!(b.execute(open, vec![]).await.unwrap(), json!(false));
    b.execute("document.activeElement.blur()", vec![])
        .await
        .unwrap();
    // Escape leaves the request as it was.
    press(&b, 'a').await;
    wait_for(&b, "the confirmation dialog", open).await;
    press(&b, Key::Escape.into()).await;
    wait_for(
        &b,
        "the dialog to close",
        "return !document.getElementById('shortcut-dialog').open",
    )
    .await;
    assert_eq!(desk.request(&refs[0])["request"]["state"], "pending_review");
    // a, then Enter: approved.
    press(&b, 'a').await;
    wait_for(&b, "the confirmation dialog", open).await;
    let focused = b
        .execute("return document.activeElement.id", vec![])
        .await
        .unwrap();
    assert_eq!(focused, "shortcut-yes");
    press(&b, Key::Enter.into()).await;
    wait_for(
        &b,
        "the queue after approval",
        "return location.pathname === '/queue' && location.search.includes('done=approve')",
    )
    .await;
    assert_eq!(desk.request(&refs[0])["request"]["state"], "grace_period");
    // n on the queue opens the first request waiting; n on a request, then
    // Enter, the next one.
    let waiting = [refs[2].clone(), refs[5].clone()];
    press(&b, 'n').await;
    let first = wait_for(
        &b,
        "a request page",
        "return location.pathname.startsWith('/requests/') && location.pathname",
    )
    .await;
    let first = first
        .as_str()
        .unwrap()
        .trim_start_matches("/requests/")
        .to_owned();
    assert!(
        waiting.contains(&first),
        "{first} is not waiting: {waiting:?}"
    );
    let other = waiting.iter().find(|r| **r != first).unwrap().clone();
    b.wait()
        .for_element(Locator::Css("#next-request"))
        .await
        .unwrap();
    press(&b, 'n').await;
    wait_for(&b, "the confirmation dialog", open).await;
    press(&b, Key::Enter.into()).await;
    let script = format!("return location.pathname === '/requests/{other}'");
    wait_for(&b, "the next request", &script).await;
    b.close().await.unwrap();
}
