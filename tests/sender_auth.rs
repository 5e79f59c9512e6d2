//! Who sent a mail, the trusted-header way (issue 13), on the embedded
//! default with `[sender_auth] trusted_authserv_ids` set: a mail the
//! desk's receiving server passed shows green; a forged sender shows red
//! with the warning, and the `Authentication-Results: … dmarc=pass` the
//! forger wrote below the receiver's header is ignored; a follow-up that
//! fails where the first mail passed is flagged on the request; both are
//! counted on the dashboard. Checked through the API (on SQLite and
//! PostgreSQL) and in Chromium.

mod support;

use fantoccini::Locator;
use serde_json::Value;
use std::time::Duration;
use support::desk::{TestDesk, TestDeskBuilder, OPERATOR_PASSWORD};
use support::mail::Mail;
use support::{artifacts, browser_login, ChromeDriver, Postgres};

const AN: &str = "079203001234";
const BINH: &str = "079203001235";
const MX: &str = "mx.dichvucong.gov.vn";

/// What the desk's receiving server (Postfix with OpenDKIM and OpenDMARC)
/// prepends: its results, then its `Received` line.
fn received(results: &str, from_host: &str) -> String {
    format!(
        "Authentication-Results: {MX};\r\n\t{results}\r\n\
         Received: from {from_host} ({from_host} [198.51.100.7])\r\n\
         \tby {MX} (Postfix) with ESMTPS id 4Y1Zk23mXqz9sPK\r\n\
         \tfor <dichvucong@dichvucong.gov.vn>; Tue,  1 Dec 2026 17:11:08 +0700 (+07)\r\n"
    )
}

/// A mail as it arrives: the receiver's headers above the sender's.
fn arriving(trace: &str, mail: &Mail) -> Vec<u8> {
    [trace.as_bytes(), &mail.bytes()].concat()
}

/// The sender's own forgery, among the headers it wrote.
const FORGED: &str = "mx.dichvucong.gov.vn; dkim=pass header.d=vneid.gov.vn header.s=mail; \
     spf=pass smtp.mailfrom=vneid.gov.vn; dmarc=pass (p=reject dis=none) header.from=vneid.gov.vn";

fn thread_verdicts(v: &Value) -> Vec<String> {
    v["thread"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["auth"]["verdict"].as_str().unwrap_or("none").to_owned())
        .collect()
}

fn warnings(v: &Value) -> Vec<String> {
    v["request"]["warnings"]
        .as_array()
        .unwrap()
        .iter()
        .map(|w| w.as_str().unwrap().to_owned())
        .collect()
}

fn trusting(desk: TestDeskBuilder) -> TestDesk {
    desk.config(&format!(
        "\n[sender_auth]\ntrusted_authserv_ids = [\"{MX}\"]\n"
    ))
    .start()
}

/// An's green request with a red follow-up, and a forged red one: their
/// references, checked through the API.
async fn three_mails(desk: &TestDesk) -> (String, String) {
    // An's own mail, signed by her provider and passed by our server.
    let an = Mail::request("an@vnpt.vn", AN, "Nguyễn Văn An", "0912345678");
    desk.deliver(&arriving(
        &received(
            "dkim=pass (2048-bit key; unprotected) header.d=vnpt.vn header.i=@vnpt.vn \
             header.s=mail2024 header.b=Kp3xQ9ZL; dmarc=pass (p=reject dis=none) header.from=vnpt.vn",
            "mail.vnpt.vn",
        ),
        &an,
    ));
    let v = desk.settle(AN, 1).await.remove(0);
    let an_ref = v["request"]["reference"].as_str().unwrap().to_owned();
    assert_eq!(thread_verdicts(&v), ["green"], "{}", v["thread"]);
    assert!(!warnings(&v).contains(&"sender_unauthenticated".to_owned()));

    // Someone writing as the ministry: our server found no signature and
    // DMARC failing; the sender's own "dmarc=pass" header is below it.
    let forged = Mail::request("admin@vneid.gov.vn", BINH, "Trần Thị Bình", "0987654321")
        .header("Authentication-Results", FORGED);
    desk.deliver(&arriving(
        &received(
            "dkim=none; dmarc=fail (p=reject dis=none) header.from=vneid.gov.vn",
            "evil.example",
        ),
        &forged,
    ));
    let b = desk.settle(BINH, 1).await.remove(0);
    let binh_ref = b["request"]["reference"].as_str().unwrap().to_owned();
    assert_eq!(thread_verdicts(&b), ["red"], "{}", b["thread"]);
    let auth = &b["thread"][0]["auth"];
    assert_eq!(auth["dmarc"]["result"], "fail", "{auth}");
    assert_eq!(auth["ignored"], 1, "{auth}");
    assert!(
        auth["spf"].is_null(),
        "the forged spf=pass was read: {auth}"
    );
    assert!(warnings(&b).contains(&"sender_unauthenticated".to_owned()));
    // The warning never blocks: the request waits for the operator.
    assert_eq!(b["request"]["state"], "pending_review", "{}", b["request"]);

    // A follow-up on An's request (same address, same number) that fails.
    let followup = Mail::request("an@vnpt.vn", AN, "Nguyễn Văn An", "0912345678")
        .subject(&format!("Re: Yêu cầu hủy tài khoản {AN}"));
    desk.deliver(&arriving(
        &received(
            "dkim=fail (bad signature) header.d=vnpt.vn header.s=mail2024; \
             dmarc=fail (p=reject dis=none) header.from=vnpt.vn",
            "evil.example",
        ),
        &followup,
    ));
    let v = support::wait_for(
        "the follow-up on the thread",
        Duration::from_secs(30),
        || async {
            let v = desk.request(&an_ref);
            if v["thread"].as_array().unwrap().len() == 2 {
                Ok(v)
            } else {
                Err(v["thread"].to_string())
            }
        },
    )
    .await;
    assert_eq!(thread_verdicts(&v), ["green", "red"], "{}", v["thread"]);
    let w = warnings(&v);
    assert!(w.contains(&"followup_unauthenticated".to_owned()), "{w:?}");
    let d = desk.api("GET", "/dashboard", None).json();
    assert_eq!(d["sender_unauthenticated"], 2, "{d}");
    assert_eq!(d["followup_unauthenticated"], 1, "{d}");
    (an_ref, binh_ref)
}

#[tokio::test(flavor = "multi_thread")]
async fn the_same_on_postgres() {
    let pg = Postgres::start();
    let db = pg.fresh_database("sender_auth");
    three_mails(&trusting(
        TestDesk::embedded("sender-auth-pg").database(&db),
    ))
    .await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_forged_sender_shows_red_and_a_trusted_one_green_in_chromium() {
    let desk = trusting(TestDesk::embedded("sender-auth"));
    let (an_ref, binh_ref) = three_mails(&desk).await;

    let driver = ChromeDriver::start();
    let br = driver.browser().await;
    let base = format!("http://127.0.0.1:{}", desk.web);
    browser_login(&br, &base, "giamsat", OPERATOR_PASSWORD).await;

    br.goto(&format!("{base}/requests/{binh_ref}"))
        .await
        .unwrap();
    let badge = br
        .find(Locator::Css("article.mail details.sender-auth"))
        .await
        .unwrap();
    assert_eq!(
        badge.attr("data-auth").await.unwrap().as_deref(),
        Some("red")
    );
    let summary = badge.find(Locator::Css("summary")).await.unwrap();
    let said = summary.text().await.unwrap();
    assert!(said.contains("giả mạo"), "{said}");
    let colour = summary.css_value("color").await.unwrap();
    assert!(colour.contains("179, 20, 26"), "red: {colour}");
    summary.click().await.unwrap();
    let dmarc = badge
        .find(Locator::Css("tr.dmarc td"))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(dmarc.contains("fail") && !dmarc.contains("pass"), "{dmarc}");
    let ignored = badge
        .find(Locator::Css("tr.ignored td"))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(ignored.starts_with('1'), "{ignored}");
    let warn = br
        .find(Locator::Css("p#sender-unauthenticated"))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(warn.contains("giả mạo"), "{warn}");
    let png = br.screenshot().await.unwrap();
    std::fs::write(artifacts("sender_auth").join("forged.png"), png).unwrap();

    br.goto(&format!("{base}/requests/{an_ref}")).await.unwrap();
    let mut seen = Vec::new();
    for d in br
        .find_all(Locator::Css("article.mail details.sender-auth"))
        .await
        .unwrap()
    {
        seen.push(d.attr("data-auth").await.unwrap().unwrap_or_default());
    }
    seen.sort();
    assert_eq!(seen, ["green", "red"]);
    let green = br
        .find(Locator::Css(
            "details.sender-auth[data-auth='green'] summary",
        ))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(
        green.contains("Đã xác thực") && green.contains("vnpt.vn"),
        "{green}"
    );
    assert!(br
        .find(Locator::Css("p#followup-unauthenticated"))
        .await
        .is_ok());

    br.goto(&format!("{base}/dashboard")).await.unwrap();
    let count = |id: &'static str| {
        let br = &br;
        async move {
            br.find(Locator::Css(&format!("#{id} .n")))
                .await
                .unwrap()
                .text()
                .await
                .unwrap()
        }
    };
    assert_eq!(count("sender-unauthenticated").await, "2");
    assert_eq!(count("followup-unauthenticated").await, "1");
    br.close().await.ok();
}
