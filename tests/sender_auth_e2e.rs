//! Who sent a mail (issue 13), end to end on real parts started here: an
//! authoritative NSD on loopback serving the citizen's domain (its DKIM
//! key, SPF `ip4:127.0.0.2 -all`, DMARC `p=reject`); the citizen's
//! sending Postfix with OpenDKIM signing as that domain, connecting from
//! 127.0.0.2; the desk's receiving Postfix (`mx.desk.test`) with OpenDKIM
//! and OpenDMARC verifying, delivering into Dovecot; the desk reading
//! Dovecot over IMAP. A signed mail shows green in Chromium; a forged copy
//! (same From, unsigned, sent from 127.0.0.3 with its own
//! `Authentication-Results: mx.desk.test; … dmarc=pass` as its first
//! header) shows red with `sender_unauthenticated`: both with the
//! receiving server's trusted headers and with huytk's own check against
//! the NSD. And a DNS outage: `temperror`, the request created at once.

mod support;

use std::net::Ipv4Addr;
use std::time::{Duration, Instant};

use fantoccini::Locator;
use serde_json::Value;
use support::desk::{TestDesk, OPERATOR_PASSWORD};
use support::dns::{smtp_send, DkimKey, Milter, Nsd};
use support::mail::Mail;
use support::{
    artifacts, browser_login, wait_for, ChromeDriver, Dovecot, Postfix, PostfixOptions, TempDir,
};

const CITIZEN: &str = "citizen.test";
const MX: &str = "mx.desk.test";
const AN: &str = "079203001234";
const BINH: &str = "079203001235";
const CUONG: &str = "079203001236";
/// Where the citizen's own server connects from (its SPF record's address).
const SENDER_IP: Ipv4Addr = Ipv4Addr::new(127, 0, 0, 2);
/// The forger's own domain: its envelope sender.
const EVIL: &str = "evil.test";
/// Where the forger connects from.
const FORGER_IP: Ipv4Addr = Ipv4Addr::new(127, 0, 0, 3);

/// The whole chain, stopped when dropped.
struct Chain {
    nsd: Nsd,
    dovecot: Dovecot,
    dkim: Milter,
    dmarc: Milter,
    signer: Milter,
    receiving: Postfix,
    sending: Postfix,
    resigner: Milter,
    forger: Postfix,
    _keys: TempDir,
}

impl Chain {
    fn start() -> Chain {
        let keys = TempDir::new("dkim-keys");
        let key = DkimKey::generate(keys.path(), CITIZEN, "s1");
        let evil_dir = keys.path().join("evil");
        std::fs::create_dir_all(&evil_dir).unwrap();
        let evil_key = DkimKey::generate(&evil_dir, EVIL, "e1");
        let nsd = Nsd::start(&[
            (
                CITIZEN,
                format!(
                    "@ IN TXT \"v=spf1 ip4:{SENDER_IP} -all\"\n\
                     _dmarc IN TXT \"v=DMARC1; p=reject; adkim=r; aspf=r\"\n{}",
                    key.record
                ),
            ),
            // The forger's own domain, whose SPF its address passes.
            (
                EVIL,
                format!(
                    "@ IN TXT \"v=spf1 ip4:{FORGER_IP} -all\"\n{}",
                    evil_key.record
                ),
            ),
        ]);
        let dovecot = Dovecot::start(&["desk@test"]);
        let dkim = Milter::opendkim_verifier(nsd.ip, MX);
        let dmarc = Milter::opendmarc(nsd.ip, MX);
        let receiving = Postfix::start_with(
            dovecot.lmtp_port,
            &PostfixOptions {
                hostname: Some(MX.into()),
                milters: vec![dkim.port, dmarc.port],
                ..PostfixOptions::default()
            },
        );
        let signer = Milter::opendkim_signer(nsd.ip, CITIZEN, &key);
        let sending = Postfix::start_with(
            0,
            &PostfixOptions {
                hostname: Some(format!("mail.{CITIZEN}")),
                relay_to: Some(receiving.port),
                bind_address: Some(SENDER_IP.to_string()),
                milters: vec![signer.port],
            },
        );
        // The forger's server: re-signs whatever it sends as its own
        // domain, from the forger's address.
        let resigner = Milter::opendkim_signer_of_any(nsd.ip, EVIL, &evil_key);
        let forger = Postfix::start_with(
            0,
            &PostfixOptions {
                hostname: Some(format!("mail.{EVIL}")),
                relay_to: Some(receiving.port),
                bind_address: Some(FORGER_IP.to_string()),
                milters: vec![resigner.port],
            },
        );
        Chain {
            resigner,
            forger,
            nsd,
            dovecot,
            dkim,
            dmarc,
            signer,
            receiving,
            sending,
            _keys: keys,
        }
    }

    /// Everything the parts logged, for a failure message.
    fn logs(&self) -> String {
        format!(
            "--- sending postfix\n{}\n--- receiving postfix\n{}\n--- signer\n{}\n--- opendkim\n{}\n\
             --- opendmarc\n{}\n--- nsd\n{}\n--- dovecot\n{}\n--- forger's postfix\n{}\n\
             --- forger's signer\n{}",
            self.sending.log(),
            self.receiving.log(),
            self.signer.log(),
            self.dkim.log(),
            self.dmarc.log(),
            self.nsd.log(),
            self.dovecot.log(),
            self.forger.log(),
            self.resigner.log()
        )
    }

    /// A desk reading Dovecot, with this `[sender_auth]`.
    fn desk(&self, tag: &str, sender_auth: &str) -> TestDesk {
        TestDesk::embedded(tag)
            .mailbox(&format!(
                "kind = \"imap\"\nhost = \"127.0.0.1\"\nport = {}\nsecurity = \"plain\"\n\
                 username = \"desk@test\"\npassword = \"{}\"\npoll_seconds = 1\n",
                self.dovecot.imap_port,
                support::PASSWORD
            ))
            .config(&format!("\n[sender_auth]\n{sender_auth}"))
            .start()
    }
}

fn warnings(v: &Value) -> Vec<String> {
    v["request"]["warnings"]
        .as_array()
        .unwrap()
        .iter()
        .map(|w| w.as_str().unwrap().to_owned())
        .collect()
}

/// The sender's forgery, written as its very first header.
fn spoofed_results() -> String {
    format!(
        "Authentication-Results: {MX}; dkim=pass header.d={CITIZEN} header.s=s1; \
         spf=pass smtp.mailfrom=an@{CITIZEN}; dmarc=pass (p=reject) header.from={CITIZEN}\r\n"
    )
}

/// Sends An's signed request through her provider and a forged copy
/// straight from the forger; checks both through the API and in Chromium.
/// `authserv_id` is whose results the desk shows.
async fn signed_green_forged_red(chain: &Chain, desk: &TestDesk, authserv_id: &str, shots: &str) {
    let an = Mail::request(&format!("an@{CITIZEN}"), AN, "Nguyễn Văn An", "0912345678");
    smtp_send(
        Ipv4Addr::LOCALHOST,
        chain.sending.port,
        "laptop.citizen.test",
        &format!("an@{CITIZEN}"),
        "desk@test",
        &an.bytes(),
    )
    .await;
    let v = settle(desk, chain, AN).await;
    let an_ref = v["request"]["reference"].as_str().unwrap().to_owned();
    let auth = &v["thread"][0]["auth"];
    assert_eq!(auth["verdict"], "green", "{auth}\n{}", chain.logs());
    assert_eq!(
        auth["authserv_ids"],
        serde_json::json!([authserv_id]),
        "{auth}"
    );
    assert_eq!(auth["dmarc"]["result"], "pass", "{auth}");
    assert_eq!(auth["dmarc"]["policy"], "reject", "{auth}");
    assert_eq!(auth["spf"]["result"], "pass", "{auth}");
    let dkim = &auth["dkim"][0];
    assert_eq!(dkim["result"], "pass", "{auth}");
    assert_eq!(dkim["domain"], CITIZEN, "{auth}");
    assert_eq!(dkim["selector"], "s1", "{auth}");
    assert_eq!(dkim["aligned"], true, "{auth}");
    assert!(!warnings(&v).contains(&"sender_unauthenticated".to_owned()));

    // The forger: same From, no signature, another address, and its own
    // "dmarc=pass" in the name of the desk's receiving server on top. Its
    // envelope sender is its own domain, whose SPF it passes, as a real
    // forger's does (OpenDMARC's own SPF check passes any loopback
    // client, seen here as spf=pass for 127.0.0.3 against `-all`, so an
    // envelope in the citizen's domain would not show SPF failing).
    let forged = Mail::request(
        &format!("an@{CITIZEN}"),
        BINH,
        "Trần Thị Bình",
        "0987654321",
    );
    let raw = [spoofed_results().as_bytes(), &forged.bytes()].concat();
    smtp_send(
        FORGER_IP,
        chain.receiving.port,
        &format!("mail.{EVIL}"),
        &format!("forger@{EVIL}"),
        "desk@test",
        &raw,
    )
    .await;
    let b = settle(desk, chain, BINH).await;
    let binh_ref = b["request"]["reference"].as_str().unwrap().to_owned();
    let auth = &b["thread"][0]["auth"];
    assert_eq!(auth["verdict"], "red", "{auth}\n{}", chain.logs());
    assert_eq!(
        auth["authserv_ids"],
        serde_json::json!([authserv_id]),
        "{auth}"
    );
    assert_eq!(auth["dmarc"]["result"], "fail", "{auth}");
    // SPF passes for the forger's domain: not the From's, so no DMARC.
    assert_eq!(auth["spf"]["domain"], EVIL, "{auth}");
    assert_eq!(auth["spf"]["aligned"], false, "{auth}");
    assert!(
        auth["dkim"]
            .as_array()
            .unwrap()
            .iter()
            .all(|d| d["result"] != "pass"),
        "the forged dkim=pass was read: {auth}"
    );
    assert!(warnings(&b).contains(&"sender_unauthenticated".to_owned()));
    // Never blocking: the operator decides.
    assert_eq!(b["request"]["state"], "pending_review", "{}", b["request"]);

    // Another copy re-signed by the forger's own domain and sent by its
    // server: a valid signature, of the wrong domain.
    let resigned = Mail::request(
        &format!("an@{CITIZEN}"),
        CUONG,
        "Lê Văn Cường",
        "0909123456",
    );
    smtp_send(
        Ipv4Addr::LOCALHOST,
        chain.forger.port,
        "laptop.evil.test",
        &format!("forger@{EVIL}"),
        "desk@test",
        &resigned.bytes(),
    )
    .await;
    let c = settle(desk, chain, CUONG).await;
    let cuong_ref = c["request"]["reference"].as_str().unwrap().to_owned();
    let auth = &c["thread"][0]["auth"];
    assert_eq!(auth["verdict"], "red", "{auth}\n{}", chain.logs());
    assert_eq!(auth["dmarc"]["result"], "fail", "{auth}");
    let dkim = &auth["dkim"][0];
    assert_eq!(dkim["result"], "pass", "{auth}");
    assert_eq!(dkim["domain"], EVIL, "{auth}");
    assert_eq!(dkim["aligned"], false, "{auth}");
    assert!(warnings(&c).contains(&"sender_unauthenticated".to_owned()));

    let driver = ChromeDriver::start();
    let br = driver.browser().await;
    let base = format!("http://127.0.0.1:{}", desk.web);
    browser_login(&br, &base, "giamsat", OPERATOR_PASSWORD).await;
    for (reference, colour, rgb, shot) in [
        (&an_ref, "green", None, "signed.png"),
        (&binh_ref, "red", Some("179, 20, 26"), "forged.png"),
        (&cuong_ref, "red", Some("179, 20, 26"), "resigned.png"),
    ] {
        br.goto(&format!("{base}/requests/{reference}"))
            .await
            .unwrap();
        let badge = br
            .find(Locator::Css("article.mail details.sender-auth"))
            .await
            .unwrap();
        assert_eq!(
            badge.attr("data-auth").await.unwrap().as_deref(),
            Some(colour)
        );
        let summary = badge.find(Locator::Css("summary")).await.unwrap();
        if let Some(rgb) = rgb {
            let c = summary.css_value("color").await.unwrap();
            assert!(c.contains(rgb), "{colour}: {c}");
        }
        summary.click().await.unwrap();
        let id = badge
            .find(Locator::Css("table.auth-details tr td code"))
            .await
            .unwrap()
            .text()
            .await
            .unwrap();
        assert_eq!(id, authserv_id);
        br.execute(
            "arguments[0].scrollIntoView()",
            vec![serde_json::to_value(&badge).unwrap()],
        )
        .await
        .unwrap();
        let png = br.screenshot().await.unwrap();
        std::fs::write(artifacts(shots).join(shot), png).unwrap();
    }
    assert!(br
        .find(Locator::Css("p#sender-unauthenticated"))
        .await
        .is_ok());
    br.close().await.ok();
}

/// The one request for `number` once every mail is read.
async fn settle(desk: &TestDesk, chain: &Chain, number: &str) -> Value {
    let what = format!("the request for {number}, its sender checked");
    wait_for(&what, Duration::from_secs(90), || async {
        match desk.requests_for(number).into_iter().next() {
            Some(v) if !v["thread"][0]["auth"].is_null() => Ok(v),
            _ => Err(format!("{}\n--- desk\n{}", chain.logs(), desk.log())),
        }
    })
    .await
}

#[tokio::test(flavor = "multi_thread")]
async fn trusted_headers_of_the_receiving_server() {
    let chain = Chain::start();
    let desk = chain.desk(
        "sender-auth-e2e-headers",
        &format!("check = \"headers\"\ntrusted_authserv_ids = [\"{MX}\"]\n"),
    );
    signed_green_forged_red(&chain, &desk, MX, "sender_auth_e2e_headers").await;
}

#[tokio::test(flavor = "multi_thread")]
async fn huytk_checks_itself_with_the_resolver() {
    let chain = Chain::start();
    let desk = chain.desk(
        "sender-auth-e2e-resolver",
        &format!(
            "check = \"resolver\"\nresolver = \"{}:53\"\nresolver_timeout_ms = 1000\n\
             trusted_received_by = [\"{MX}\"]\n",
            chain.nsd.ip
        ),
    );
    signed_green_forged_red(&chain, &desk, "huytk", "sender_auth_e2e_resolver").await;
}

/// The resolver is a UDP port that never answers: every lookup times out.
/// Each query may wait 2 × 2 s, so only the 1.5 s cap on the whole check
/// keeps the mail from waiting for several of them.
#[tokio::test(flavor = "multi_thread")]
async fn a_dns_outage_is_temperror_and_delays_nothing() {
    let dead = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
    let dead_addr = dead.local_addr().unwrap();
    let desk = TestDesk::embedded("sender-auth-e2e-outage")
        .config(&format!(
            "\n[sender_auth]\ncheck = \"resolver\"\nresolver = \"{dead_addr}\"\n\
             resolver_timeout_ms = 2000\nresolver_attempts = 2\ncheck_timeout_ms = 1500\n\
             trusted_received_by = [\"{MX}\"]\n"
        ))
        .start();
    let mail = Mail::request(&format!("an@{CITIZEN}"), AN, "Nguyễn Văn An", "0912345678");
    let trace = format!(
        "Return-Path: <an@{CITIZEN}>\r\nReceived: from mail.{CITIZEN} (unknown [{SENDER_IP}])\r\n\
         \tby {MX} (Postfix) with ESMTP id 4Y1Zk\r\n\tfor <desk@test>; Tue,  1 Dec 2026 17:11:08 +0700\r\n"
    );
    let raw = [trace.as_bytes(), &mail.bytes()].concat();
    let start = Instant::now();
    desk.deliver(&raw);
    let v = wait_for("the request, DNS down", Duration::from_secs(20), || async {
        desk.requests_for(AN)
            .into_iter()
            .next()
            .ok_or_else(|| desk.log())
    })
    .await;
    let took = start.elapsed();
    eprintln!("request created {took:?} after delivery, DNS down");
    // The spool is polled each second; the check is capped at 1.5 s (without
    // the cap: two lookups of up to 4 s each).
    assert!(took < Duration::from_secs(6), "{took:?}");
    let auth = &v["thread"][0]["auth"];
    // Stored and shown as serde writes the outcome: `temp_error`.
    assert_eq!(auth["dmarc"]["result"], "temp_error", "{auth}");
    assert_eq!(auth["verdict"], "yellow", "{auth}");
    assert!(!warnings(&v).contains(&"sender_unauthenticated".to_owned()));
    assert_eq!(v["request"]["state"], "pending_review", "{}", v["request"]);
    // Shown as a DNS error, not as a forgery.
    let driver = ChromeDriver::start();
    let br = driver.browser().await;
    let base = format!("http://127.0.0.1:{}", desk.web);
    browser_login(&br, &base, "giamsat", OPERATOR_PASSWORD).await;
    let reference = v["request"]["reference"].as_str().unwrap();
    br.goto(&format!("{base}/requests/{reference}"))
        .await
        .unwrap();
    let badge = br
        .find(Locator::Css("article.mail details.sender-auth"))
        .await
        .unwrap();
    assert_eq!(
        badge.attr("data-auth").await.unwrap().as_deref(),
        Some("yellow")
    );
    let said = badge
        .find(Locator::Css("summary"))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(said.contains("lỗi DNS tạm thời"), "{said}");
    br.close().await.ok();

    // `huytk inspect --resolver` on the same mail: the same, as quickly.
    let file = desk.path().join("outage.eml");
    std::fs::write(&file, &raw).unwrap();
    let start = Instant::now();
    let out = support::huytk_cli(
        &desk.config,
        &[
            "inspect",
            "--json",
            "--resolver",
            &dead_addr.to_string(),
            "--trusted-received-by",
            MX,
            file.to_str().unwrap(),
        ],
        "",
    );
    let took = start.elapsed();
    let report: Value = serde_json::from_str(out.trim()).unwrap();
    assert_eq!(report["auth"]["dmarc"]["result"], "temp_error", "{report}");
    assert!(took < Duration::from_secs(5), "{took:?}");
    drop(dead);
}
