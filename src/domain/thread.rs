//! What ties a follow-up to its request, and what a letter may echo.
//!
//! References like `HTK-261201-7` are sequential, so anyone can guess one.
//! A follow-up therefore joins a request only through a [`ThreadToken`]:
//! 80 random bits the desk puts in every letter's Message-ID and subject,
//! which only the request's own correspondent has seen.
//!
//! Letters go out from the desk's official address, so whatever they echo
//! of a stranger's mail must look like what it claims to be: a name that
//! looks like a name, a number made of digits. Anything else is left out.

use std::fmt;

/// Hex digits in a token (80 bits).
const TOKEN_LEN: usize = 20;

/// The unguessable secret of one request's mail thread.
#[derive(Clone, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct ThreadToken(String);

/// A string that is not a thread token.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("not a thread token")]
pub struct NotAToken;

impl ThreadToken {
    /// Parses 20 lower-case hex digits.
    pub fn parse(s: &str) -> Result<ThreadToken, NotAToken> {
        if s.len() == TOKEN_LEN && s.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f')) {
            Ok(ThreadToken(s.to_owned()))
        } else {
            Err(NotAToken)
        }
    }

    /// A token from 10 random bytes (the caller brings the randomness).
    pub fn from_bytes(bytes: [u8; TOKEN_LEN / 2]) -> ThreadToken {
        ThreadToken(hex::encode(bytes))
    }

    /// The hex text.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The tag letters add to their subject, and a reply keeps: `[#…]`.
    pub fn subject_tag(&self) -> String {
        format!("[#{}]", self.0)
    }

    /// The token in a subject's `[#…]` tag, if any.
    pub fn in_subject(subject: &str) -> Option<ThreadToken> {
        subject.match_indices("[#").find_map(|(i, _)| {
            let rest = &subject[i + 2..];
            let end = rest.find(']')?;
            ThreadToken::parse(rest[..end].trim()).ok()
        })
    }

    /// Compares in constant time, so timing tells nothing of a guess.
    pub fn matches(&self, other: &ThreadToken) -> bool {
        self.0
            .bytes()
            .zip(other.0.bytes())
            .fold(0u8, |acc, (a, b)| acc | (a ^ b))
            == 0
    }
}

impl fmt::Debug for ThreadToken {
    // A token in a log would let its reader join any thread.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("ThreadToken(…)")
    }
}

impl TryFrom<String> for ThreadToken {
    type Error = NotAToken;
    fn try_from(s: String) -> Result<Self, Self::Error> {
        ThreadToken::parse(&s)
    }
}

impl From<ThreadToken> for String {
    fn from(t: ThreadToken) -> String {
        t.0
    }
}

/// A Message-ID the desk wrote for a request: `<REFERENCE.what.TOKEN@domain>`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OurMessageId {
    /// The request's reference.
    pub reference: String,
    /// The thread token it carries.
    pub token: ThreadToken,
}

impl OurMessageId {
    /// Writes one: `what` names the letter's cause (dots and letters only).
    pub fn format(reference: &str, what: &str, token: &ThreadToken, domain: &str) -> String {
        let what: String = what
            .chars()
            .map(|c| if c.is_ascii_alphanumeric() { c } else { '.' })
            .collect();
        format!("<{reference}.{what}.{}@{domain}>", token.as_str())
    }

    /// Reads one back from a References or In-Reply-To entry (with or
    /// without angle brackets); anything else is not ours.
    pub fn parse(id: &str) -> Option<OurMessageId> {
        let id = id.trim().trim_start_matches('<').trim_end_matches('>');
        let (local, _domain) = id.split_once('@')?;
        let (reference, rest) = local.split_once('.')?;
        let token = rest.rsplit('.').next()?;
        if !reference.starts_with("HTK-") {
            return None;
        }
        Some(OurMessageId {
            reference: reference.to_owned(),
            token: ThreadToken::parse(token).ok()?,
        })
    }
}

/// The name a letter may greet: one to six words, each a capitalised run
/// of letters, no digits, links, addresses or punctuation; else none (the
/// letter says "Quý công dân"). A sentence posing as a name is not greeted.
pub fn salutation_name(name: &str) -> Option<String> {
    let words: Vec<&str> = name.split_whitespace().collect();
    let word_ok = |w: &&str| {
        w.chars().next().is_some_and(char::is_uppercase)
            && w.chars().all(|c| c.is_alphabetic() || is_combining(c))
            && w.chars().count() <= 12
    };
    let looks_like_a_name =
        (1..=6).contains(&words.len()) && words.iter().all(word_ok) && name.chars().count() <= 60;
    looks_like_a_name.then(|| words.join(" "))
}

/// An ID number a letter may echo: 9 or 12 digits, nothing else.
pub fn echoable_number(number: &str) -> Option<String> {
    (matches!(number.len(), 9 | 12) && number.bytes().all(|b| b.is_ascii_digit()))
        .then(|| number.to_owned())
}

fn is_combining(c: char) -> bool {
    unicode_normalization::char::is_combining_mark(c)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn token() -> ThreadToken {
        ThreadToken::from_bytes([0xab; 10])
    }

    #[test]
    fn tokens_parse_only_their_own_shape() {
        assert_eq!(ThreadToken::parse("abababababababababab"), Ok(token()));
        for bad in [
            "",
            "ababababababababab",
            "ABABABABABABABABABAB",
            "abababababababababax",
            "abababababababababab0",
        ] {
            assert_eq!(ThreadToken::parse(bad), Err(NotAToken), "{bad:?}");
        }
        assert!(token().matches(&token()));
        assert!(!token().matches(&ThreadToken::from_bytes([0xac; 10])));
        assert_eq!(format!("{:?}", token()), "ThreadToken(…)");
    }

    #[test]
    fn subjects_carry_the_token_through_replies() {
        let s = format!(
            "Re: RE: [HTK-261201-7] Đã tiếp nhận {}",
            token().subject_tag()
        );
        assert_eq!(ThreadToken::in_subject(&s), Some(token()));
        assert_eq!(ThreadToken::in_subject("[HTK-261201-7] no token"), None);
        assert_eq!(ThreadToken::in_subject("[#short] [#"), None);
    }

    #[test]
    fn our_message_ids_round_trip_and_strangers_do_not() {
        let id = OurMessageId::format("HTK-261201-7", "reply:ab12", &token(), "desk.example");
        assert_eq!(
            id,
            "<HTK-261201-7.reply.ab12.abababababababababab@desk.example>"
        );
        assert_eq!(
            OurMessageId::parse(&id),
            Some(OurMessageId {
                reference: "HTK-261201-7".into(),
                token: token()
            })
        );
        // The guessable shape of old letters, and a stranger's own ids.
        for other in [
            "<HTK-261201-7.decision.7.3@desk.example>",
            "<HTK-261201-7@desk.example>",
            "<CAF=abc@mail.gmail.com>",
            "abababababababababab",
        ] {
            assert_eq!(OurMessageId::parse(other), None, "{other}");
        }
    }

    #[test]
    fn letters_greet_names_and_nothing_else() {
        assert_eq!(
            salutation_name(" Nguyễn  Văn An "),
            Some("Nguyễn Văn An".into())
        );
        assert_eq!(
            salutation_name("NGUYỄN VĂN AN"),
            Some("NGUYỄN VĂN AN".into())
        );
        assert_eq!(
            salutation_name("Nguye\u{302}\u{303}n Va\u{306}n An"),
            Some("Nguye\u{302}\u{303}n Va\u{306}n An".into())
        );
        for bad in [
            "",
            "Tài khoản của bạn bị khóa, đăng nhập tại http://evil.example để giữ lại",
            "An http://x.y",
            "an@evil.example",
            "Nguyen Van An 0912345678",
            "Khách hàng: bấm vào đây",
            "A B C D E F G H",
            "<b>An</b>",
            "www.evil.vn",
            "Tài khoản của bạn sẽ bị khóa",
            "nguyễn văn an",
        ] {
            assert_eq!(salutation_name(bad), None, "{bad}");
        }
        assert_eq!(echoable_number("079203001234"), Some("079203001234".into()));
        assert_eq!(echoable_number("025123456"), Some("025123456".into()));
        for bad in ["0792030012", "07920300123x", "079203001234 gọi 1900"] {
            assert_eq!(echoable_number(bad), None, "{bad}");
        }
    }
}
