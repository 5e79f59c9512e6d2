//! A stranger's mail can neither take nor touch someone else's account
//! (issue 9), on the embedded default and on PostgreSQL: a forged card QR
//! brings another person's account only as a claim a supervisor must
//! confirm, and the holder is told at the account's own address; mail from
//! another address, a guessed reference, a copied Message-ID or the same
//! number never changes a citizen's request, it is kept there flagged and
//! opens a linked request; the honest follow-up still joins; letters greet
//! only names; one account has at most one open window. The request page
//! is checked in Chromium too: the red notice, the QR's weaker mark, the
//! flagged message.

mod support;

use fantoccini::Locator;
use serde_json::{json, Value};
use std::time::Duration;
use support::desk::{TestDesk, OPERATOR_PASSWORD};
use support::mail::Mail;
use support::{artifacts, browser_login, huytk_cli, ChromeDriver, Postgres};

const AN: &str = "079203001234";

/// Bình's old CMND account: the number the fixture card's QR names as its
/// "old CMND". No phone; an email of her own.
const BINH: &str = r#"
[[account]]
account_id = "DVC-BINH"
id_number = "025123456"
full_name = "Trần Thị Bình"
birth_date = "1990-02-03"
email = "binh@victim.test"
"#;

/// An's own CCCD account, with a phone and an email of its own.
const AN_ACCOUNT: &str = r#"
[[account]]
account_id = "DVC-AN"
id_number = "079203001234"
full_name = "Nguyễn Văn An"
birth_date = "2003-05-12"
phone = "+84912345678"
email = "an.old@portal.test"
"#;

fn account_state(desk: &TestDesk, number: &str, id: &str) -> Option<String> {
    huytk_cli(&desk.config, &["accounts", "find", number], "")
        .lines()
        .map(|l| serde_json::from_str::<Value>(l).unwrap())
        .find(|a| a["account_id"] == id)
        .map(|a| a["state"].as_str().unwrap().to_owned())
}

fn reference(v: &Value) -> String {
    v["request"]["reference"].as_str().unwrap().to_owned()
}

async fn forged_qr(desk: TestDesk) {
    // Eve asks for An's number with a card whose QR names Bình's CMND.
    desk.deliver(&Mail::request("eve@evil.test", AN, "Nguyễn Văn An", "0987654321").bytes());
    let v = desk.settle(AN, 1).await.remove(0);
    assert_eq!(v["request"]["state"], "pending_review", "{}", v["request"]);
    let eve_ref = reference(&v);
    // Bình's account is listed apart, as found only through the QR.
    let binh = v["accounts"]
        .as_array()
        .unwrap()
        .iter()
        .find(|a| a["account_id"] == "DVC-BINH")
        .unwrap_or_else(|| panic!("{}", v["accounts"]));
    assert_eq!(binh["found_only_through_qr"], true);
    assert_eq!(
        binh["risks"],
        json!(["found_only_through_qr", "no_phone_on_account"])
    );
    // The QR agrees with what Eve wrote: a weaker mark, never green.
    for f in v["fields"].as_array().unwrap() {
        assert_ne!(f["mark"], "green", "{f}");
    }
    let name = v["fields"]
        .as_array()
        .unwrap()
        .iter()
        .find(|f| f["key"] == "full_name")
        .unwrap();
    assert_eq!(name["mark"], "qr", "{name}");

    // One approval cannot lock Bình's account.
    let r = desk.approve(&eve_ref, "DVC-BINH");
    assert_eq!(r.status, 409, "{}", r.text());
    assert_eq!(r.json()["error"], "needs_supervisor");
    let v = desk.request(&eve_ref);
    assert_eq!(v["request"]["state"], "pending_review");
    assert_eq!(
        account_state(&desk, "025123456", "DVC-BINH").as_deref(),
        Some("active")
    );
    assert!(!desk.path().join("sms.jsonl").exists(), "no SMS went out");

    // A supervisor who decides to go ahead does so separately and on the
    // record; then Bình is told at her own address, not only Eve's phone.
    let confirm = format!("/requests/{eve_ref}/confirm-holder-risk");
    let r = desk.api_as(
        &desk.supervisor,
        "POST",
        &confirm,
        Some(json!({ "account": "DVC-BINH" })),
    );
    assert_eq!(r.status, 200, "{}", r.text());
    let r = desk.approve(&eve_ref, "DVC-BINH");
    assert_eq!(r.json()["state"], "grace_period", "{}", r.text());
    let notice = desk.letter("to Bình", |l| l.to == "binh@victim.test").await;
    assert!(notice.text.contains("18001096"), "{}", notice.text);
    assert!(notice.text.contains("DVC-BINH"), "{}", notice.text);
    assert!(
        !notice.subject.contains("[#"),
        "the holder gets no key to the requester's thread: {}",
        notice.subject
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_forged_card_qr_cannot_take_another_persons_account() {
    forged_qr(TestDesk::embedded("forged-qr").accounts(BINH).start()).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_forged_card_qr_cannot_take_another_persons_account_on_postgres() {
    let pg = Postgres::start();
    let db = pg.fresh_database("forged");
    forged_qr(
        TestDesk::embedded("forged-qr-pg")
            .database(&db)
            .accounts(BINH)
            .start(),
    )
    .await;
}

async fn strangers_and_followups(desk: TestDesk) {
    // An's request lacks its portrait: needs_info, and the letter says so.
    desk.deliver(
        &Mail::request("an@test", AN, "Nguyễn Văn An", "0912345678")
            .photos(2)
            .bytes(),
    );
    let an = desk.settle(AN, 1).await.remove(0);
    assert_eq!(an["request"]["state"], "needs_info");
    let an_ref = reference(&an);
    let ours = desk
        .letter("to An", |l| {
            l.to == "an@test" && l.subject.contains(&an_ref)
        })
        .await;
    let tag_at = ours
        .subject
        .find("[#")
        .expect("a thread tag in the subject");
    let tag = &ours.subject[tag_at..];

    // Eve tries every way in: a guessed reference in the subject and in a
    // References header, a copy of our real Message-ID and thread tag, and a
    // new request for An's number, each with the missing portrait and her
    // own phone.
    let eve = || Mail::request("eve@evil.test", AN, "Nguyễn Văn An", "0987654321");
    let guessed_id = format!("<{an_ref}.reply.0123456789@huytk.dichvucong.gov.vn>");
    desk.deliver(
        &eve()
            .subject(&format!("Re: [{an_ref}] bổ sung ảnh"))
            .header("References", &guessed_id)
            .bytes(),
    );
    desk.deliver(
        &eve()
            .subject(&format!("Re: {}", ours.subject))
            .header("In-Reply-To", &ours.message_id)
            .header("References", &ours.message_id)
            .bytes(),
    );
    desk.deliver(&eve().bytes());
    let all = desk.settle(AN, 4).await;
    let an = desk.request(&an_ref);
    assert_eq!(an["request"]["state"], "needs_info", "{}", an["request"]);
    assert_eq!(an["request"]["phone"], "+84912345678");
    assert_eq!(
        an["photos"].as_array().unwrap().len(),
        2,
        "{}",
        an["photos"]
    );
    assert_eq!(an["flagged_messages"], 3, "{}", an["thread"]);
    let opened: Vec<&Value> = an["linked"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|l| l["how"] == "opened")
        .collect();
    assert_eq!(opened.len(), 3, "{}", an["linked"]);
    for other in &all[1..] {
        assert_eq!(other["request"]["email"], "eve@evil.test");
        assert_eq!(other["request"]["linked_to"], an["request"]["id"]);
    }
    // Nothing more went to An.
    let to_an = desk
        .letters()
        .into_iter()
        .filter(|l| l.to == "an@test")
        .count();
    assert_eq!(to_an, 1);

    // An's own follow-up with the thread tag in the subject joins, with
    // the portrait that was missing.
    let mut followup = Mail::request("An@Test", AN, "Nguyễn Văn An", "0912345678")
        .subject(&format!("Re: bổ sung ảnh chân dung {tag}"));
    followup.files.drain(..2);
    desk.deliver(&followup.bytes());
    let v = support::wait_for(
        "the request back in review",
        Duration::from_secs(30),
        || async {
            let v = desk.request(&an_ref);
            if v["request"]["state"] == "pending_review" {
                Ok(v)
            } else {
                Err(v["request"].to_string())
            }
        },
    )
    .await;
    let history: Vec<&str> = v["history"]
        .as_array()
        .unwrap()
        .iter()
        .map(|h| h["action"].as_str().unwrap())
        .collect();
    assert!(history.contains(&"followup_token"), "{history:?}");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_strangers_mail_never_changes_another_citizens_request() {
    strangers_and_followups(TestDesk::embedded("strangers").start()).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_strangers_mail_never_changes_another_citizens_request_on_postgres() {
    let pg = Postgres::start();
    let db = pg.fresh_database("strangers");
    strangers_and_followups(TestDesk::embedded("strangers-pg").database(&db).start()).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn letters_greet_names_and_never_echo_a_strangers_sentence() {
    let desk = TestDesk::embedded("letters").start();
    let phish = "Tài khoản của bạn sẽ bị khóa, đăng nhập tại http://dvc-gov.example để giữ lại";
    desk.deliver(
        &Mail::request("x@test", AN, phish, "0912345678")
            .photos(1)
            .bytes(),
    );
    let v = desk.settle(AN, 1).await.remove(0);
    let letter = desk.letter("the reply", |l| l.to == "x@test").await;
    assert!(
        letter.text.contains("Kính gửi Quý công dân,"),
        "{}",
        letter.text
    );
    assert!(!letter.text.contains("dvc-gov"), "{}", letter.text);
    assert!(!letter.text.contains("http"), "{}", letter.text);
    // The operator still sees what was written, as written.
    assert!(
        v["request"]["full_name"]
            .as_str()
            .unwrap()
            .starts_with("Tài khoản của bạn sẽ bị khóa"),
        "{}",
        v["request"]
    );
    // A plain name is greeted.
    desk.deliver(
        &Mail::request("y@test", "040089012345", "Lê Hoàng Long", "0912345678")
            .photos(1)
            .bytes(),
    );
    desk.settle("040089012345", 1).await;
    let letter = desk.letter("Long's reply", |l| l.to == "y@test").await;
    assert!(
        letter.text.contains("Kính gửi Lê Hoàng Long,"),
        "{}",
        letter.text
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn one_account_has_at_most_one_open_window() {
    let desk = TestDesk::embedded("one-window")
        .accounts(AN_ACCOUNT)
        .start();
    desk.deliver(&Mail::request("an@test", AN, "Nguyễn Văn An", "0912345678").bytes());
    desk.settle(AN, 1).await;
    desk.deliver(&Mail::request("an2@test", AN, "Nguyễn Văn An", "0912345678").bytes());
    let both = desk.settle(AN, 2).await;
    let (first, second) = (reference(&both[0]), reference(&both[1]));
    assert_eq!(both[1]["request"]["state"], "pending_review");
    let r = desk.approve(&first, "DVC-AN");
    assert_eq!(r.json()["state"], "grace_period", "{}", r.text());
    let r = desk.approve(&second, "DVC-AN");
    assert_eq!(r.status, 409, "{}", r.text());
    assert_eq!(r.json()["error"], "account_in_window", "{}", r.text());
    // The account's own address hears of it; the SMS goes to its phone.
    desk.letter("the holder's notice", |l| l.to == "an.old@portal.test")
        .await;
    support::wait_until("the holder's SMS", 20, || async {
        desk.path().join("sms.jsonl").exists()
    })
    .await;
    let sms = std::fs::read_to_string(desk.path().join("sms.jsonl")).unwrap();
    assert!(sms.contains("+84912345678"), "{sms}");
}

#[tokio::test(flavor = "multi_thread")]
async fn the_request_page_shows_the_risk_the_qr_mark_and_the_flagged_mail_in_chromium() {
    let desk = TestDesk::embedded("strangers-page").accounts(BINH).start();
    desk.deliver(&Mail::request("an@test", AN, "Nguyễn Văn An", "0912345678").bytes());
    let v = desk.settle(AN, 1).await.remove(0);
    let an_ref = reference(&v);
    desk.deliver(
        &Mail::request("eve@evil.test", AN, "Eve", "0987654321")
            .subject(&format!("Re: [{an_ref}]"))
            .bytes(),
    );
    desk.settle(AN, 2).await;

    let driver = ChromeDriver::start();
    let b = driver.browser().await;
    let base = format!("http://127.0.0.1:{}", desk.web);
    browser_login(&b, &base, "giamsat", OPERATOR_PASSWORD).await;
    b.goto(&format!("{base}/requests/{an_ref}")).await.unwrap();
    let risk = b
        .find(Locator::Css("[data-risk-for='DVC-BINH']"))
        .await
        .unwrap();
    let text = risk.text().await.unwrap();
    assert!(text.contains("Không thể báo cho chủ tài khoản"), "{text}");
    let colour = risk.css_value("color").await.unwrap();
    assert!(colour.contains("179, 20, 26"), "red: {colour}");
    let title = b
        .find(Locator::Css("#qr-accounts-title"))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(title.contains("mã QR"), "{title}");
    let mark = b
        .find(Locator::Css("tr[data-field='full_name']"))
        .await
        .unwrap()
        .attr("data-mark")
        .await
        .unwrap();
    assert_eq!(mark.as_deref(), Some("qr"));
    let flagged = b
        .find(Locator::Css(
            "article.mail[data-flag='another_sender'] .flag-note",
        ))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(flagged.contains("địa chỉ khác"), "{flagged}");
    assert!(b
        .find(Locator::Css(
            "button.confirm-holder-risk[data-account='DVC-BINH']"
        ))
        .await
        .is_ok());
    let png = b.screenshot().await.unwrap();
    std::fs::write(artifacts("strangers").join("request-risk.png"), png).unwrap();
    b.close().await.ok();
}
