//! One `Authentication-Results` field value (RFC 8601 section 2.2) read
//! into its authserv-id and results, leniently: the forms Gmail, Microsoft
//! 365, Yahoo and OpenDKIM/OpenDMARC write, comments and quoted strings
//! included. A result this desk does not know is skipped, never guessed.

use serde::{Deserialize, Serialize};

/// Who wrote the header.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AuthservId {
    /// The authserv-id, lower case (`mx.google.com`).
    Named(String),
    /// No authserv-id: the value starts with a result (Microsoft 365).
    Unnamed,
}

/// A method's result (RFC 8601 section 2.7, RFC 7489 section 11.2).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Outcome {
    /// Passed.
    Pass,
    /// Failed (`hardfail` too).
    Fail,
    /// SPF softfail.
    SoftFail,
    /// Neutral.
    Neutral,
    /// Not checked, or nothing to check (`bestguesspass` too: no policy).
    None,
    /// DKIM: signature valid but refused by local policy.
    Policy,
    /// A transient error, a DNS outage.
    TempError,
    /// A permanent error (a broken record).
    PermError,
}

impl Outcome {
    fn parse(s: &str) -> Option<Outcome> {
        Some(match s.to_ascii_lowercase().as_str() {
            "pass" => Outcome::Pass,
            "fail" | "hardfail" => Outcome::Fail,
            "softfail" => Outcome::SoftFail,
            "neutral" => Outcome::Neutral,
            "none" | "bestguesspass" => Outcome::None,
            "policy" => Outcome::Policy,
            "temperror" => Outcome::TempError,
            "permerror" => Outcome::PermError,
            _ => return None,
        })
    }

    /// The result as the header writes it.
    pub fn as_str(self) -> &'static str {
        match self {
            Outcome::Pass => "pass",
            Outcome::Fail => "fail",
            Outcome::SoftFail => "softfail",
            Outcome::Neutral => "neutral",
            Outcome::None => "none",
            Outcome::Policy => "policy",
            Outcome::TempError => "temperror",
            Outcome::PermError => "permerror",
        }
    }
}

/// One `method=result` with its properties.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ResInfo {
    /// The method, lower case, version dropped (`dkim`).
    pub method: String,
    /// The result.
    pub result: Outcome,
    /// `reason=`.
    pub reason: Option<String>,
    /// `ptype.property=value` and other `key=value` pairs, keys lower case,
    /// in order.
    pub properties: Vec<(String, String)>,
    /// Comments, without parentheses.
    pub comments: Vec<String>,
}

impl ResInfo {
    /// The first value of a property (`header.d`).
    pub fn property(&self, key: &str) -> Option<&str> {
        self.properties
            .iter()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.as_str())
    }

    /// `key=value` inside a comment, as Gmail writes `(p=NONE sp=NONE)`.
    pub fn comment_value(&self, key: &str) -> Option<&str> {
        self.comments.iter().find_map(|c| {
            c.split(|ch: char| ch.is_whitespace() || ch == ',' || ch == ';')
                .find_map(|pair| {
                    let (k, v) = pair.split_once('=')?;
                    k.eq_ignore_ascii_case(key).then_some(v)
                })
        })
    }
}

/// One header, read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuthResults {
    /// Who wrote it.
    pub authserv_id: AuthservId,
    /// Its results (empty for `none`).
    pub results: Vec<ResInfo>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Token {
    Word(String),
    Comment(String),
    Semi,
    Eq,
}

/// The most tokens read from one header.
const MAX_TOKENS: usize = 2000;

fn tokens(value: &str) -> Vec<Token> {
    let mut out = Vec::new();
    let mut chars = value.chars().peekable();
    while let Some(&c) = chars.peek() {
        if out.len() >= MAX_TOKENS {
            break;
        }
        match c {
            c if c.is_whitespace() => {
                chars.next();
            }
            ';' => {
                chars.next();
                out.push(Token::Semi);
            }
            '=' => {
                chars.next();
                out.push(Token::Eq);
            }
            '(' => {
                chars.next();
                let mut depth = 1;
                let mut text = String::new();
                while let Some(c) = chars.next() {
                    match c {
                        '\\' => text.extend(chars.next()),
                        '(' => {
                            depth += 1;
                            text.push(c);
                        }
                        ')' => {
                            depth -= 1;
                            if depth == 0 {
                                break;
                            }
                            text.push(c);
                        }
                        _ => text.push(c),
                    }
                }
                out.push(Token::Comment(text.trim().to_owned()));
            }
            '"' => {
                chars.next();
                let mut text = String::new();
                while let Some(c) = chars.next() {
                    match c {
                        '\\' => text.extend(chars.next()),
                        '"' => break,
                        _ => text.push(c),
                    }
                }
                out.push(Token::Word(text));
            }
            _ => {
                let mut text = String::new();
                while let Some(&c) = chars.peek() {
                    if c.is_whitespace() || matches!(c, ';' | '=' | '(' | '"') {
                        break;
                    }
                    text.push(c);
                    chars.next();
                }
                out.push(Token::Word(text));
            }
        }
    }
    out
}

/// Reads one `Authentication-Results` value; `None` when it has neither
/// an authserv-id nor a result.
pub fn parse_header(value: &str) -> Option<AuthResults> {
    let toks = tokens(value);
    let mut groups = toks.split(|t| *t == Token::Semi);
    let head: Vec<&Token> = groups
        .next()?
        .iter()
        .filter(|t| !matches!(t, Token::Comment(_)))
        .collect();
    let mut results = Vec::new();
    let authserv_id = match head.as_slice() {
        // `spf=pass …` with no authserv-id before it.
        [Token::Word(_), Token::Eq, ..] => {
            results.extend(resinfo(groups_first(&toks)));
            AuthservId::Unnamed
        }
        [Token::Word(id), ..] if !id.is_empty() => AuthservId::Named(id.to_ascii_lowercase()),
        _ => return None,
    };
    for g in groups {
        results.extend(resinfo(g));
    }
    Some(AuthResults {
        authserv_id,
        results,
    })
}

fn groups_first(toks: &[Token]) -> &[Token] {
    toks.split(|t| *t == Token::Semi).next().unwrap_or(&[])
}

/// One `method=result …` group; `None` for `none`, an empty group or an
/// unknown result.
fn resinfo(group: &[Token]) -> Option<ResInfo> {
    let mut comments = Vec::new();
    let mut words: Vec<&Token> = Vec::new();
    for t in group {
        match t {
            Token::Comment(c) => comments.push(c.clone()),
            other => words.push(other),
        }
    }
    let [Token::Word(method), Token::Eq, Token::Word(result), rest @ ..] = words.as_slice() else {
        return None;
    };
    let method = method
        .split('/')
        .next()
        .unwrap_or_default()
        .to_ascii_lowercase();
    let result = Outcome::parse(result)?;
    let mut properties = Vec::new();
    let mut reason = None;
    let mut i = 0;
    while i < rest.len() {
        match (rest.get(i), rest.get(i + 1), rest.get(i + 2)) {
            (Some(Token::Word(k)), Some(Token::Eq), Some(Token::Word(v))) => {
                let k = k.to_ascii_lowercase();
                if k == "reason" {
                    reason.get_or_insert_with(|| v.clone());
                } else {
                    properties.push((k, v.clone()));
                }
                i += 3;
            }
            _ => i += 1,
        }
    }
    Some(ResInfo {
        method,
        result,
        reason,
        properties,
        comments,
    })
}
