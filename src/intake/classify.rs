//! What kind of mail this is. Bounces first (many MTAs also mark them
//! `Auto-Submitted`), then auto-replies (RFC 3834 and the common
//! non-standard headers), then requests; the rest is `other`.

use serde::Serialize;

use super::mime::HeaderFacts;
use crate::domain::text::fold;

/// The kind of a message.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Kind {
    /// A citizen asking for an account to be deleted.
    DeletionRequest,
    /// Out-of-office and other automatic answers: never answered.
    AutoReply,
    /// A delivery failure report: never answered.
    Bounce,
    /// Anything else: kept for people.
    Other,
}

impl Kind {
    /// The snake_case name used in reports and the database.
    pub fn as_str(self) -> &'static str {
        match self {
            Kind::DeletionRequest => "deletion_request",
            Kind::AutoReply => "auto_reply",
            Kind::Bounce => "bounce",
            Kind::Other => "other",
        }
    }
}

/// An address's local part, lower case, without a `+tag` and without the
/// `-`, `_` and `.` that mail systems spell their names with
/// (`MAILER-DAEMON`, `post_master`, `mailer.daemon`).
fn squeezed_local(address: &str) -> String {
    let local = address.split('@').next().unwrap_or("").trim();
    let local = local.split('+').next().unwrap_or("");
    local
        .chars()
        .filter(|c| !matches!(c, '-' | '_' | '.'))
        .flat_map(char::to_lowercase)
        .collect()
}

/// Local parts that only mail systems send from.
fn is_daemon_local(address: &str) -> bool {
    matches!(
        squeezed_local(address).as_str(),
        "mailerdaemon" | "postmaster" | "maildaemon" | "mailsystem" | "postoffice"
    )
}

/// `no-reply@…`, `donotreply@…`: addresses no person reads.
fn is_no_reply_local(address: &str) -> bool {
    let local = squeezed_local(address);
    local.starts_with("noreply") || local.starts_with("donotreply")
}

/// The addresses a mailing-list manager writes from: `owner-list@`,
/// `list-owner@`, `list-admin@`, `list-request@`, `list-bounces@`.
fn is_list_manager_local(address: &str) -> bool {
    let local = address
        .split('@')
        .next()
        .unwrap_or("")
        .trim()
        .to_ascii_lowercase();
    local.starts_with("owner-")
        || [
            "-owner", "-admin", "-request", "-bounces", "-errors", "-ctl",
        ]
        .iter()
        .any(|s| local.ends_with(s))
}

/// Display names of mail systems writing from an empty address
/// (`From: MAILER-DAEMON <>`).
const DAEMON_NAMES: &[&str] = &[
    "mailer-daemon",
    "postmaster",
    "mail-daemon",
    "mail delivery system",
    "mail delivery subsystem",
];

/// A sender that is a mail system: `mailer-daemon@…`, `postmaster@…`, or a
/// daemon's name over an empty address.
fn is_daemon_sender(h: &HeaderFacts, from: Option<&str>) -> bool {
    match from.map(str::trim).filter(|f| !f.is_empty()) {
        Some(address) => is_daemon_local(address),
        None => h
            .from_name
            .as_deref()
            .is_some_and(|n| DAEMON_NAMES.contains(&n.trim())),
    }
}

/// Subject openings of delivery failure reports (Postfix, Sendmail, Exim,
/// qmail, Exchange, Domino, Gmail), on folded text.
const BOUNCE_SUBJECTS: &[&str] = &[
    "undeliverable",
    "undelivered mail returned to sender",
    "undelivered mail",
    "returned mail",
    "mail delivery failed",
    "mail delivery failure",
    "delivery failure",
    "delivery status notification",
    "failure notice",
    "delivery has failed",
    "non-delivery report",
    "non delivery notification",
    "non-delivery notification",
    "mail system error",
    "message not delivered",
    "could not deliver",
    "complaint about message from",
    "email bounce notification",
    // Other languages' MTAs and gateways (folded: no diacritics).
    "khong gui duoc",
    "thu khong gui duoc",
    "khong the gui thu",
    "thu khong the gui",
    "thu bi tra lai",
    "thu bi tra ve",
    "unzustellbar",
    "non remis",
    "non recapitabile",
    "no se puede entregar",
    "onbestelbaar",
    "メールエラー",
    "メール送信エラー",
    "配信エラー",
    "配信不能",
    "退信",
    "系统退信",
];

/// True for a delivery failure report: the MTA's own marks (a report, a
/// daemon sender, Exchange's and Exim's headers, a delivery-status part,
/// an SES notice, a failure subject). A null reverse path alone is weaker
/// (RFC 3834 auto-replies use one too): see [`has_null_reverse_path`].
pub fn is_bounce(h: &HeaderFacts, from: Option<&str>, subject: &str) -> bool {
    if h.content_type == "multipart/report"
        && h.report_type.as_deref() != Some("disposition-notification")
    {
        return true;
    }
    if h.failed_recipients || h.ms_embedded_report || h.delivery_status_part || h.ses_bounce {
        return true;
    }
    if is_daemon_sender(h, from) {
        return true;
    }
    // A no-reply system returning a mail it was given (carriers' "mail
    // error" notices).
    if h.returned_message_part && from.is_some_and(is_no_reply_local) {
        return true;
    }
    let s = fold(subject);
    let s = s.trim_start();
    BOUNCE_SUBJECTS.iter().any(|p| s.starts_with(p))
}

/// `Return-Path: <>`, `<MAILER-DAEMON>` or `<postmaster@…>`: sent by a mail
/// system. A missing Return-Path (a message saved before delivery) is not.
pub fn has_null_reverse_path(h: &HeaderFacts) -> bool {
    h.return_path
        .as_deref()
        .is_some_and(|r| r.trim().is_empty() || is_daemon_local(r))
}

/// Subject openings that out-of-office robots use even without headers.
const AUTO_REPLY_SUBJECTS: &[&str] = &[
    "automatic reply",
    "auto reply",
    "auto-reply",
    "autoreply",
    "auto response",
    "out of office",
    "tra loi tu dong",
    "phan hoi tu dong",
];

/// True for an automatic answer (RFC 3834 and common practice).
pub fn is_auto_reply(h: &HeaderFacts, from: Option<&str>, subject: &str) -> bool {
    if h.auto_submitted
        .as_deref()
        .is_some_and(|v| !v.is_empty() && v != "no")
    {
        return true;
    }
    if h.x_autoreply {
        return true;
    }
    if h.precedence
        .as_deref()
        .is_some_and(|p| matches!(p, "bulk" | "junk" | "list" | "auto_reply"))
    {
        return true;
    }
    // A list manager's own notice ("you are not a member", loop alerts):
    // list headers from the list's admin address. A post relayed by a list
    // keeps its author's address and stays what it is.
    if h.list_header && from.is_some_and(is_list_manager_local) {
        return true;
    }
    // Read receipts are machine-made too.
    if h.content_type == "multipart/report"
        && h.report_type.as_deref() == Some("disposition-notification")
        || h.disposition_notification_part
    {
        return true;
    }

    let s = fold(subject);
    let s = s.trim_start();
    AUTO_REPLY_SUBJECTS.iter().any(|p| s.starts_with(p))
}

/// Classifies a message; `looks_like_request` says whether its subject or
/// new body carries the request phrase.
pub fn classify(
    h: &HeaderFacts,
    from: Option<&str>,
    subject: &str,
    looks_like_request: bool,
) -> Kind {
    if is_bounce(h, from, subject) {
        Kind::Bounce
    } else if is_auto_reply(h, from, subject) {
        Kind::AutoReply
    } else if has_null_reverse_path(h) {
        // Machine-made, without an auto-reply's marks: a bounce.
        Kind::Bounce
    } else if looks_like_request {
        Kind::DeletionRequest
    } else {
        Kind::Other
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn facts() -> HeaderFacts {
        HeaderFacts {
            content_type: "text/plain".into(),
            return_path: Some("an@gmail.com".into()),
            ..Default::default()
        }
    }

    #[test]
    fn bounces_win_over_auto_submitted() {
        let mut h = facts();
        h.auto_submitted = Some("auto-replied".into());
        h.content_type = "multipart/report".into();
        h.report_type = Some("delivery-status".into());
        assert_eq!(
            classify(&h, Some("x@y"), "Yêu cầu hủy tài khoản", true),
            Kind::Bounce
        );
    }

    #[test]
    fn daemon_senders_and_null_reverse_paths_are_bounces() {
        let mut h = facts();
        assert!(is_bounce(&h, Some("MAILER-DAEMON@mx.vn"), "x"));
        // Any postmaster sender, whatever the reverse path.
        h.return_path = Some("admin@mx.vn".into());
        assert!(is_bounce(&h, Some("postmaster@mx.vn"), "x"));
        assert!(!is_bounce(&h, Some("an@gmail.com"), "x"));
        for rp in ["", "MAILER-DAEMON", "postmaster@mx.vn"] {
            h.return_path = Some(rp.into());
            assert_eq!(
                classify(&h, Some("an@gmail.com"), "Yêu cầu hủy tài khoản", true),
                Kind::Bounce,
                "{rp:?}"
            );
        }
        // An RFC 3834 auto-reply has a null reverse path too.
        h.return_path = Some(String::new());
        h.auto_submitted = Some("auto-replied".into());
        assert_eq!(
            classify(&h, Some("an@gmail.com"), "Yêu cầu hủy tài khoản", true),
            Kind::AutoReply
        );
    }

    #[test]
    fn auto_reply_headers() {
        let mut h = facts();
        h.auto_submitted = Some("no".into());
        assert!(!is_auto_reply(&h, None, "x"));
        h.auto_submitted = Some("auto-generated".into());
        assert!(is_auto_reply(&h, None, "x"));
        let mut h = facts();
        h.precedence = Some("bulk".into());
        assert!(is_auto_reply(&h, None, "x"));
        let mut h = facts();
        h.x_autoreply = true;
        assert!(is_auto_reply(&h, None, "x"));
        assert!(is_auto_reply(
            &facts(),
            None,
            "Trả lời tự động: Yêu cầu hủy tài khoản"
        ));
        assert!(!is_auto_reply(&facts(), None, "Re: Yêu cầu hủy tài khoản"));
    }

    /// A message carrying a complete request in its text (as bounces quote
    /// the original), with these headers and this body.
    fn mail(headers: &str, content_type: &str, body: &str) -> Vec<u8> {
        format!(
            "{headers}To: dichvucong@chinhphu.vn\r\nMessage-ID: <t@mx.vn>\r\nMIME-Version: 1.0\r\nContent-Type: {content_type}\r\n\r\n{body}"
        )
        .into_bytes()
    }

    const REQUEST: &str =
        "Yêu cầu hủy tài khoản 079203001234\r\nHọ và tên: Nguyễn Văn An\r\nSĐT: 0912345678\r\n";

    fn kind_of(raw: &[u8]) -> Kind {
        crate::intake::examine(raw).kind
    }

    fn plain(headers: &str) -> Kind {
        kind_of(&mail(headers, "text/plain; charset=utf-8", REQUEST))
    }

    const SUBJECT: &str = "Subject: Yêu cầu hủy tài khoản 079203001234\r\n";

    #[test]
    fn the_control_message_is_a_request() {
        let h = format!("Return-Path: <an@gmail.com>\r\nFrom: An <an@gmail.com>\r\n{SUBJECT}");
        assert_eq!(plain(&h), Kind::DeletionRequest);
    }

    #[test]
    fn bounce_senders_and_reverse_paths() {
        for h in [
            "From: MAILER-DAEMON <>\r\n",
            "Return-Path: <bounce@mx.vn>\r\nFrom: Mail Delivery System <MAILER-DAEMON@mx.vn>\r\n",
            "Return-Path: <admin@mx.vn>\r\nFrom: postmaster@mx.vn\r\n",
            "Return-Path: <>\r\nFrom: Hệ thống thư <noreply@mx.vn>\r\n",
            "Return-Path: <MAILER-DAEMON>\r\nFrom: Hệ thống thư <noreply@mx.vn>\r\n",
            "Return-Path: <postmaster@mx.vn>\r\nFrom: Hệ thống thư <noreply@mx.vn>\r\n",
            "Return-Path: <a@mx.vn>\r\nFrom: Exchange <a@mx.vn>\r\nX-MS-Embedded-Report: 1\r\n",
        ] {
            assert_eq!(plain(&format!("{h}{SUBJECT}")), Kind::Bounce, "{h}");
        }
    }

    #[test]
    fn bounce_subjects() {
        for subject in [
            "failure notice",
            "DELIVERY FAILURE: User an (an@mx.vn) not listed in Domino Directory",
            "Delivery Status Notification (Failure)",
            "Undeliverable: Yêu cầu hủy tài khoản 079203001234",
            "Returned mail: see transcript for details",
            "Mail delivery failed: returning message to sender",
            "Undelivered Mail Returned to Sender",
        ] {
            let h = format!(
                "Return-Path: <bounce@mx.vn>\r\nFrom: Hệ thống <noreply@mx.vn>\r\nSubject: {subject}\r\n"
            );
            assert_eq!(plain(&h), Kind::Bounce, "{subject}");
        }
    }

    const SENDER: &str = "Return-Path: <bounce@mx.vn>\r\nFrom: Hệ thống <noreply@mx.vn>\r\n";

    #[test]
    fn report_parts_anywhere_in_the_tree() {
        let body = |report_type: &str| {
            format!(
                "--B\r\nContent-Type: text/plain; charset=utf-8\r\n\r\n{REQUEST}\r\n--B\r\nContent-Type: {report_type}\r\n\r\nReporting-MTA: dns; mx.vn\r\n\r\n--B--\r\n"
            )
        };
        let ct = "multipart/mixed; boundary=\"B\"";
        let h = format!("{SENDER}{SUBJECT}");
        assert_eq!(
            kind_of(&mail(&h, ct, &body("message/delivery-status"))),
            Kind::Bounce
        );
        assert_ne!(
            kind_of(&mail(&h, ct, &body("message/disposition-notification"))),
            Kind::DeletionRequest
        );
        // ARF abuse reports.
        let arf = "multipart/report; report-type=feedback-report; boundary=\"B\"";
        assert_eq!(
            kind_of(&mail(&h, arf, &body("message/feedback-report"))),
            Kind::Bounce
        );
    }

    #[test]
    fn amazon_ses_notices() {
        let h = "Return-Path: <no-reply@sns.amazonaws.com>\r\nFrom: AWS Notifications <no-reply@sns.amazonaws.com>\r\nSubject: AWS Notification Message\r\n";
        let sns = format!(
            "{{\"Type\" : \"Notification\", \"Message\" : \"{{\\\"notificationType\\\":\\\"Bounce\\\",\\\"bounce\\\":{{\\\"bounceType\\\":\\\"Permanent\\\"}},\\\"mail\\\":{{\\\"commonHeaders\\\":{{\\\"subject\\\":\\\"Yêu cầu hủy tài khoản 079203001234\\\"}}}}}}\"}}\r\n{REQUEST}"
        );
        assert_eq!(
            kind_of(&mail(h, "text/plain; charset=utf-8", &sns)),
            Kind::Bounce
        );
        let ses = format!("{{\"notificationType\": \"Bounce\", \"bounce\": {{}}}}\r\n{REQUEST}");
        assert_eq!(
            kind_of(&mail(h, "text/plain; charset=utf-8", &ses)),
            Kind::Bounce
        );
    }

    #[test]
    fn list_manager_notices_are_auto_replies() {
        for h in [
            "List-Id: <thongbao.lists.mx.vn>\r\nPrecedence: list\r\n",
            "List-Unsubscribe: <mailto:leave@lists.mx.vn>\r\nPrecedence: bulk\r\n",
        ] {
            let h = format!("{SENDER}{h}{SUBJECT}");
            assert_eq!(plain(&h), Kind::AutoReply, "{h}");
        }
    }

    #[test]
    fn gateway_and_carrier_notices_are_bounces() {
        // MMS gateways answer "Re:<subject>" from a spelled-out postmaster.
        for from in [
            "post_master@vtext.vn",
            "Mailer.Daemon@mx.vn",
            "postmaster+mms@mx.vn",
        ] {
            let h = format!("Return-Path: <{from}>\r\nFrom: {from}\r\nSubject: Re:Yêu cầu hủy tài khoản 079203001234\r\n");
            assert_eq!(plain(&h), Kind::Bounce, "{from}");
        }
        // A carrier's no-reply notice returning the mail it could not deliver.
        let h = "Return-Path: <sys@carrier.vn>\r\nFrom: no-reply@mail.carrier.vn\r\nSubject: Thông báo\r\n";
        let returned = format!(
            "--B\r\nContent-Type: text/plain; charset=utf-8\r\n\r\nHộp thư đầy.\r\n--B\r\nContent-Type: message/rfc822\r\n\r\nFrom: an@gmail.com\r\nSubject: x\r\n\r\n{REQUEST}\r\n--B--\r\n"
        );
        assert_eq!(
            kind_of(&mail(h, "multipart/mixed; boundary=\"B\"", &returned)),
            Kind::Bounce
        );
        // The same no-reply sender with a request of its own (a web form
        // relaying a citizen) is not a bounce.
        assert_eq!(plain(&format!("{h}{SUBJECT}")), Kind::DeletionRequest);
        for subject in [
            "complaint about message from 192.0.2.1",
            "メールエラー通知",
            "Thư không gửi được: Yêu cầu hủy tài khoản",
            "Unzustellbar: Yêu cầu hủy tài khoản",
            "Non Delivery Notification",
        ] {
            let h = format!("{SENDER}Subject: {subject}\r\n");
            assert_eq!(plain(&h), Kind::Bounce, "{subject}");
        }
    }

    #[test]
    fn list_manager_notices_without_precedence() {
        for h in [
            "Return-Path: <thongbao-admin@lists.mx.vn>\r\nFrom: thongbao-admin@lists.mx.vn\r\nX-MLServer: fml\r\n",
            "Return-Path: <owner-thongbao@lists.mx.vn>\r\nFrom: owner-thongbao@lists.mx.vn\r\nList-Id: <thongbao.lists.mx.vn>\r\n",
            "Return-Path: <thongbao-request@lists.mx.vn>\r\nFrom: thongbao-request@lists.mx.vn\r\nList-Help: <mailto:thongbao-request@lists.mx.vn>\r\n",
        ] {
            assert_eq!(plain(&format!("{h}{SUBJECT}")), Kind::AutoReply, "{h}");
        }
        // A citizen's post relayed by a list keeps its author's address.
        let h = "Return-Path: <an@gmail.com>\r\nFrom: An <an@gmail.com>\r\nList-Id: <hotro.lists.mx.vn>\r\n";
        assert_eq!(plain(&format!("{h}{SUBJECT}")), Kind::DeletionRequest);
        // List headers alone from an -admin address of no list stay what
        // the rest says: the address alone proves nothing.
        let h = "Return-Path: <an-admin@gmail.com>\r\nFrom: an-admin@gmail.com\r\n";
        assert_eq!(plain(&format!("{h}{SUBJECT}")), Kind::DeletionRequest);
    }

    #[test]
    fn amazon_delivery_notices_are_not_requests() {
        let h = "Return-Path: <x@amazonses.com>\r\nFrom: <no-reply@sns.amazonaws.com>\r\nSubject: AWS Notification Message\r\n";
        let body = format!("{{\"notificationType\":\"Delivery\",\"mail\":{{}}}}\r\n{REQUEST}");
        assert_eq!(
            kind_of(&mail(h, "text/plain; charset=utf-8", &body)),
            Kind::Bounce
        );
    }
}
