//! The request's fields from the subject and the citizen's new text:
//! the ID number, name, phone and reason. Everything matches on the folded
//! form (see [`crate::domain::text`]) and cuts values out of the original.

use regex::Regex;
use std::collections::BTreeMap;
use std::sync::LazyLock;

use crate::domain::text::{fold, squash_spaces, Folded};

fn re(p: &str) -> Regex {
    Regex::new(p).expect("static pattern")
}

/// "yêu cầu hủy tài khoản" in any spelling, on folded text.
static REQUEST_PHRASE: LazyLock<Regex> =
    LazyLock::new(|| re(r"yeu\s*cau\s+(?:xin\s+)?huy\s+(?:bo\s+)?tai\s*khoan"));

/// Reply and forward prefixes, Vietnamese ones included, on folded text.
static SUBJECT_PREFIX: LazyLock<Regex> = LazyLock::new(|| {
    re(
        r"^\s*(?:(?:re|fw|fwd|tl|tr|aw|sv|vs|rv|ref|chuyen tiep|tra loi|phan hoi)\s*(?:\[\d+\]|\(\d+\))?\s*[:：]\s*|\[(?:external|ext|spam)\]\s*)",
    )
});

/// Lines that open quoted history in the common clients, on folded text.
static QUOTE_HEADER: LazyLock<Regex> = LazyLock::new(|| {
    re(
        r"^\s*(?:on|vao|luc|vao luc|le|am|el)\b.{0,300}\b(?:wrote|da viet|viet|a ecrit|schrieb|escribio)\s*:\s*$",
    )
});
static ORIGINAL_MESSAGE: LazyLock<Regex> = LazyLock::new(|| {
    re(r"^\s*-{2,}\s*(?:original message|tin nhan goc|thu goc|thu ban dau|reply message)\s*-{2,}")
});
static OUTLOOK_FROM: LazyLock<Regex> =
    LazyLock::new(|| re(r"^\s*\*?(?:from|tu|nguoi gui)\s*:\*?\s"));
static OUTLOOK_NEXT: LazyLock<Regex> = LazyLock::new(|| {
    re(r"^\s*\*?(?:sent|date|to|subject|da gui|ngay|ngay gui|den|gui|chu de|tieu de)\s*:")
});

/// The labelled fields of the body.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Label {
    Name,
    Phone,
    Reason,
    /// Labels of fields we do not read, which still end a value before them.
    Other,
}

static LABELS: LazyLock<Vec<(Label, Regex)>> = LazyLock::new(|| {
    // Each pattern matches at a word start of a folded line and ends where
    // the value begins. After the label words, a few more words may come
    // before a colon ("Lý do hủy tài khoản:", "Số điện thoại liên hệ:");
    // without a colon, a dash or plain space separates the value.
    let sep = r"(?:[^:：\d\n]{0,30}?[:：=]|\s*[-–](?:\s|$)|)\s*";
    let label = |l: Label, words: &str| (l, re(&format!(r"\b(?:{words}){sep}")));
    vec![
        label(
            Label::Name,
            r"ho\s*(?:va|&|,|/)?\s*ten|toi\s+ten\s+la|ten\s+toi\s+la|ten\s+day\s+du|full\s*name",
        ),
        (Label::Name, re(r"(?:^|[\s+*•\-])(?:ten|name)\s*[:：]\s*")),
        label(
            Label::Phone,
            r"(?:so\s*)?(?:dien\s*thoai|di\s*dong)|(?:so\s*)?(?:sdt|dtdd|dt)|phone(?:\s*number)?|mobile|tel|zalo",
        ),
        label(Label::Reason, r"ly\s*do|li\s*do|nguyen\s*nhan|reason"),
        (
            Label::Other,
            re(
                r"\b(?:ngay\s*(?:thang\s*nam\s*)?sinh|dia\s*chi|e-?mail|so\s*(?:cccd|cmnd|can\s*cuoc|dinh\s*danh)|gioi\s*tinh|que\s*quan|noi\s*thuong\s*tru)\s*[:：]",
            ),
        ),
    ]
});

/// What the body says, in the citizen's words.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(default)]
pub struct BodyFields {
    /// `Họ và tên`.
    pub full_name: Option<String>,
    /// The phone as written (still to be parsed), if a phone label was found.
    pub phone_written: Option<String>,
    /// A parseable mobile number found without a label, as a fallback.
    pub phone_unlabelled: Option<String>,
    /// `Lý do`.
    pub reason: Option<String>,
    /// The digits on the `Yêu cầu hủy tài khoản <số>` line.
    pub request_number: Option<String>,
}

/// Drops the reply and forward prefixes from a subject.
pub fn subject_core(subject: &str) -> &str {
    let mut s = subject;
    loop {
        let f = Folded::new(s);
        match SUBJECT_PREFIX.find(f.as_str()) {
            Some(m) if m.end() > 0 => s = &s[f.original_offset(m.end())..],
            _ => return s.trim(),
        }
    }
}

/// True when the subject carries the request phrase.
pub fn subject_has_request_phrase(subject: &str) -> bool {
    REQUEST_PHRASE.is_match(&fold(subject))
}

/// A request reference or thread tag the desk wrote into a subject.
static OUR_MARKS: LazyLock<Regex> =
    LazyLock::new(|| Regex::new(r"\[#[0-9a-fA-F]{20}\]|HTK-\d{6}-\d+").expect("static pattern"));

/// The ID number written after the request phrase in the subject.
pub fn subject_number(subject: &str) -> Option<String> {
    // The desk's own marks in a reply's subject (a reference, a thread
    // tag) carry digits that are not the citizen's number.
    let f = fold(&OUR_MARKS.replace_all(subject, " "));
    let m = REQUEST_PHRASE.find(&f)?;
    number_after(&f[m.end()..])
}

/// The citizen's new text: quoted history cut off.
pub fn new_text(body: &str) -> String {
    let lines: Vec<&str> = body.lines().collect();
    let mut out = String::with_capacity(body.len());
    let mut i = 0;
    while i < lines.len() {
        let line = lines[i];
        let folded = fold(line);
        let t = folded.trim_start();
        if t.starts_with('>') {
            i += 1;
            continue;
        }
        if QUOTE_HEADER.is_match(&folded) || ORIGINAL_MESSAGE.is_match(&folded) {
            break;
        }
        // An attribution wrapped over two lines by the client.
        if let Some(next) = lines.get(i + 1) {
            if (t.starts_with("on ") || t.starts_with("vao ") || t.starts_with("luc "))
                && QUOTE_HEADER.is_match(&format!("{} {}", folded.trim_end(), fold(next).trim()))
            {
                break;
            }
        }
        // Outlook: "From: … / Sent: …" header block, often after a rule.
        if OUTLOOK_FROM.is_match(&folded)
            && lines[i + 1..]
                .iter()
                .take(4)
                .any(|l| OUTLOOK_NEXT.is_match(&fold(l)))
        {
            break;
        }
        if t.len() >= 10 && t.chars().all(|c| c == '_') {
            if let Some(next) = lines.get(i + 1) {
                if OUTLOOK_FROM.is_match(&fold(next)) {
                    break;
                }
            }
        }
        out.push_str(line);
        out.push('\n');
        i += 1;
    }
    out
}

/// The first ID number in folded text after a request phrase: digit groups
/// joined across single spaces, dots and dashes ("0792.0300.1234"); of a
/// longer run, the leading groups that make 12 or 9 digits.
pub fn number_after(folded_rest: &str) -> Option<String> {
    let bytes = folded_rest.as_bytes();
    // The number must come soon after the phrase: skip at most a few words
    // ("+", "số CCCD:", "của tôi là").
    let start = bytes.iter().position(u8::is_ascii_digit)?;
    if start > 60 {
        return None;
    }
    let mut groups: Vec<&str> = Vec::new();
    let mut i = start;
    loop {
        let g_start = i;
        while i < bytes.len() && bytes[i].is_ascii_digit() {
            i += 1;
        }
        groups.push(&folded_rest[g_start..i]);
        // A separator: spaces with at most one '.' or '-' among them.
        let mut j = i;
        let mut marks = 0;
        while j < bytes.len() && j - i < 3 && matches!(bytes[j], b' ' | b'.' | b'-') {
            if bytes[j] != b' ' {
                marks += 1;
            }
            j += 1;
        }
        if j > i && marks <= 1 && j < bytes.len() && bytes[j].is_ascii_digit() {
            i = j;
        } else {
            break;
        }
    }
    let all: String = groups.concat();
    if all.len() == 12 || all.len() == 9 {
        return Some(all);
    }
    for want in [12, 9] {
        let mut acc = String::new();
        for g in &groups {
            acc.push_str(g);
            if acc.len() == want {
                return Some(acc);
            }
            if acc.len() > want {
                break;
            }
        }
    }
    Some(if groups.len() > 1 {
        groups[0].to_owned()
    } else {
        all
    })
}

/// Reads the labelled fields and the request line from the new text.
pub fn body_fields(new_text: &str) -> BodyFields {
    let mut fields = BodyFields::default();
    let lines: Vec<&str> = new_text.lines().collect();
    for (i, line) in lines.iter().enumerate() {
        let f = Folded::new(line);
        let folded = f.as_str();

        if fields.request_number.is_none() {
            if let Some(m) = REQUEST_PHRASE.find(folded) {
                let rest = &folded[m.end()..];
                let n = number_after(rest).or_else(|| {
                    // "Yêu cầu hủy tài khoản:" with the number on the next line.
                    rest.trim_matches(|c: char| !c.is_alphanumeric())
                        .is_empty()
                        .then(|| lines.get(i + 1).and_then(|l| number_after(&fold(l))))
                        .flatten()
                });
                fields.request_number = n;
            }
        }

        // Every label on this line, in order of position; a match that
        // overlaps one of an earlier pattern is dropped. The matches kept
        // are disjoint, so one ordered map answers "does it overlap?" in
        // O(log n): a line full of labels stays linear, not quadratic.
        let mut found: BTreeMap<usize, (usize, Label)> = BTreeMap::new();
        for (label, r) in LABELS.iter() {
            for m in r.find_iter(folded) {
                let overlaps = found
                    .range(..m.end())
                    .next_back()
                    .is_some_and(|(_, &(end, _))| end > m.start());
                if !overlaps {
                    found.insert(m.start(), (m.end(), *label));
                }
            }
        }
        let found: Vec<(usize, usize, Label)> =
            found.into_iter().map(|(s, (e, l))| (s, e, l)).collect();
        // "Họ và tên:" with the value on the next line: read once per line,
        // however many empty labels this line has.
        // That value is tried once per kind of label: the same value
        // gives the same answer.
        let mut next_value: Option<String> = None;
        let mut tried_next = [false; 4];
        for (k, &(_, value_start, label)) in found.iter().enumerate() {
            let value_end = found.get(k + 1).map_or(folded.len(), |(s, _, _)| *s);
            let own = clean_value(f.original_slice(value_start, value_end));
            let value: &str = if own.is_empty() {
                if std::mem::replace(&mut tried_next[label as usize], true) {
                    continue;
                }
                next_value.get_or_insert_with(|| continuation(lines.get(i + 1).copied()))
            } else {
                &own
            };
            match label {
                Label::Name if fields.full_name.is_none() && plausible_name(&name_part(value)) => {
                    fields.full_name = Some(name_part(value));
                }
                Label::Phone
                    if fields.phone_written.is_none()
                        && value.bytes().any(|b| b.is_ascii_digit()) =>
                {
                    fields.phone_written = Some(phone_part(value));
                }
                Label::Reason if fields.reason.is_none() && !value.is_empty() => {
                    fields.reason = Some(value.to_owned());
                }
                _ => {}
            }
        }
    }
    if fields.phone_written.is_none() {
        fields.phone_unlabelled = unlabelled_phone(new_text);
    }
    fields
}

/// The value a label left empty finds on the next line, unless that line
/// is itself labelled or the request line.
fn continuation(next: Option<&str>) -> String {
    let Some(next) = next else {
        return String::new();
    };
    let nf = fold(next);
    if LABELS.iter().any(|(_, r)| r.is_match(&nf)) || REQUEST_PHRASE.is_match(&nf) {
        String::new()
    } else {
        clean_value(next)
    }
}

/// Trims bullets, separators and closing punctuation around a value.
fn clean_value(s: &str) -> String {
    let t = s.trim_matches(|c: char| {
        c.is_whitespace()
            || matches!(
                c,
                ',' | ';' | '|' | '-' | '–' | ':' | '+' | '*' | '•' | '.' | '"' | '\''
            )
    });
    squash_spaces(t)
}

/// The name itself out of a value that may go on: "Nguyễn Văn An, sinh
/// năm 1990", "Nguyễn Văn An (chủ tài khoản)", "Nguyễn Văn An - Hà Nội".
/// Vietnamese names carry no commas, parentheses or dashes.
fn name_part(v: &str) -> String {
    let mut end = v.len();
    for stop in [",", ";", "(", "[", "|", " - ", " – ", ". ", "/"] {
        if let Some(i) = v.find(stop) {
            end = end.min(i);
        }
    }
    clean_value(&v[..end])
}

/// A name has letters, few digits and a sane length.
fn plausible_name(v: &str) -> bool {
    let letters = v.chars().filter(|c| c.is_alphabetic()).count();
    let digits = v.chars().filter(|c| c.is_ascii_digit()).count();
    letters >= 2 && digits == 0 && v.chars().count() <= 100
}

/// The leading run of a phone value: digits and the characters people put
/// between them; stops at words ("0912345678 (Zalo)").
fn phone_part(v: &str) -> String {
    let end = v
        .char_indices()
        .find(|(_, c)| {
            !(c.is_ascii_digit() || matches!(c, '+' | ' ' | '.' | '-' | '(' | ')' | '\u{a0}'))
        })
        .map_or(v.len(), |(i, _)| i);
    let run = v[..end].trim_matches(|c: char| c == '-' || c == '(' || c.is_whitespace());
    if run.bytes().any(|b| b.is_ascii_digit()) {
        run.to_owned()
    } else {
        v.to_owned()
    }
}

static PHONE_LIKE: LazyLock<Regex> =
    LazyLock::new(|| re(r"(?:\+|\b)(?:84|0)[0-9][0-9 .\-]{7,13}[0-9]\b"));

/// A mobile number written without a label ("SĐT" missing): the first run
/// of digits anywhere in the text that parses as a Vietnamese mobile.
fn unlabelled_phone(text: &str) -> Option<String> {
    PHONE_LIKE
        .find_iter(text)
        .map(|m| m.as_str().to_owned())
        .find(|c| crate::domain::Phone::parse(c).is_ok())
}

/// Splits a written phone value into candidates: the whole run, and each
/// part when several numbers were written ("0912 345 678 - 0987 654 321").
pub fn phone_candidates(written: &str) -> Vec<String> {
    let mut out = vec![written.to_owned()];
    for sep in [" - ", "/", ",", ";", " hoặc ", " or "] {
        if written.contains(sep) {
            out.extend(written.split(sep).map(|s| s.trim().to_owned()));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn subject_prefixes_go() {
        assert_eq!(subject_core("Re: Fwd: TL: Yêu cầu"), "Yêu cầu");
        assert_eq!(subject_core("Chuyển tiếp: RE[2]: Yêu cầu"), "Yêu cầu");
        assert_eq!(subject_core("Yêu cầu hủy"), "Yêu cầu hủy");
    }

    #[test]
    fn numbers_in_every_shape() {
        for (s, want) in [
            ("Yêu cầu hủy tài khoản + 079203001234", "079203001234"),
            ("Yêu cầu hủy tài khoản [079203001234]", "079203001234"),
            ("YÊU CẦU HUỶ TÀI KHOẢN 0792.0300.1234", "079203001234"),
            ("Yeu cau huy tai khoan 079 203 001 234", "079203001234"),
            ("Yêu cầu hủy tài khoản - 079-203-001-234", "079203001234"),
            ("Yêu cầu hủy tài khoản số CCCD: 187389815", "187389815"),
            (
                "Yêu cầu hủy tài khoản 079203001234 - 0912345678",
                "079203001234",
            ),
            ("Yêu cầu hủy tài khoản + 07920300123", "07920300123"),
        ] {
            assert_eq!(subject_number(s).as_deref(), Some(want), "{s}");
        }
        assert_eq!(subject_number("Yêu cầu hủy tài khoản"), None);
        // Our own reference and thread tag in a reply are not its number.
        assert_eq!(
            subject_number(
                "Re: [HTK-261201-1] Yêu cầu hủy tài khoản cần bổ sung [#e42ba982ab7e7a012e16]"
            ),
            None
        );
        assert_eq!(
            subject_number(
                "Re: [HTK-261201-1] Yêu cầu hủy tài khoản + 079203001234 [#e42ba982ab7e7a012e16]"
            )
            .as_deref(),
            Some("079203001234")
        );
    }

    #[test]
    fn quoted_history_is_cut() {
        let body = "Họ và tên: An\nSĐT: 0912345678\n\nVào Th 2, 15 thg 7, 2024 lúc 09:30 Desk <a@b> đã viết:\n> Họ và tên: Bình\n";
        let t = new_text(body);
        assert!(t.contains("An") && !t.contains("Bình"));
        let body = "Mới\nOn Mon, Jul 15, 2024 at 9:30 AM Nguyễn Văn An <\nan@gmail.com> wrote:\nHọ và tên: Cũ\n";
        assert!(!new_text(body).contains("Cũ"));
        let body =
            "Mới\n________________________________\nFrom: Desk\nSent: Monday\nHọ và tên: Cũ\n";
        assert!(!new_text(body).contains("Cũ"));
    }

    #[test]
    fn labelled_fields() {
        let f = body_fields("+ Họ và tên: Nguyễn Văn An\n+ Số điện thoại: 0912 345 678 (Zalo)\n+ Yêu cầu hủy tài khoản 079203001234\n+ Lý do: Sai thông tin\n");
        assert_eq!(f.full_name.as_deref(), Some("Nguyễn Văn An"));
        assert_eq!(f.phone_written.as_deref(), Some("0912 345 678"));
        assert_eq!(f.request_number.as_deref(), Some("079203001234"));
        assert_eq!(f.reason.as_deref(), Some("Sai thông tin"));
    }

    #[test]
    fn several_labels_on_one_line() {
        let f = body_fields("Họ tên: Trần Thị Bình, SĐT: 0987654321, Lý do: trùng tài khoản");
        assert_eq!(f.full_name.as_deref(), Some("Trần Thị Bình"));
        assert_eq!(f.phone_written.as_deref(), Some("0987654321"));
        assert_eq!(f.reason.as_deref(), Some("trùng tài khoản"));
    }

    #[test]
    fn words_between_label_and_colon() {
        let f = body_fields("Họ và tên người yêu cầu: Lê Văn Tám\nSố điện thoại liên hệ của tôi: 0912 345 678\nLý do hủy tài khoản: bị trùng");
        assert_eq!(f.full_name.as_deref(), Some("Lê Văn Tám"));
        assert_eq!(f.phone_written.as_deref(), Some("0912 345 678"));
        assert_eq!(f.reason.as_deref(), Some("bị trùng"));
    }

    #[test]
    fn labels_without_colons_and_other_labels() {
        let f = body_fields("HỌ VÀ TÊN NGUYỄN THỊ MAI\nSĐT/Zalo: 0912345678\nLý do sai ngày sinh");
        assert_eq!(f.full_name.as_deref(), Some("NGUYỄN THỊ MAI"));
        assert_eq!(f.phone_written.as_deref(), Some("0912345678"));
        assert_eq!(f.reason.as_deref(), Some("sai ngày sinh"));
        let f = body_fields("Họ và tên: Trần Văn Ba Ngày sinh: 01/01/1990");
        assert_eq!(f.full_name.as_deref(), Some("Trần Văn Ba"));
    }

    #[test]
    fn the_name_stops_where_the_sentence_goes_on() {
        for line in [
            "Tôi tên là Nguyễn Văn An, sinh năm 1990, ở Hà Nội",
            "Họ và tên: Nguyễn Văn An (chủ tài khoản)",
            "Họ và tên: Nguyễn Văn An - Hà Nội",
            "Họ và tên: Nguyễn Văn An.",
        ] {
            assert_eq!(
                body_fields(line).full_name.as_deref(),
                Some("Nguyễn Văn An"),
                "{line}"
            );
        }
    }

    #[test]
    fn unlabelled_phone_is_found() {
        let f = body_fields("Tôi muốn hủy. Liên hệ 0912.345.678 nhé");
        assert_eq!(f.phone_written, None);
        assert_eq!(f.phone_unlabelled.as_deref(), Some("0912.345.678"));
    }
}

#[cfg(test)]
mod line_cost {
    use crate::intake::{inspect, InspectOptions};
    use std::time::{Duration, Instant};

    /// One body line of `bytes` bytes, full of labels.
    fn labelled_line(bytes: usize) -> String {
        let unit = "sdt: 1 ten: A ";
        unit.repeat(bytes / unit.len() + 1)
    }

    fn message(body: &str) -> Vec<u8> {
        format!(
            "From: an@gmail.com\r\nSubject: Yêu cầu hủy tài khoản 079203001234\r\nContent-Type: text/plain; charset=utf-8\r\n\r\n{body}\r\n"
        )
        .into_bytes()
    }

    #[test]
    fn a_two_megabyte_line_of_labels_is_read_in_linear_time() {
        let raw = message(&labelled_line(2 << 20));
        let start = Instant::now();
        let report = inspect(&raw, None, &InspectOptions { current_year: 2026 });
        let took = start.elapsed();
        eprintln!("2 MiB line of labels: {took:?}");
        assert_eq!(report.assessment.id_number.as_deref(), Some("079203001234"));
        // Quadratic, this took about two minutes; linear, well under a second.
        assert!(took < Duration::from_secs(5), "{took:?}");
    }

    /// Labels whose values are all on the next line read that line once.
    #[test]
    fn many_empty_labels_before_a_long_line_stay_linear() {
        let body = format!(
            "{}\n{}",
            "sdt: - lý do: - ".repeat(20_000),
            "x".repeat(1 << 20)
        );
        let raw = message(&body);
        let start = Instant::now();
        let _ = inspect(&raw, None, &InspectOptions { current_year: 2026 });
        let took = start.elapsed();
        eprintln!("empty labels before a 1 MiB line: {took:?}");
        assert!(took < Duration::from_secs(5), "{took:?}");
    }
}
