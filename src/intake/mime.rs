//! One raw RFC 5322 message turned into the few things the desk reads:
//! addresses, subject, the citizen's text, and every non-text part.
//! Built on mail-parser, which decodes every charset it knows (windows-1258
//! included); all text leaves here in NFC.

use crate::domain::text::nfc;
use mail_parser::{Message, MessageParser, MimeHeaders, PartType};
use regex::Regex;
use std::sync::LazyLock;

use super::html::html_to_text;
use super::photos;
use super::viscii;
use std::borrow::Cow;

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
    /// The text is an Amazon SES/SNS bounce, complaint or delivery notice
    /// (`"notificationType":"Bounce"`).
    pub ses_bounce: bool,
    /// A mailing-list manager's header (`List-Id`, `List-Subscribe`,
    /// `X-MLServer`, `X-Mailman-Version` …).
    pub list_header: bool,
    /// A returned message (`message/rfc822` or `text/rfc822-headers`) in the
    /// message's own MIME tree: what a notice about a sent mail carries.
    pub returned_message_part: bool,
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
/// headerless input still gives a message with no fields. Callers check
/// the shape first (`scan::check`, which this module does not call) and pass bytes through
/// [`normalise_line_endings`].
pub fn parse(raw: &[u8]) -> Option<Message<'_>> {
    MessageParser::default().parse(raw)
}

/// Old Mac mailers end lines with a bare CR, which mail-parser reads as
/// one endless header line. When the message's first line ends so, every
/// bare CR (one not followed by LF) becomes CRLF; a message whose first
/// line ends in LF or CRLF is left as it is, so a binary part's 0x0D
/// bytes are never touched in ordinary mail.
pub fn normalise_line_endings(raw: &[u8]) -> Cow<'_, [u8]> {
    let first = raw.iter().position(|&b| b == b'\r' || b == b'\n');
    let bare_cr = |i: usize| raw[i] == b'\r' && raw.get(i + 1) != Some(&b'\n');
    match first {
        Some(i) if bare_cr(i) => {
            let mut out = Vec::with_capacity(raw.len() + raw.len() / 32);
            for (i, &b) in raw.iter().enumerate() {
                out.push(b);
                if bare_cr(i) {
                    out.push(b'\n');
                }
            }
            Cow::Owned(out)
        }
        _ => Cow::Borrowed(raw),
    }
}

/// Base64 read leniently: characters outside the alphabet are skipped,
/// decoding stops at padding.
pub fn decode_base64_lenient(text: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(text.len() / 4 * 3);
    let (mut acc, mut bits) = (0u32, 0u32);
    for &c in text {
        let v = match c {
            b'A'..=b'Z' => c - b'A',
            b'a'..=b'z' => c - b'a' + 26,
            b'0'..=b'9' => c - b'0' + 52,
            b'+' => 62,
            b'/' => 63,
            b'=' => break,
            _ => continue,
        };
        acc = (acc << 6) | u32::from(v);
        bits += 6;
        if bits >= 8 {
            bits -= 8;
            out.push((acc >> bits) as u8);
            acc &= (1 << bits) - 1;
        }
    }
    out
}

/// Quoted-printable read leniently: soft line breaks dropped, `=XX`
/// decoded, anything else kept as it is.
pub fn decode_quoted_printable_lenient(text: &[u8]) -> Vec<u8> {
    let hex = |b: u8| (b as char).to_digit(16).map(|d| d as u8);
    let mut out = Vec::with_capacity(text.len());
    let mut i = 0;
    while i < text.len() {
        if text[i] == b'=' {
            if text.get(i + 1) == Some(&b'\n') {
                i += 2;
                continue;
            }
            if text.get(i + 1) == Some(&b'\r') && text.get(i + 2) == Some(&b'\n') {
                i += 3;
                continue;
            }
            if let (Some(h), Some(l)) = (
                text.get(i + 1).and_then(|&b| hex(b)),
                text.get(i + 2).and_then(|&b| hex(b)),
            ) {
                out.push(h << 4 | l);
                i += 3;
                continue;
            }
        }
        out.push(text[i]);
        i += 1;
    }
    out
}

/// An encoded word (RFC 2047).
static ENCODED_WORD: LazyLock<Regex> =
    LazyLock::new(|| Regex::new(r"=\?([^?\s]+)\?([bBqQ])\?([^?\s]*)\?=").expect("static pattern"));

/// Decodes a header's encoded words, VISCII ones included, with the
/// charsets mail-parser knows for the others. Whitespace between two
/// encoded words goes, as RFC 2047 says.
pub fn decode_encoded_words(raw: &str) -> String {
    let unfolded = raw.replace("\r\n", "").replace('\n', "");
    let mut out = String::with_capacity(unfolded.len());
    let mut last = 0;
    let mut after_word = false;
    for c in ENCODED_WORD.captures_iter(&unfolded) {
        let m = c.get(0).expect("whole match");
        let gap = &unfolded[last..m.start()];
        if !(after_word && gap.trim().is_empty()) {
            out.push_str(gap);
        }
        let charset = c[1].split('*').next().unwrap_or("");
        let text = c[3].as_bytes();
        let bytes = if c[2].eq_ignore_ascii_case("b") {
            decode_base64_lenient(text)
        } else {
            let t: Vec<u8> = text
                .iter()
                .map(|&b| if b == b'_' { b' ' } else { b })
                .collect();
            decode_quoted_printable_lenient(&t)
        };
        if viscii::is_viscii(charset) {
            out.push_str(&viscii::decode(&bytes));
        } else if let Some(decoder) =
            mail_parser::decoders::charsets::map::charset_decoder(charset.as_bytes())
        {
            out.push_str(&decoder(&bytes));
        } else {
            out.push_str(&String::from_utf8_lossy(&bytes));
        }
        last = m.end();
        after_word = true;
    }
    out.push_str(&unfolded[last..]);
    out
}

/// The charset a part declares is VISCII.
fn declares_viscii(part: &mail_parser::MessagePart<'_>) -> bool {
    part.content_type()
        .and_then(|c| c.attribute("charset"))
        .is_some_and(viscii::is_viscii)
}

/// A VISCII text part's text, decoded from the raw bytes (mail-parser
/// turned them into U+FFFD).
fn viscii_text(msg: &Message<'_>, part: &mail_parser::MessagePart<'_>) -> Option<String> {
    let raw = msg
        .raw_message()
        .get(part.raw_body_offset() as usize..part.raw_end_offset() as usize)?;
    let bytes = match part.encoding {
        mail_parser::Encoding::Base64 => decode_base64_lenient(raw),
        mail_parser::Encoding::QuotedPrintable => decode_quoted_printable_lenient(raw),
        _ => raw.to_vec(),
    };
    Some(viscii::decode(&bytes))
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
        list_header: LIST_HEADERS.iter().any(|h| msg.header_raw(*h).is_some()),
        returned_message_part: has_part_type(msg, "message/rfc822")
            || has_part_type(msg, "text/rfc822-headers"),
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
        subject: subject(msg),
        body: nfc(&body),
        headers,
        parts,
    }
}

/// Headers that mailing-list managers write (RFC 2369, RFC 2919, fml,
/// Mailman, Sympa).
const LIST_HEADERS: &[&str] = &[
    "List-Id",
    "List-Subscribe",
    "List-Unsubscribe",
    "List-Help",
    "List-Owner",
    "List-Post",
    "X-MLServer",
    "X-ML-Name",
    "X-Mailman-Version",
    "X-Sympa-To",
];

/// Amazon SES's JSON notices, also inside an SNS envelope where the
/// quotes are escaped (`\"notificationType\":\"Bounce\"`).
static SES_NOTICE: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r#"notificationType\\*"\s*:\s*\\*"(?:Bounce|Complaint|Delivery)\b"#)
        .expect("static pattern")
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

/// The subject, decoded; encoded words in VISCII decoded here, since
/// mail-parser does not know the charset.
fn subject(msg: &Message<'_>) -> String {
    let viscii_word = |raw: &str| {
        raw.to_ascii_lowercase()
            .split("=?")
            .skip(1)
            .any(|w| w.split('?').next().is_some_and(viscii::is_viscii))
    };
    match msg.header_raw("Subject") {
        Some(raw) if viscii_word(raw) => nfc(decode_encoded_words(raw).trim()),
        _ => msg.subject().map(|s| nfc(s.trim())).unwrap_or_default(),
    }
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
        let viscii = declares_viscii(part)
            .then(|| viscii_text(msg, part))
            .flatten();
        match (&part.body, viscii) {
            (PartType::Text(_), Some(t)) => body.push_str(&t),
            (PartType::Html(_), Some(h)) => body.push_str(&html_to_text(&h)),
            (PartType::Text(t), None) => body.push_str(t),
            (PartType::Html(h), None) => body.push_str(&html_to_text(h)),
            _ => continue,
        }
        body.push('\n');
    }
}

/// How deep nested messages are followed: as deep as `scan` lets a
/// message nest at all (16 levels; a deeper one is refused whole, with the
/// reason), so no photo of an accepted message is ignored unlisted, and
/// the recursion stays bounded.
const MAX_NESTING: usize = 16;

fn collect_parts<'m>(msg: &'m Message<'m>, parts: &mut Vec<Part<'m>>, depth: usize) {
    for (i, part) in msg.parts.iter().enumerate() {
        let id = i as u32;
        // mail-parser lists inline media among the bodies (an iOS Mail
        // image in `multipart/mixed` without Content-ID, an image in
        // Apple's `alternative{plain, mixed{html, img…}}`, a part with no
        // Content-Disposition, a message whose whole body is an image).
        // Only a body's text is the text; its binary parts are files.
        let in_body = msg.text_body.contains(&id) || msg.html_body.contains(&id);
        if in_body && !matches!(part.body, PartType::Binary(_) | PartType::InlineBinary(_)) {
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
        // Inline media that is not a picture (a voice memo, a video) stays
        // out, as before; a part that says it is a picture stays in even
        // when its content is not one (a broken inline photo is listed
        // as unreadable, never dropped).
        if in_body
            && photos::sniff(bytes).is_none()
            && !photos::looks_like_image(filename.as_deref(), &declared_type)
        {
            continue;
        }
        // The same decoded bytes never count twice. Identity, not content:
        // two copies of one photo attached twice are two attachments and
        // must still be reported as `duplicate_photo`.
        if !bytes.is_empty()
            && parts.iter().any(|p| {
                std::ptr::eq(p.bytes.as_ptr(), bytes.as_ptr()) && p.bytes.len() == bytes.len()
            })
        {
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

/// Message-ID, sender and subject from the headers alone (cheap), for the
/// stored message's row before it is inspected; never fails (a header the
/// parser cannot read is `None`).
pub fn header_summary(raw: &[u8]) -> (Option<String>, Option<String>, Option<String>) {
    std::panic::catch_unwind(|| {
        let Some(m) = mail_parser::MessageParser::new().parse_headers(raw) else {
            return (None, None, None);
        };
        (
            m.message_id().map(|i| format!("<{i}>")),
            m.from()
                .and_then(|a| a.first())
                .and_then(|a| a.address())
                .map(|a| a.to_lowercase()),
            m.subject().map(crate::domain::text::nfc),
        )
    })
    .unwrap_or((None, None, None))
}

#[cfg(test)]
mod tests {
    use crate::intake::examine;

    const REQUEST: &str = "From: An <an@gmail.com>\nTo: dichvucong@chinhphu.vn\nSubject: Yêu cầu hủy tài khoản 079203001234\nContent-Type: text/plain; charset=utf-8\n\nHọ và tên: Nguyễn Văn An\nSĐT: 0912345678\nLý do: trùng tài khoản\n";

    #[test]
    fn bare_cr_line_endings_are_read() {
        let raw = REQUEST.replace('\n', "\r");
        let e = examine(raw.as_bytes());
        assert_eq!(e.subject, "Yêu cầu hủy tài khoản 079203001234");
        assert_eq!(e.from.as_deref(), Some("an@gmail.com"));
        assert_eq!(e.body.full_name.as_deref(), Some("Nguyễn Văn An"));
        assert_eq!(e.body.phone_written.as_deref(), Some("0912345678"));
        assert_eq!(e.kind, crate::intake::Kind::DeletionRequest);
    }

    /// A photo forwarded six times over (each forward a message/rfc822
    /// inside the next) is still listed.
    #[test]
    fn a_photo_deep_in_forwarded_messages_is_listed() {
        let mut inner = String::from(
            "From: An <an@gmail.com>\nSubject: anh\nContent-Type: multipart/mixed; boundary=b\n\n\
             --b\nContent-Type: text/plain\n\nanh day\n--b\nContent-Type: image/jpeg\n\
             Content-Disposition: attachment; filename=mat-truoc.jpg\nContent-Transfer-Encoding: base64\n\n\
             /9j/4AAQSkZJRgABAQAAAQABAAD/\n--b--\n",
        );
        for level in 0..6 {
            inner = format!(
                "From: An <an@gmail.com>\nSubject: Fwd {level}\nContent-Type: multipart/mixed; boundary=f{level}\n\n\
                 --f{level}\nContent-Type: text/plain\n\nchuyen tiep\n--f{level}\nContent-Type: message/rfc822\n\n{inner}\n--f{level}--\n"
            );
        }
        let raw = inner.replacen(
            "Subject: Fwd 5",
            "Subject: Yêu cầu hủy tài khoản 079203001234",
            1,
        );
        let e = examine(raw.as_bytes());
        let names: Vec<_> = e.attachments.iter().map(|a| a.filename.clone()).collect();
        assert_eq!(names, vec![Some("mat-truoc.jpg".to_owned())]);
    }

    #[test]
    fn only_bare_crs_are_doubled() {
        use super::normalise_line_endings as n;
        assert_eq!(&*n(b"a\rb\r\nc\r"), b"a\r\nb\r\nc\r\n");
        // A message whose lines end in CRLF or LF is not touched: a
        // binary part's CR bytes stay as they are.
        assert!(matches!(n(b"a\r\nb\rc"), std::borrow::Cow::Borrowed(_)));
        assert!(matches!(n(b"a\nb\rc"), std::borrow::Cow::Borrowed(_)));
    }

    /// "Yêu cầu hủy tài khoản" and "Họ và tên: Nguyễn Văn An" in VISCII
    /// (from `iconv -t VISCII`).
    const PHRASE: &[u8] = b"Y\xeau c\xa5u h\xfcy t\xe0i kho\xe4n";
    const NAME: &[u8] = b"H\xf7 v\xe0 t\xean: Nguy\xadn V\xe5n An";

    #[test]
    fn viscii_text_parts_decode() {
        for (cte, body) in [
            ("8bit", [PHRASE, b" 079203001234\r\n", NAME, b"\r\n"].concat()),
            (
                "quoted-printable",
                b"Y=EAu c=A5u h=FCy t=E0i kho=E4n 079203001234\r\nH=F7 v=E0 t=EAn: Nguy=ADn V=E5n An\r\n".to_vec(),
            ),
            (
                "base64",
                {
                    use base64::Engine;
                    let plain = [PHRASE, b" 079203001234\r\n", NAME, b"\r\n"].concat();
                    base64::engine::general_purpose::STANDARD
                        .encode(plain)
                        .into_bytes()
                },
            ),
        ] {
            let mut raw = format!("From: an@gmail.com\r\nSubject: x\r\nMIME-Version: 1.0\r\nContent-Type: text/plain; charset=viscii\r\nContent-Transfer-Encoding: {cte}\r\n\r\n").into_bytes();
            raw.extend_from_slice(&body);
            let e = examine(&raw);
            assert_eq!(e.body.request_number.as_deref(), Some("079203001234"), "{cte}");
            assert_eq!(e.body.full_name.as_deref(), Some("Nguyễn Văn An"), "{cte}");
        }
    }

    #[test]
    fn viscii_encoded_words_decode() {
        let raw = b"From: an@gmail.com\r\nSubject: =?VISCII?Q?Y=EAu_c=A5u_h=FCy_t=E0i_kho=E4n?=\r\n =?viscii?B?IDA3OTIwMzAwMTIzNA==?=\r\nContent-Type: text/plain; charset=utf-8\r\n\r\nx\r\n";
        let e = examine(raw);
        assert_eq!(e.subject, "Yêu cầu hủy tài khoản 079203001234");
        assert_eq!(e.subject_number.as_deref(), Some("079203001234"));
    }
}
