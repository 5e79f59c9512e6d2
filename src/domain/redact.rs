//! What the logs may say of a citizen: no full ID number, phone, email
//! address or name. Log lines go to a service manager's journal, to log
//! shippers and to people who have no business with the citizen, so every
//! line is passed through [`text`] before it is written, and call sites
//! that name a recipient mask it with [`email`].

use std::borrow::Cow;
use std::sync::LazyLock;

use regex::Regex;

/// An email address anywhere in a text.
static EMAIL: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r"[A-Za-z0-9._%+\-]+@[A-Za-z0-9\-]+(?:\.[A-Za-z0-9\-]+)*\.[A-Za-z]{2,}")
        .expect("static pattern")
});

/// A run of 9 or more digits (ID numbers are 9 or 12, phones 10 or 11),
/// possibly after a `+`, not inside a longer word (a hash).
static LONG_NUMBER: LazyLock<Regex> =
    LazyLock::new(|| Regex::new(r"\+?\b\d{9,}\b").expect("static pattern"));

/// `a***@g***.vn`: enough to tell two addresses apart, not to write one.
pub fn email(address: &str) -> String {
    let Some((local, domain)) = address.rsplit_once('@') else {
        return "***".into();
    };
    let first = |s: &str| s.chars().next().map(String::from).unwrap_or_default();
    let tld = domain.rsplit_once('.').map_or("", |(_, t)| t);
    format!("{}***@{}***.{tld}", first(local), first(domain))
}

/// `…1234`: the last four digits of a number.
pub fn number(digits: &str) -> String {
    let d: Vec<char> = digits.chars().filter(char::is_ascii_digit).collect();
    let tail: String = d[d.len().saturating_sub(4)..].iter().collect();
    format!("…{tail}")
}

/// A text with every email address and long number in it masked.
pub fn text(s: &str) -> Cow<'_, str> {
    let masked = EMAIL.replace_all(s, |c: &regex::Captures<'_>| email(&c[0]));
    match LONG_NUMBER.replace_all(&masked, |c: &regex::Captures<'_>| number(&c[0])) {
        Cow::Borrowed(_) => masked,
        Cow::Owned(o) => Cow::Owned(o),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn addresses_and_numbers_are_masked() {
        let line = "mail sent to=an.nguyen@gmail.com subject=\"Re: Yêu cầu hủy tài khoản 079203001234 [HTK-261201-7]\" sms to=+84912345678 cmnd 025123456";
        let out = text(line);
        for secret in [
            "an.nguyen@gmail.com",
            "079203001234",
            "84912345678",
            "025123456",
        ] {
            assert!(!out.contains(secret), "{out}");
        }
        assert!(out.contains("a***@g***.com"), "{out}");
        assert!(out.contains("…1234"), "{out}");
        assert!(out.contains("HTK-261201-7"), "the reference stays: {out}");
    }

    #[test]
    fn hashes_times_and_plain_lines_are_left_alone() {
        let line = "2026-12-01T12:07:03.613555Z sha256=5f2a99c8d1e0 outbox=17";
        assert!(matches!(text(line), Cow::Borrowed(_)));
        let hex = "sha256=0123456789abcdef0123456789";
        assert_eq!(text(hex), hex, "a number inside a hash is not a phone");
    }
}
