//! A cheap look at a raw message's MIME shape before mail-parser sees it.
//!
//! mail-parser parses nested messages without recursion, but the value it
//! builds nests one `Message` inside another for every `message/rfc822`
//! level, and dropping that value recurses: a 1 MB message of 35,000
//! nested parts overflows the stack and aborts the process. So the raw
//! bytes are scanned first, in one pass per buffer with an explicit stack
//! (nothing here recurses on the input), and a message nested deeper than
//! [`MAX_DEPTH`] or with more than [`MAX_PARTS`] parts is refused.
//!
//! The scan follows MIME the way mail does (boundaries at line starts);
//! a crafted message can hide boundaries from it (mail-parser also finds
//! them mid-line), so a second count that ignores structure backs it up:
//! every `…/rfc822`, `…/global` and `…/digest` type token in the bytes,
//! each one a possible nesting level, at most [`MAX_EMBEDDED`] of them.
//! Parts encoded in base64 or quoted-printable that declare a message are
//! decoded and scanned too (mail-parser parses up to 3 such layers).

use std::borrow::Cow;

/// Deepest nesting of multiparts and attached messages accepted.
pub const MAX_DEPTH: usize = 16;
/// Most MIME parts accepted in one message.
pub const MAX_PARTS: usize = 4_000;
/// Most type tokens that can open a nested message (see the module text).
pub const MAX_EMBEDDED: usize = 256;
/// Largest raw message inspected: 40 MiB, above what the big providers
/// send (Gmail's 25 MB of attachments is about 34 MB encoded). A bigger
/// one is kept (stored raw first, like every message) but refused with its
/// size, so one message cannot take more than the ≤ 200 MB of memory an
/// inspection may use.
pub const MAX_MESSAGE_BYTES: usize = 40 << 20;
/// Encoded message layers looked into (mail-parser parses 3).
const MAX_ENCODED_LAYERS: usize = 4;

/// Why a message is refused: its shape, before parsing, or its time
/// budget, during inspection.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Refused {
    /// The message is larger than [`MAX_MESSAGE_BYTES`].
    #[error("message refused: {} MB, larger than the {} MB a message may be", .bytes.div_ceil(1 << 20), .limit >> 20)]
    TooLarge {
        /// The message's size in bytes.
        bytes: usize,
        /// The limit in bytes.
        limit: usize,
    },
    /// Multiparts and attached messages nested too deep.
    #[error("message refused: MIME parts nested deeper than {limit} levels")]
    TooDeep {
        /// The limit.
        limit: usize,
    },
    /// Too many parts.
    #[error("message refused: more than {limit} MIME parts")]
    TooManyParts {
        /// The limit.
        limit: usize,
    },
    /// Too many declarations of nested messages.
    #[error("message refused: more than {limit} nested-message type declarations")]
    TooManyEmbedded {
        /// The limit.
        limit: usize,
    },
    /// The MIME parser failed on the message (a bug in it on a crafted
    /// message costs that message, never the daemon or the CLI run).
    #[error("message refused: the MIME parser failed on it")]
    ParserFailed,
    /// Inspection took longer than the message's time budget.
    #[error("message refused: {0}")]
    OverBudget(#[from] super::budget::OverBudget),
}

/// Refuses a message larger than [`MAX_MESSAGE_BYTES`].
pub fn check_size(bytes: usize) -> Result<(), Refused> {
    if bytes > MAX_MESSAGE_BYTES {
        return Err(Refused::TooLarge {
            bytes,
            limit: MAX_MESSAGE_BYTES,
        });
    }
    Ok(())
}

/// Checks the shape of a raw message; `Ok` means mail-parser may have it.
pub fn check(raw: &[u8]) -> Result<(), Refused> {
    // The caller checked the size as sent; this is the size the parser
    // gets, which bare-CR line ends turned CRLF can have grown.
    check_size(raw.len())?;
    let mut budget = Budget::default();
    let mut work: Vec<(Cow<'_, [u8]>, usize, usize)> = vec![(Cow::Borrowed(raw), 0, 0)];
    while let Some((data, depth, layer)) = work.pop() {
        for (inner, inner_depth) in scan(&data, depth, &mut budget)? {
            if layer < MAX_ENCODED_LAYERS {
                work.push((Cow::Owned(inner), inner_depth, layer + 1));
            }
        }
        budget.embedded += embedded_tokens(&data);
        if budget.embedded > MAX_EMBEDDED {
            return Err(Refused::TooManyEmbedded {
                limit: MAX_EMBEDDED,
            });
        }
    }
    Ok(())
}

#[derive(Default)]
struct Budget {
    parts: usize,
    embedded: usize,
}

/// One open container: a multipart (with its boundary) or an attached
/// message (which ends where its enclosing multipart's next part begins).
struct Frame {
    boundary: Option<Vec<u8>>,
    digest: bool,
}

/// What a header block says about its part.
#[derive(Default)]
struct PartHead {
    /// `type/subtype`, lower case; empty when absent.
    content_type: String,
    boundary: Option<Vec<u8>>,
    /// `Content-Transfer-Encoding`, lower case.
    encoding: String,
}

/// The lines of `data` from `pos`: (start, end without the line break,
/// start of the next line).
fn next_line(data: &[u8], pos: usize) -> Option<(usize, usize, usize)> {
    if pos >= data.len() {
        return None;
    }
    let rest = &data[pos..];
    match rest.iter().position(|&b| b == b'\n') {
        Some(i) => {
            let end = if i > 0 && rest[i - 1] == b'\r' {
                i - 1
            } else {
                i
            };
            Some((pos, pos + end, pos + i + 1))
        }
        None => Some((pos, data.len(), data.len())),
    }
}

/// Reads a header block at `pos`; returns what it says and where the body
/// starts.
fn read_head(data: &[u8], mut pos: usize) -> (PartHead, usize) {
    let mut head = PartHead::default();
    let mut field: Vec<u8> = Vec::new();
    let finish = |field: &mut Vec<u8>, head: &mut PartHead| {
        if let Some(colon) = field.iter().position(|&b| b == b':') {
            let (name, value) = (&field[..colon], &field[colon + 1..]);
            if name.trim_ascii().eq_ignore_ascii_case(b"content-type") {
                parse_content_type(value, head);
            } else if name
                .trim_ascii()
                .eq_ignore_ascii_case(b"content-transfer-encoding")
            {
                head.encoding = String::from_utf8_lossy(value.trim_ascii()).to_ascii_lowercase();
            }
        }
        field.clear();
    };
    while let Some((start, end, next)) = next_line(data, pos) {
        let line = &data[start..end];
        pos = next;
        if line.is_empty() {
            break;
        }
        if matches!(line[0], b' ' | b'\t') && !field.is_empty() {
            // A folded continuation (a field's length is capped: a header
            // is no place for megabytes).
            if field.len() < 16 * 1024 {
                field.extend_from_slice(line);
            }
            continue;
        }
        finish(&mut field, &mut head);
        field.extend_from_slice(&line[..line.len().min(16 * 1024)]);
    }
    finish(&mut field, &mut head);
    (head, pos)
}

fn parse_content_type(value: &[u8], head: &mut PartHead) {
    let value = String::from_utf8_lossy(value);
    let without_comments = strip_comments(&value);
    let mut items = without_comments.split(';');
    head.content_type = items
        .next()
        .unwrap_or("")
        .chars()
        .filter(|c| !c.is_whitespace())
        .collect::<String>()
        .to_ascii_lowercase();
    for item in items {
        if let Some((k, v)) = item.split_once('=') {
            if k.trim().eq_ignore_ascii_case("boundary") {
                let v = v.trim();
                let v = v
                    .strip_prefix('"')
                    .map_or(v, |q| q.split('"').next().unwrap_or(""));
                if !v.is_empty() {
                    head.boundary = Some(v.as_bytes().to_vec());
                }
            }
        }
    }
}

fn strip_comments(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    let (mut depth, mut quoted) = (0usize, false);
    for c in s.chars() {
        match c {
            '"' if depth == 0 => {
                quoted = !quoted;
                out.push(c);
            }
            '(' if !quoted => depth += 1,
            ')' if !quoted && depth > 0 => depth -= 1,
            _ if depth == 0 => out.push(c),
            _ => {}
        }
    }
    out
}

/// The innermost frame whose boundary this line is: (frame index, closing).
fn boundary_of(line: &[u8], stack: &[Frame]) -> Option<(usize, bool)> {
    let rest = line.trim_ascii_start().strip_prefix(b"--")?;
    stack.iter().enumerate().rev().find_map(|(i, f)| {
        let b = f.boundary.as_deref()?;
        let after = rest.strip_prefix(b)?;
        Some((i, after.starts_with(b"--")))
    })
}

/// Scans one buffer; returns the encoded nested messages to scan next,
/// decoded, with their depth.
fn scan(data: &[u8], base: usize, budget: &mut Budget) -> Result<Vec<(Vec<u8>, usize)>, Refused> {
    let mut found = Vec::new();
    let mut stack: Vec<Frame> = Vec::new();
    let mut pos = 0;
    // A new part's header block starts at `pos`.
    let mut at_head = true;
    // An encoded nested message whose body runs from here.
    let mut encoded_from: Option<(usize, bool, usize)> = None;
    loop {
        if at_head {
            at_head = false;
            budget.parts += 1;
            if budget.parts > MAX_PARTS {
                return Err(Refused::TooManyParts { limit: MAX_PARTS });
            }
            let depth = base + stack.len();
            if depth > MAX_DEPTH {
                return Err(Refused::TooDeep { limit: MAX_DEPTH });
            }
            let in_digest = stack.last().is_some_and(|f| f.digest);
            let (head, body) = read_head(data, pos);
            pos = body;
            let ct = head.content_type.as_str();
            let is_message =
                matches!(ct, "message/rfc822" | "message/global") || (ct.is_empty() && in_digest);
            if let (true, Some(b)) = (ct.starts_with("multipart/"), head.boundary) {
                stack.push(Frame {
                    boundary: Some(b),
                    digest: ct == "multipart/digest",
                });
            } else if is_message {
                match head.encoding.as_str() {
                    "" | "7bit" | "8bit" | "binary" => {
                        stack.push(Frame {
                            boundary: None,
                            digest: false,
                        });
                        at_head = true;
                        continue;
                    }
                    e => encoded_from = Some((pos, e.contains("base64"), depth + 1)),
                }
            }
        }
        let Some((start, end, next)) = next_line(data, pos) else {
            break;
        };
        if let Some((k, closing)) = boundary_of(&data[start..end], &stack) {
            if let Some((from, base64, depth)) = encoded_from.take() {
                found.push((decode(&data[from..start], base64), depth));
            }
            if closing {
                stack.truncate(k);
            } else {
                stack.truncate(k + 1);
                at_head = true;
            }
        }
        pos = next;
    }
    if let Some((from, base64, depth)) = encoded_from {
        found.push((decode(&data[from.min(data.len())..], base64), depth));
    }
    Ok(found)
}

fn decode(body: &[u8], base64: bool) -> Vec<u8> {
    if base64 {
        super::mime::decode_base64_lenient(body)
    } else {
        super::mime::decode_quoted_printable_lenient(body)
    }
}

/// Counts the type tokens that can open a nested message: `rfc822`,
/// `global` and `digest` right after a `/` (spaces, line breaks and a
/// comment allowed between, as mail-parser allows them).
fn embedded_tokens(data: &[u8]) -> usize {
    let mut count = 0;
    for (i, _) in data.iter().enumerate().filter(|(_, &b)| b == b'/') {
        let mut j = i + 1;
        let mut comment_bytes = 0;
        while j < data.len() && comment_bytes < 256 {
            match data[j] {
                b' ' | b'\t' | b'\r' | b'\n' => j += 1,
                b'(' => {
                    while j < data.len() && data[j] != b')' && comment_bytes < 256 {
                        j += 1;
                        comment_bytes += 1;
                    }
                    j += 1;
                }
                _ => break,
            }
        }
        let rest = &data[j.min(data.len())..];
        if [&b"rfc822"[..], b"global", b"digest"]
            .iter()
            .any(|t| rest.len() >= t.len() && rest[..t.len()].eq_ignore_ascii_case(t))
        {
            count += 1;
        }
    }
    count
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `levels` messages, each the only content of the one around it.
    fn nested(levels: usize) -> Vec<u8> {
        let mut raw = b"From: an@gmail.com\r\nSubject: x\r\n".to_vec();
        for _ in 0..levels {
            raw.extend_from_slice(b"Content-Type: message/rfc822\r\n\r\n");
        }
        raw.extend_from_slice(b"Content-Type: text/plain\r\n\r\nYeu cau huy tai khoan\r\n");
        raw
    }

    #[test]
    fn thirty_five_thousand_nested_messages_are_refused_on_a_small_stack() {
        let raw = nested(35_000);
        assert!(raw.len() > 1_000_000);
        // A normal thread's stack: without the scan, dropping the parsed
        // message overflows it and aborts the whole test binary.
        let result = std::thread::Builder::new()
            .stack_size(2 << 20)
            .spawn(move || crate::intake::report::try_examine(&raw).map(|_| ()))
            .unwrap()
            .join()
            .expect("inspection must not panic");
        assert_eq!(
            result.unwrap_err(),
            crate::intake::Refused::TooDeep { limit: MAX_DEPTH }
        );
    }

    #[test]
    fn depth_and_parts_limits() {
        assert_eq!(check(&nested(MAX_DEPTH)), Ok(()));
        assert_eq!(
            check(&nested(MAX_DEPTH + 1)),
            Err(Refused::TooDeep { limit: MAX_DEPTH })
        );
        // Nested multiparts count as levels too.
        let mut raw = b"Subject: x\r\n".to_vec();
        for i in 0..20 {
            raw.extend(
                format!("Content-Type: multipart/mixed; boundary=\"b{i}\"\r\n\r\n--b{i}\r\n")
                    .bytes(),
            );
        }
        raw.extend_from_slice(b"Content-Type: text/plain\r\n\r\nx\r\n");
        assert_eq!(check(&raw), Err(Refused::TooDeep { limit: MAX_DEPTH }));
        // Many parts side by side.
        let mut raw = b"Content-Type: multipart/mixed; boundary=B\r\n\r\n".to_vec();
        for _ in 0..MAX_PARTS + 1 {
            raw.extend_from_slice(b"--B\r\nContent-Type: text/plain\r\n\r\nx\r\n");
        }
        assert_eq!(check(&raw), Err(Refused::TooManyParts { limit: MAX_PARTS }));
    }

    #[test]
    fn ordinary_forwards_pass() {
        // Twenty forwarded messages side by side are 2 levels deep.
        let mut raw = b"Content-Type: multipart/mixed; boundary=\"B\"\r\n\r\n--B\r\nContent-Type: text/plain\r\n\r\nxin chao\r\n".to_vec();
        for _ in 0..20 {
            raw.extend_from_slice(b"--B\r\nContent-Type: message/rfc822\r\n\r\nSubject: cu\r\nContent-Type: multipart/alternative; boundary=\"C\"\r\n\r\n--C\r\nContent-Type: text/plain\r\n\r\ncu\r\n--C--\r\n");
        }
        raw.extend_from_slice(b"--B--\r\n");
        assert_eq!(check(&raw), Ok(()));
    }

    #[test]
    fn nesting_hidden_in_base64_or_mid_line_boundaries_is_found() {
        use base64::Engine;
        let inner = nested(MAX_DEPTH);
        let mut raw = b"Content-Type: multipart/mixed; boundary=\"B\"\r\n\r\n--B\r\nContent-Type: message/rfc822\r\nContent-Transfer-Encoding: base64\r\n\r\n".to_vec();
        let b64 = base64::engine::general_purpose::STANDARD.encode(&inner);
        for chunk in b64.as_bytes().chunks(76) {
            raw.extend_from_slice(chunk);
            raw.extend_from_slice(b"\r\n");
        }
        raw.extend_from_slice(b"--B--\r\n");
        assert_eq!(check(&raw), Err(Refused::TooDeep { limit: MAX_DEPTH }));
        // Boundaries mid-line (mail-parser finds them, this scan does not):
        // the token count still stops the nesting.
        let mut raw = b"Content-Type: multipart/mixed; boundary=\"B\"\r\n\r\n--B\r\nContent-Type: text/plain\r\n\r\nx--B\r\n".to_vec();
        for _ in 0..MAX_EMBEDDED + 1 {
            raw.extend_from_slice(b"Content-Type: message/rfc822\r\n\r\n");
        }
        assert_eq!(
            check(&raw),
            Err(Refused::TooManyEmbedded {
                limit: MAX_EMBEDDED
            })
        );
    }
}
