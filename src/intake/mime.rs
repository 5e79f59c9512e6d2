//! One raw RFC 5322 message turned into the few things the desk reads:
//! addresses, subject, the citizen's text, and every non-text part.
//! Built on mail-parser, which decodes every charset it knows (windows-1258
//! included); all text leaves here in NFC.

use crate::domain::text::nfc;
use mail_parser::{Message, MessageParser, MimeHeaders, PartType};
use regex::Regex;
use std::sync::LazyLock;

use super::html::html_to_text;

/// The header facts classification needs.
#[derive(Debug, Clone, Default)]
pub struct HeaderFacts {
    /// `Auto-Submitted` value, lower case, parameters dropped.
    pub auto_submitted: Option<String>,
    /// `X-Autoreply` or `X-Autorespond` present.
    pub x_autoreply: bool,
    /// `Precedence`, lower case.
    pub precedence: Option<String>,
    /// `Return-Path` address without brackets; `Some("")` for `<>`.
    pub return_path: Option<String>,
    /// Top-level content type, lower case (`multipart/report`).
    pub content_type: String,
    /// The `report-type` parameter of a `multipart/report`.
    pub report_type: Option<String>,
    /// `X-Failed-Recipients` present (Exim and others on bounces).
    pub failed_recipients: bool,
    /// The sender's display name, lower case (`mailer-daemon` in
    /// `From: MAILER-DAEMON <>`).
    pub from_name: Option<String>,
    /// `X-MS-Embedded-Report` present (Exchange's non-delivery reports).
    pub ms_embedded_report: bool,
    /// A `message/delivery-status` part somewhere in the message's own MIME
    /// tree (not inside an attached message).
    pub delivery_status_part: bool,
    /// A `message/disposition-notification` part (a read receipt) in the
    /// message's own MIME tree.
    pub disposition_notification_part: bool,
    /// The text is an Amazon SES/SNS bounce or complaint notice
    /// (`"notificationType":"Bounce"`).
    pub ses_bounce: bool,
}

/// A part that is not the message's text: a candidate photo or a file.
#[derive(Debug, Clone)]
pub struct Part<'m> {
    /// The file name as sent (decoded, NFC), if any.
    pub filename: Option<String>,
    /// The declared MIME type, lower case.
    pub declared_type: String,
    /// The decoded content.
    pub bytes: &'m [u8],
    /// The transfer encoding could not be fully decoded.
    pub damaged: bool,
}

/// One message as intake sees it.
#[derive(Debug, Clone)]
pub struct Mail<'m> {
    /// `Message-ID` with angle brackets, as the contract shows it.
    pub message_id: Option<String>,
    /// `In-Reply-To` and `References` ids, with angle brackets.
    pub references: Vec<String>,
    /// The sender's address, lower case.
    pub from: Option<String>,
    /// The subject, decoded, NFC; empty when absent.
    pub subject: String,
    /// The message's text (HTML read as text), NFC, quotes still in.
    pub body: String,
    /// Header facts for classification.
    pub headers: HeaderFacts,
    /// Every non-text part, nested messages included.
    pub parts: Vec<Part<'m>>,
}

/// Parses raw bytes into a mail-parser message. Never fails: an empty or
/// headerless input still gives a message with no fields.
pub fn parse(raw: &[u8]) -> Option<Message<'_>> {
    MessageParser::default().parse(raw)
}

fn header_text(msg: &Message<'_>, name: &str) -> Option<String> {
    msg.header_raw(name).map(|v| v.trim().to_owned())
}

fn angle(id: &str) -> String {
    format!(
        "<{}>",
        id.trim().trim_start_matches('<').trim_end_matches('>')
    )
}

fn id_list(value: &mail_parser::HeaderValue<'_>) -> Vec<String> {
    match value {
        mail_parser::HeaderValue::Text(t) => vec![angle(t)],
        mail_parser::HeaderValue::TextList(l) => l.iter().map(|t| angle(t)).collect(),
        _ => Vec::new(),
    }
}

/// Reads what intake needs out of a parsed message.
pub fn read<'m>(msg: &'m Message<'m>) -> Mail<'m> {
    let ct = msg.content_type();
    let content_type = ct
        .map(|c| format!("{}/{}", c.ctype(), c.subtype().unwrap_or("")).to_ascii_lowercase())
        .unwrap_or_else(|| "text/plain".into());
    let report_type = ct
        .and_then(|c| c.attribute("report-type"))
        .map(|r| r.to_ascii_lowercase());
    let return_path = header_text(msg, "Return-Path").map(|r| {
        r.trim()
            .trim_start_matches('<')
            .trim_end_matches('>')
            .trim()
            .to_owned()
    });
    let mut headers = HeaderFacts {
        auto_submitted: header_text(msg, "Auto-Submitted").map(|v| {
            v.split(';')
                .next()
                .unwrap_or("")
                .trim()
                .to_ascii_lowercase()
        }),
        x_autoreply: msg.header_raw("X-Autoreply").is_some()
            || msg.header_raw("X-Autorespond").is_some(),
        precedence: header_text(msg, "Precedence").map(|v| v.to_ascii_lowercase()),
        return_path,
        content_type,
        report_type,
        failed_recipients: msg.header_raw("X-Failed-Recipients").is_some(),
        from_name: msg
            .from()
            .and_then(|a| a.first())
            .and_then(|a| a.name())
            .map(|n| n.trim().to_lowercase()),
        ms_embedded_report: msg.header_raw("X-MS-Embedded-Report").is_some(),
        delivery_status_part: has_part_type(msg, "message/delivery-status"),
        disposition_notification_part: has_part_type(msg, "message/disposition-notification"),
        ses_bounce: false,
    };

    let mut references = id_list(msg.in_reply_to());
    references.extend(id_list(msg.references()));

    let mut body = String::new();
    collect_body(msg, &mut body);
    headers.ses_bounce = SES_NOTICE.is_match(&body);

    let mut parts = Vec::new();
    collect_parts(msg, &mut parts, 0);

    Mail {
        message_id: msg.message_id().map(angle),
        references,
        from: msg
            .from()
            .and_then(|a| a.first())
            .and_then(|a| a.address())
            .map(|a| a.trim().to_lowercase()),
        subject: msg.subject().map(|s| nfc(s.trim())).unwrap_or_default(),
        body: nfc(&body),
        headers,
        parts,
    }
}

/// Amazon SES's JSON notices, also inside an SNS envelope where the
/// quotes are escaped (`\"notificationType\":\"Bounce\"`).
static SES_NOTICE: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r#"notificationType\\*"\s*:\s*\\*"(?:Bounce|Complaint)\b"#).expect("static pattern")
});

/// True when a part of the message's own MIME tree (attached messages
/// not looked into) has this content type.
fn has_part_type(msg: &Message<'_>, wanted: &str) -> bool {
    msg.parts.iter().any(|p| {
        p.content_type().is_some_and(|c| {
            let sub = c.subtype().unwrap_or("");
            c.ctype().len() + 1 + sub.len() == wanted.len()
                && wanted.split_once('/').is_some_and(|(t, s)| {
                    c.ctype().eq_ignore_ascii_case(t) && sub.eq_ignore_ascii_case(s)
                })
        })
    })
}

fn collect_body(msg: &Message<'_>, body: &mut String) {
    let ids = if msg.text_body.is_empty() {
        &msg.html_body
    } else {
        &msg.text_body
    };
    for &id in ids {
        let Some(part) = msg.parts.get(id as usize) else {
            continue;
        };
        match &part.body {
            PartType::Text(t) => body.push_str(t),
            PartType::Html(h) => body.push_str(&html_to_text(h)),
            _ => continue,
        }
        body.push('\n');
    }
}

/// How deep nested messages are followed; deeper ones are ignored so a
/// crafted message cannot recurse without bound.
const MAX_NESTING: usize = 4;

fn collect_parts<'m>(msg: &'m Message<'m>, parts: &mut Vec<Part<'m>>, depth: usize) {
    for (i, part) in msg.parts.iter().enumerate() {
        let id = i as u32;
        if msg.text_body.contains(&id) || msg.html_body.contains(&id) {
            continue;
        }
        let declared_type = part
            .content_type()
            .map(|c| format!("{}/{}", c.ctype(), c.subtype().unwrap_or("")).to_ascii_lowercase())
            .unwrap_or_default();
        let filename = part.attachment_name().map(|n| nfc(n.trim()));
        let bytes: &'m [u8] = match &part.body {
            PartType::Binary(b) | PartType::InlineBinary(b) => b.as_ref(),
            PartType::Text(t) | PartType::Html(t) => {
                // Text parts that are not bodies: attached files (.txt, .html)
                // count; unnamed alternative bodies and report parts do not.
                if filename.is_none() && !part.is_attachment_disposition() {
                    continue;
                }
                t.as_bytes()
            }
            PartType::Message(nested) => {
                if depth < MAX_NESTING {
                    collect_parts(nested, parts, depth + 1);
                }
                continue;
            }
            PartType::Multipart(_) => continue,
        };
        if is_signature_or_report(&declared_type) {
            continue;
        }
        parts.push(Part {
            filename,
            declared_type,
            bytes,
            damaged: part.is_encoding_problem,
        });
    }
}

/// Parts that mail software adds and no citizen attaches.
fn is_signature_or_report(declared_type: &str) -> bool {
    matches!(
        declared_type,
        "application/pgp-signature"
            | "application/pkcs7-signature"
            | "application/x-pkcs7-signature"
            | "application/ms-tnef"
            | "message/delivery-status"
            | "message/disposition-notification"
            | "text/rfc822-headers"
    )
}

trait DispositionExt {
    fn is_attachment_disposition(&self) -> bool;
}

impl DispositionExt for mail_parser::MessagePart<'_> {
    fn is_attachment_disposition(&self) -> bool {
        self.content_disposition()
            .is_some_and(|d| d.ctype().eq_ignore_ascii_case("attachment"))
    }
}
