//! The types a configuration key can have, and what each knows about
//! itself: its name in the reference, how it is read from TOML and from an
//! environment variable, how its default is written, and how it shows in
//! `Debug` (a secret as `***`, a URL without its password).

use std::fmt;
use std::path::PathBuf;

/// What every configuration key's type provides to the one declaration
/// (`table.rs`): reading, writing and showing it.
pub trait Value: Sized {
    /// Its name in the reference (`string`, `integer`, `one of: …`).
    fn type_name() -> String;
    /// Read from a TOML value of the file; the message says what was wrong.
    fn from_toml(v: toml::Value) -> Result<Self, String>;
    /// Read from an environment variable's text.
    fn from_env(s: &str) -> Result<Self, String>;
    /// The value as TOML, for the reference and the example; `None` when
    /// it is not set at all.
    fn to_toml(&self) -> Option<toml::Value>;
    /// How it shows in `Debug`.
    fn show(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result;
    /// Whether it is a secret: also read from `<key>_file`, never shown.
    const SECRET: bool = false;
    /// The value read from the secret file `path` remembers it (secrets
    /// only).
    fn read_from(self, _path: &std::path::Path) -> Self {
        self
    }
}

/// Reads `v` as `T` through serde, with toml's message on a mismatch.
fn deserialize<T: serde::de::DeserializeOwned>(v: toml::Value) -> Result<T, String> {
    v.try_into::<T>().map_err(|e| e.message().trim().to_owned())
}

/// `"scheme://user:pass@host"` with the password masked: a database or
/// directory URL can carry one.
pub fn redact_url(url: &str) -> String {
    match (url.find("://"), url.rfind('@')) {
        (Some(s), Some(at)) if at > s => {
            let creds = &url[s + 3..at];
            match creds.split_once(':') {
                Some((user, _)) => format!("{}{user}:***{}", &url[..s + 3], &url[at..]),
                None => url.to_owned(),
            }
        }
        _ => url.to_owned(),
    }
}

impl Value for String {
    fn type_name() -> String {
        "string".into()
    }
    fn from_toml(v: toml::Value) -> Result<Self, String> {
        deserialize(v)
    }
    fn from_env(s: &str) -> Result<Self, String> {
        Ok(s.to_owned())
    }
    fn to_toml(&self) -> Option<toml::Value> {
        Some(toml::Value::String(self.clone()))
    }
    fn show(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(&redact_url(self), f)
    }
}

impl Value for PathBuf {
    fn type_name() -> String {
        "path".into()
    }
    fn from_toml(v: toml::Value) -> Result<Self, String> {
        deserialize(v)
    }
    fn from_env(s: &str) -> Result<Self, String> {
        Ok(PathBuf::from(s))
    }
    fn to_toml(&self) -> Option<toml::Value> {
        Some(toml::Value::String(self.display().to_string()))
    }
    fn show(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(self, f)
    }
}

impl Value for Option<PathBuf> {
    fn type_name() -> String {
        "path".into()
    }
    fn from_toml(v: toml::Value) -> Result<Self, String> {
        deserialize(v).map(Some)
    }
    fn from_env(s: &str) -> Result<Self, String> {
        // An empty variable unsets it, as a key left out of the file.
        Ok((!s.is_empty()).then(|| PathBuf::from(s)))
    }
    fn to_toml(&self) -> Option<toml::Value> {
        self.as_ref().and_then(|p| p.to_toml())
    }
    fn show(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(self, f)
    }
}

impl Value for Vec<String> {
    fn type_name() -> String {
        "list of strings".into()
    }
    fn from_toml(v: toml::Value) -> Result<Self, String> {
        deserialize(v)
    }
    /// A TOML array (`["a", "b"]`), or words separated by commas.
    fn from_env(s: &str) -> Result<Self, String> {
        if s.trim_start().starts_with('[') {
            let t: toml::Table =
                toml::from_str(&format!("v = {s}")).map_err(|e| e.message().trim().to_owned())?;
            return deserialize(t["v"].clone());
        }
        Ok(s.split(',')
            .map(str::trim)
            .filter(|w| !w.is_empty())
            .map(str::to_owned)
            .collect())
    }
    fn to_toml(&self) -> Option<toml::Value> {
        Some(toml::Value::Array(
            self.iter().cloned().map(toml::Value::String).collect(),
        ))
    }
    fn show(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(self, f)
    }
}

impl Value for bool {
    fn type_name() -> String {
        "boolean".into()
    }
    fn from_toml(v: toml::Value) -> Result<Self, String> {
        deserialize(v)
    }
    fn from_env(s: &str) -> Result<Self, String> {
        match s.trim() {
            "true" | "1" | "yes" => Ok(true),
            "false" | "0" | "no" | "" => Ok(false),
            other => Err(format!("{other:?} is not true or false")),
        }
    }
    fn to_toml(&self) -> Option<toml::Value> {
        Some(toml::Value::Boolean(*self))
    }
    fn show(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(self, f)
    }
}

/// Whole numbers: each type knows its range, and says it when a value is
/// outside it.
macro_rules! integer_value {
    ($($t:ty: $name:literal),*) => {$(
        impl Value for $t {
            fn type_name() -> String {
                $name.into()
            }
            fn from_toml(v: toml::Value) -> Result<Self, String> {
                match v {
                    toml::Value::Integer(i) => <$t>::try_from(i)
                        .map_err(|_| format!("{i} is out of range (0–{})", <$t>::MAX)),
                    other => Err(format!("expected an integer, found {}", other.type_str())),
                }
            }
            fn from_env(s: &str) -> Result<Self, String> {
                s.trim().parse().map_err(|_| {
                    format!("{s:?} is not an integer in 0–{}", <$t>::MAX)
                })
            }
            fn to_toml(&self) -> Option<toml::Value> {
                i64::try_from(*self).ok().map(toml::Value::Integer)
            }
            fn show(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                fmt::Debug::fmt(self, f)
            }
        }
    )*};
}
integer_value!(u16: "integer (0–65535)", u32: "integer", u64: "integer", usize: "integer");

/// A password, token or key: read from the file (the key itself or
/// `<key>_file`) or the environment (`…__<KEY>` or `…__<KEY>_FILE`), and
/// shown as `***` in `Debug` and `Display`, so no log line or debug dump
/// carries it. The value itself only through [`Secret::expose`].
#[derive(Clone, Default, PartialEq, Eq)]
pub struct Secret(String, Option<std::path::PathBuf>);

impl Secret {
    /// The file it was read from (`<key>_file`), for a secret that another
    /// program renews there (an OAuth2 token agent): read it again there.
    pub fn file(&self) -> Option<&std::path::Path> {
        self.1.as_deref()
    }

    /// The secret itself, for the one call that sends it.
    pub fn expose(&self) -> &str {
        &self.0
    }

    /// Whether none is set.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// The text of a secret file: its one line, without the line end an
    /// editor or `echo` adds.
    pub fn from_file_text(text: &str) -> Secret {
        let t = text.strip_suffix('\n').unwrap_or(text);
        Secret(t.strip_suffix('\r').unwrap_or(t).to_owned(), None)
    }
}

impl From<&str> for Secret {
    fn from(s: &str) -> Self {
        Secret(s.to_owned(), None)
    }
}

impl From<String> for Secret {
    fn from(s: String) -> Self {
        Secret(s, None)
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("***")
    }
}

impl fmt::Display for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("***")
    }
}

impl Value for Secret {
    fn type_name() -> String {
        "secret string".into()
    }
    fn from_toml(v: toml::Value) -> Result<Self, String> {
        deserialize::<String>(v).map(|s| Secret(s, None))
    }
    fn from_env(s: &str) -> Result<Self, String> {
        Ok(Secret(s.to_owned(), None))
    }
    fn to_toml(&self) -> Option<toml::Value> {
        // The reference and the example show an empty default, never a value.
        Some(toml::Value::String(String::new()))
    }
    fn read_from(self, path: &std::path::Path) -> Self {
        Secret(self.0, Some(path.to_owned()))
    }
    fn show(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(self, f)
    }
    const SECRET: bool = true;
}

/// A fixed set of choices written as lowercase words: an enum with its
/// names, `as_str`, `Display`, serde and [`Value`], where a word outside
/// the set is an error naming the valid ones.
macro_rules! choices {
    ($(
        $(#[doc = $doc:literal])*
        $Name:ident { $( $(#[doc = $vdoc:literal])* $Variant:ident = $word:literal ),+ $(,)? }
    )*) => {$(
        $(#[doc = $doc])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
        pub enum $Name {
            $( $(#[doc = $vdoc])* #[serde(rename = $word)] $Variant, )+
        }

        impl $Name {
            /// Every valid word, in the declaration's order.
            pub const CHOICES: &'static [&'static str] = &[$($word),+];

            /// The word naming it in the configuration.
            pub fn as_str(self) -> &'static str {
                match self { $( $Name::$Variant => $word, )+ }
            }
        }

        impl fmt::Display for $Name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(self.as_str())
            }
        }

        impl std::str::FromStr for $Name {
            type Err = String;
            fn from_str(s: &str) -> Result<Self, String> {
                match s {
                    $( $word => Ok($Name::$Variant), )+
                    other => Err(format!(
                        "unknown choice {other:?}; valid choices: {}",
                        Self::CHOICES.join(", ")
                    )),
                }
            }
        }

        impl Value for $Name {
            fn type_name() -> String {
                format!("one of: {}", Self::CHOICES.join(", "))
            }
            fn from_toml(v: toml::Value) -> Result<Self, String> {
                match v {
                    toml::Value::String(s) => s.parse(),
                    other => Err(format!(
                        "expected a string (one of: {}), found {}",
                        Self::CHOICES.join(", "),
                        other.type_str()
                    )),
                }
            }
            fn from_env(s: &str) -> Result<Self, String> {
                s.trim().parse()
            }
            fn to_toml(&self) -> Option<toml::Value> {
                Some(toml::Value::String(self.as_str().into()))
            }
            fn show(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                fmt::Debug::fmt(self, f)
            }
        }
    )*};
}

choices! {
    /// How a server connection is protected.
    Security {
        /// TLS from the first byte (IMAPS 993, SMTPS 465).
        Tls = "tls",
        /// Plain, then STARTTLS.
        Starttls = "starttls",
        /// No encryption (loopback tests only).
        Plain = "plain",
    }
    /// `[mailbox] kind`: where mail comes from.
    MailboxKind {
        /// A local Maildir spool (the embedded default).
        Maildir = "maildir",
        /// An IMAP server.
        Imap = "imap",
    }
    /// `[mail_out] kind`: how mail goes out.
    MailOutKind {
        /// A local Maildir outbox (the embedded default).
        Maildir = "maildir",
        /// An SMTP submission server.
        Smtp = "smtp",
    }
    /// `[accounts] kind`: where portal accounts live.
    AccountsKind {
        /// The desk's own table (the embedded default).
        Embedded = "embedded",
        /// An LDAP directory.
        Ldap = "ldap",
        /// Statements against the portal's database.
        Sql = "sql",
        /// The portal's API (`docs/portal-accounts.openapi.json`).
        Rest = "rest",
    }
    /// `[sms] kind`: how SMS go out.
    SmsKind {
        /// One JSON line per SMS in a file (the embedded default).
        File = "file",
        /// Kannel's smsbox.
        Kannel = "kannel",
        /// A JSON-over-HTTP gateway.
        Json = "json",
    }
    /// `[sender_auth] check`: whose word on a sender's DKIM, SPF and DMARC
    /// the desk takes.
    SenderCheckWay {
        /// The trusted receiving servers' `Authentication-Results`.
        Headers = "headers",
        /// huytk's own check at ingest, with a DNS resolver.
        Resolver = "resolver",
    }
}

// The enum is written by `choices!`, which has no place for `#[default]`.
#[allow(clippy::derivable_impls)]
impl Default for Security {
    /// TLS, as before the table: the safe choice.
    fn default() -> Self {
        Security::Tls
    }
}

/// Shows a key's value in `Debug` through [`Value::show`].
pub(crate) struct Shown<'a, T: Value>(pub &'a T);

impl<T: Value> fmt::Debug for Shown<'_, T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.show(f)
    }
}
