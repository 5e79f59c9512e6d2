//! The headers as the big providers write them, hand-written in
//! tests/corpus-auth/ (never the desk's own output).

use super::*;

fn corpus(name: &str) -> Vec<u8> {
    let path = format!("{}/tests/corpus-auth/{name}", env!("CARGO_MANIFEST_DIR"));
    std::fs::read(&path).unwrap_or_else(|e| panic!("{path}: {e}"))
}

fn trusting(ids: &[&str]) -> TrustedServers {
    TrustedServers::new(ids, false).unwrap()
}

fn read_as(name: &str, from: &str, ids: &[&str], unnamed: bool) -> SenderAuth {
    read(
        &corpus(name),
        Some(from),
        &TrustedServers::new(ids, unnamed).unwrap(),
    )
}

#[test]
fn gmail_is_read_as_gmail_wrote_it() {
    let a = read_as(
        "gmail-pass.eml",
        "nguyenvanan.test@gmail.com",
        &["mx.google.com"],
        false,
    );
    assert_eq!(a.verdict, AuthVerdict::Green, "{a:?}");
    assert_eq!(a.authserv_ids, ["mx.google.com"]);
    assert_eq!(
        a.dkim,
        [DkimCheck {
            result: Outcome::Pass,
            domain: Some("gmail.com".into()),
            selector: Some("20230601".into()),
            aligned: true,
        }]
    );
    let spf = a.spf.unwrap();
    assert_eq!(
        (spf.result, spf.domain.as_deref(), spf.aligned),
        (Outcome::Pass, Some("gmail.com"), true)
    );
    let d = a.dmarc.unwrap();
    assert_eq!(d.result, Outcome::Pass);
    assert_eq!(d.policy, Some(DmarcPolicy::None));
    assert_eq!(d.header_from.as_deref(), Some("gmail.com"));
    assert!(d.aligned);
    assert_eq!(a.ignored, 0);
}

#[test]
fn microsoft_365_writes_no_authserv_id() {
    let from = "binh@congty.com.vn";
    let a = read_as("m365-pass.eml", from, &[], true);
    assert_eq!(a.verdict, AuthVerdict::Green, "{a:?}");
    assert_eq!(a.authserv_ids, [""]);
    assert_eq!(a.dkim[0].domain.as_deref(), Some("congty.com.vn"));
    assert!(a.dkim[0].aligned);
    assert_eq!(
        a.spf.as_ref().unwrap().domain.as_deref(),
        Some("congty.com.vn")
    );
    let d = a.dmarc.unwrap();
    assert_eq!((d.result, d.policy), (Outcome::Pass, None));
    // Not trusted unless configured so.
    let a = read_as("m365-pass.eml", from, &["mx.google.com"], false);
    assert_eq!(a.verdict, AuthVerdict::Yellow);
    assert!(a.dmarc.is_none() && a.dkim.is_empty());
    assert_eq!(a.ignored, 1);
}

#[test]
fn yahoo_policy_in_a_comment_stuck_to_the_result() {
    let a = read_as(
        "yahoo-pass.eml",
        "lethicuc.test@hotmail.com",
        &["atlas313.free.mail.ne1.yahoo.com"],
        false,
    );
    assert_eq!(a.verdict, AuthVerdict::Green, "{a:?}");
    assert_eq!(a.dkim[0].domain.as_deref(), Some("hotmail.com"));
    assert_eq!(a.dkim[0].selector.as_deref(), Some("selector1"));
    assert_eq!(a.dmarc.unwrap().policy, Some(DmarcPolicy::None));
}

#[test]
fn postfix_with_opendkim_and_opendmarc_headers() {
    let a = read_as(
        "postfix-opendkim-pass.eml",
        "dung@vnpt.vn",
        &["MX.dichvucong.gov.vn"],
        false,
    );
    assert_eq!(a.verdict, AuthVerdict::Green, "{a:?}");
    assert_eq!(a.dkim.len(), 1, "dkim-atps is not dkim: {:?}", a.dkim);
    assert_eq!(a.dkim[0].domain.as_deref(), Some("vnpt.vn"));
    assert_eq!(a.dkim[0].selector.as_deref(), Some("mail2024"));
    assert_eq!(a.dmarc.unwrap().policy, Some(DmarcPolicy::Reject));
    assert!(a.spf.is_none());
}

#[test]
fn a_forgery_below_the_receivers_headers_is_ignored() {
    let a = read_as(
        "postfix-forged.eml",
        "admin@vneid.gov.vn",
        &["mx.dichvucong.gov.vn"],
        false,
    );
    assert_eq!(a.verdict, AuthVerdict::Red, "{a:?}");
    assert_eq!(a.dkim[0].result, Outcome::None);
    assert_eq!(a.dmarc.unwrap().result, Outcome::Fail);
    assert!(a.spf.is_none(), "the forged spf=pass was read");
    assert_eq!(a.ignored, 1);

    let a = read_as(
        "gmail-spoofed-below.eml",
        "ceo@chinhphu.vn",
        &["mx.google.com"],
        false,
    );
    assert_eq!(a.verdict, AuthVerdict::Red, "{a:?}");
    assert!(a.dkim.is_empty(), "the forged dkim=pass was read");
    assert_eq!(a.spf.unwrap().result, Outcome::Fail);
    let d = a.dmarc.unwrap();
    assert_eq!(
        (d.result, d.policy),
        (Outcome::Fail, Some(DmarcPolicy::Reject))
    );
    assert_eq!(a.ignored, 1);
}

#[test]
fn an_untrusted_authserv_id_is_ignored() {
    let a = read_as(
        "untrusted-id.eml",
        "hoangvanem.test@gmail.com",
        &["mx.dichvucong.gov.vn"],
        false,
    );
    assert_eq!(a.verdict, AuthVerdict::Yellow);
    assert!(a.authserv_ids.is_empty() && a.dkim.is_empty() && a.dmarc.is_none());
    assert_eq!(a.ignored, 1);
    // The same headers, trusted, pass: they were ignored for their id alone.
    let a = read_as(
        "untrusted-id.eml",
        "hoangvanem.test@gmail.com",
        &["relay.example.net"],
        false,
    );
    assert_eq!(a.verdict, AuthVerdict::Green);
}

#[test]
fn the_big_providers_are_ignored_when_not_trusted() {
    for (file, from) in [
        ("gmail-pass.eml", "nguyenvanan.test@gmail.com"),
        ("yahoo-pass.eml", "lethicuc.test@hotmail.com"),
        ("postfix-opendkim-pass.eml", "dung@vnpt.vn"),
    ] {
        let a = read(&corpus(file), Some(from), &trusting(&["mx.example.org"]));
        assert_eq!(a.verdict, AuthVerdict::Yellow, "{file}");
        assert!(a.dmarc.is_none() && a.dkim.is_empty(), "{file}: {a:?}");
        assert!(a.ignored >= 1, "{file}");
    }
}

fn one(value: &str, from: &str) -> SenderAuth {
    let raw = format!("Authentication-Results: {value}\r\nFrom: {from}\r\n\r\nx\r\n");
    read(raw.as_bytes(), Some(from), &trusting(&["mx.test"]))
}

#[test]
fn the_verdict_rule() {
    let v = |value: &str, from: &str| one(value, from).verdict;
    use AuthVerdict::*;
    // DMARC pass for the From domain.
    assert_eq!(v("mx.test; dmarc=pass header.from=a.vn", "x@a.vn"), Green);
    // DMARC pass, but for another domain than the From.
    assert_eq!(v("mx.test; dmarc=pass header.from=b.vn", "x@a.vn"), Yellow);
    assert_eq!(v("mx.test; dmarc=fail header.from=a.vn", "x@a.vn"), Red);
    // A policy and no aligned pass: a DKIM pass for another domain.
    assert_eq!(
        v(
            "mx.test; dkim=pass header.d=other.com; dmarc=none (p=quarantine) header.from=a.vn",
            "x@a.vn"
        ),
        Red
    );
    assert_eq!(v("mx.test; dmarc=none header.from=a.vn", "x@a.vn"), Yellow);
    assert_eq!(
        v("mx.test; spf=neutral smtp.mailfrom=a.vn", "x@a.vn"),
        Yellow
    );
    // A DNS outage is a temperror, shown as such, never red.
    let t = one(
        "mx.test; dmarc=temperror (p=reject) header.from=a.vn",
        "x@a.vn",
    );
    assert_eq!(t.verdict, Yellow);
    assert_eq!(t.dmarc.unwrap().result, Outcome::TempError);
    assert_eq!(v("mx.test; none", "x@a.vn"), Yellow);
    // Relaxed alignment: a subdomain's signature aligns.
    let s = one(
        "mx.test; dkim=pass header.d=mail.bo.gov.vn; dmarc=pass header.from=bo.gov.vn",
        "x@bo.gov.vn",
    );
    assert!(s.dkim[0].aligned);
    assert_eq!(s.verdict, Green);
}

#[test]
fn organisational_domains() {
    assert_eq!(organisational_domain("mail.bo.gov.vn"), "bo.gov.vn");
    assert_eq!(organisational_domain("congty.com.vn"), "congty.com.vn");
    assert_eq!(organisational_domain("a.b.gmail.com"), "gmail.com");
    assert_eq!(organisational_domain("vnpt.vn"), "vnpt.vn");
    assert_ne!(
        organisational_domain("evil.com.vn"),
        organisational_domain("good.com.vn")
    );
    // The Public Suffix List, not a guess: a suffix of three labels, a
    // shared-hosting suffix, a name that is itself a suffix, a test TLD.
    assert_eq!(organisational_domain("x.hcm.edu.vn"), "hcm.edu.vn");
    assert_eq!(organisational_domain("Mail.Uni.ac.jp."), "uni.ac.jp");
    assert_eq!(
        organisational_domain("victim.github.io"),
        "victim.github.io"
    );
    assert_ne!(
        organisational_domain("evil.github.io"),
        organisational_domain("victim.github.io")
    );
    assert_eq!(organisational_domain("com.vn"), "com.vn");
    assert_eq!(organisational_domain("a.b.citizen.test"), "citizen.test");
}

#[test]
fn header_syntax() {
    let h = parse_header(
        "mx.test 1; dkim=pass reason=\"good sig\" (a (nested) comment) header.d=a.vn; spf=hardfail smtp.mailfrom=\"x@a.vn\"; auth=pass smtp.auth=bob; foo=bar",
    )
    .unwrap();
    assert_eq!(h.authserv_id, AuthservId::Named("mx.test".into()));
    assert_eq!(h.results.len(), 3, "{h:?}");
    assert_eq!(h.results[0].reason.as_deref(), Some("good sig"));
    assert_eq!(h.results[0].comments, ["a (nested) comment"]);
    assert_eq!(h.results[1].result, Outcome::Fail);
    assert_eq!(h.results[1].property("smtp.mailfrom"), Some("x@a.vn"));
    assert!(parse_header("").is_none());
    assert!(parse_header("(only a comment)").is_none());
}

#[test]
fn warnings_of_a_request_whose_mail_fails() {
    use crate::intake::{assess, try_examine_trusting, InspectOptions, Warning};
    let trusted = trusting(&["mx.google.com", "mx.dichvucong.gov.vn"]);
    let e = |name: &str| try_examine_trusting(&corpus(name), Some(&trusted)).unwrap();
    let o = InspectOptions { current_year: 2026 };
    let (pass, forged) = (e("gmail-pass.eml"), e("postfix-forged.eml"));
    let w = |ms: &[&crate::intake::Examined]| assess(ms, &o).warnings;
    assert!(!w(&[&pass]).contains(&Warning::SenderUnauthenticated));
    assert!(w(&[&forged]).contains(&Warning::SenderUnauthenticated));
    let both = w(&[&pass, &forged]);
    assert!(both.contains(&Warning::SenderUnauthenticated), "{both:?}");
    assert!(both.contains(&Warning::FollowupUnauthenticated), "{both:?}");
    // The first failing, a follow-up passing: no follow-up flag.
    let reversed = w(&[&forged, &pass]);
    assert!(!reversed.contains(&Warning::FollowupUnauthenticated));
    // Not configured: no auth, no warning.
    let plain = crate::intake::try_examine(&corpus("postfix-forged.eml")).unwrap();
    assert!(plain.auth.is_none());
    assert!(!w(&[&plain]).contains(&Warning::SenderUnauthenticated));
}

#[test]
fn old_mac_line_endings_are_read_too() {
    let raw = b"Authentication-Results: mx.test; dmarc=pass header.from=a.vn\rFrom: x@a.vn\rSubject: hi\r\rx\r";
    let e = crate::intake::try_examine_trusting(raw, Some(&trusting(&["mx.test"]))).unwrap();
    assert_eq!(e.auth.unwrap().verdict, AuthVerdict::Green);
}
