//! What kind of mail this is. Bounces first (many MTAs also mark them
//! `Auto-Submitted`), then auto-replies (RFC 3834 and the common
//! non-standard headers), then requests; the rest is `other`.

use serde::Serialize;

use super::mime::HeaderFacts;
use crate::domain::text::fold;

/// The kind of a message.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
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

fn is_daemon_sender(from: Option<&str>) -> bool {
    from.and_then(|f| f.split('@').next())
        .map(|local| {
            let l = local.to_ascii_lowercase();
            l == "mailer-daemon" || l == "postmaster" || l == "mail-daemon"
        })
        .unwrap_or(false)
}

/// True for a delivery failure report.
pub fn is_bounce(h: &HeaderFacts, from: Option<&str>) -> bool {
    if h.content_type == "multipart/report"
        && h.report_type.as_deref() != Some("disposition-notification")
    {
        return true;
    }
    if h.failed_recipients {
        return true;
    }
    // Bounces come from the MTA with a null reverse path. A missing
    // Return-Path (a message saved before delivery) counts as null.
    is_daemon_sender(from) && h.return_path.as_deref().is_none_or(str::is_empty)
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
pub fn is_auto_reply(h: &HeaderFacts, subject: &str) -> bool {
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
    // Read receipts are machine-made too.
    if h.content_type == "multipart/report"
        && h.report_type.as_deref() == Some("disposition-notification")
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
    if is_bounce(h, from) {
        Kind::Bounce
    } else if is_auto_reply(h, subject) {
        Kind::AutoReply
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
    fn mailer_daemon_needs_null_return_path() {
        let mut h = facts();
        h.return_path = Some(String::new());
        assert!(is_bounce(&h, Some("MAILER-DAEMON@mx.vn")));
        h.return_path = Some("admin@mx.vn".into());
        assert!(!is_bounce(&h, Some("postmaster@mx.vn")));
    }

    #[test]
    fn auto_reply_headers() {
        let mut h = facts();
        h.auto_submitted = Some("no".into());
        assert!(!is_auto_reply(&h, "x"));
        h.auto_submitted = Some("auto-generated".into());
        assert!(is_auto_reply(&h, "x"));
        let mut h = facts();
        h.precedence = Some("bulk".into());
        assert!(is_auto_reply(&h, "x"));
        let mut h = facts();
        h.x_autoreply = true;
        assert!(is_auto_reply(&h, "x"));
        assert!(is_auto_reply(
            &facts(),
            "Trả lời tự động: Yêu cầu hủy tài khoản"
        ));
        assert!(!is_auto_reply(&facts(), "Re: Yêu cầu hủy tài khoản"));
    }
}
