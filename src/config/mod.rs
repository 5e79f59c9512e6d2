//! Configuration: a TOML file, every key optional, and the environment over
//! it. With no file at all, `huytk serve` runs the embedded default:
//! SQLite, a Maildir spool, and a Maildir outbox under `./huytk-data`.
//!
//! Every key is declared once, in `table.rs`; the reference
//! (`docs/configuration.md`) is generated from that table. Each key
//! `[section] key` can be set by the variable `HUYTK_<SECTION>__<KEY>`
//! (upper case, two underscores between section and key: section names
//! have underscores of their own). A secret also reads `<key>_file` in the
//! file and `HUYTK_<SECTION>__<KEY>_FILE`. Every problem (an unknown
//! section, key, variable or choice, a wrong type, an unreadable secret
//! file) is collected, and all are reported at once.

mod reference;
mod table;
mod values;

pub use reference::{example, markdown, run_command, ConfigCommand};
pub use table::{
    AccountsConfig, CalendarConfig, Config, DatabaseConfig, DeskConfig, MailOutConfig,
    MailboxConfig, SenderAuthConfig, SmsConfig, TemplatesConfig, WebConfig,
};
pub use values::{
    redact_url, AccountsKind, MailOutKind, MailboxKind, Secret, Security, SenderCheckWay, SmsKind,
    Value,
};

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

/// The prefix of every variable the configuration reads.
pub const ENV_PREFIX: &str = "HUYTK_";

/// Why the configuration could not be read.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// The file could not be read.
    #[error("reading {0}: {1}")]
    Read(PathBuf, std::io::Error),
    /// The file is not TOML at all (nothing further can be checked).
    #[error("{0}: {1}")]
    Parse(PathBuf, toml::de::Error),
    /// The file and environment were read, and these keys are wrong.
    #[error("{}", list_problems(.0, .1))]
    Invalid(String, Vec<Problem>),
}

impl ConfigError {
    /// The problems found, each with its key path (empty for a file that
    /// could not be read or parsed at all).
    pub fn problems(&self) -> &[Problem] {
        match self {
            ConfigError::Invalid(_, p) => p,
            _ => &[],
        }
    }
}

fn list_problems(origin: &str, problems: &[Problem]) -> String {
    let mut s = format!(
        "{origin}: {} configuration problem{}:",
        problems.len(),
        if problems.len() == 1 { "" } else { "s" }
    );
    for p in problems {
        s.push_str("\n  ");
        s.push_str(&p.to_string());
    }
    s
}

/// One wrong key: where (`mailbox.kind`, or the variable's name) and what.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Problem {
    /// `section.key`, or `HUYTK_… (section.key)` for a variable.
    pub path: String,
    /// What is wrong with it.
    pub message: String,
}

impl std::fmt::Display for Problem {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}: {}", self.path, self.message)
    }
}

/// One section as the reference lists it.
#[derive(Debug, Clone)]
pub struct SectionInfo {
    /// Its name in the file.
    pub name: &'static str,
    /// Its doc, one line of source per line.
    pub doc: &'static str,
    /// Its keys, in the declaration's order.
    pub keys: Vec<KeyInfo>,
}

/// One key as the reference lists it.
#[derive(Debug, Clone)]
pub struct KeyInfo {
    /// Its section.
    pub section: &'static str,
    /// Its name in the section.
    pub key: &'static str,
    /// Its type's name.
    pub type_name: String,
    /// Its default as a TOML value, `None` when unset by default.
    pub default: Option<String>,
    /// The default as the reference writes it when it depends on the
    /// machine (`templates.dir`, `database.master_key_file`).
    pub shown: Option<&'static str>,
    /// The variable that overrides it.
    pub env: String,
    /// Its doc, one line of source per line.
    pub doc: &'static str,
    /// Whether it is a secret (also `<key>_file`, masked).
    pub secret: bool,
}

impl KeyInfo {
    fn new<T: Value>(
        section: &'static str,
        key: &'static str,
        default: &T,
        doc: &'static str,
        shown: Option<&'static str>,
    ) -> KeyInfo {
        KeyInfo {
            section,
            key,
            type_name: T::type_name(),
            default: default.to_toml().map(|v| v.to_string()),
            shown,
            env: env_name(section, key),
            doc,
            secret: T::SECRET,
        }
    }

    /// The doc as one paragraph.
    pub fn doc_line(&self) -> String {
        one_paragraph(self.doc)
    }
}

/// Source doc lines (each with the space after `///`) as one paragraph.
fn one_paragraph(doc: &str) -> String {
    doc.lines()
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .collect::<Vec<_>>()
        .join(" ")
}

/// The variable overriding `[section] key`: `HUYTK_SECTION__KEY`.
pub fn env_name(section: &str, key: &str) -> String {
    format!(
        "{ENV_PREFIX}{}__{}",
        section.to_ascii_uppercase(),
        key.to_ascii_uppercase()
    )
}

/// Reads keys out of the file's tables and the environment, collecting
/// every problem instead of stopping at the first.
pub(crate) struct Reader<'a> {
    env: &'a BTreeMap<String, String>,
    /// Every variable a key could be set by, to find the unknown ones.
    known_env: BTreeSet<String>,
    problems: Vec<Problem>,
}

impl Reader<'_> {
    fn problem(&mut self, path: impl Into<String>, message: impl Into<String>) {
        self.problems.push(Problem {
            path: path.into(),
            message: message.into(),
        });
    }

    /// Takes a section's table out of the root (empty when absent or not
    /// a table).
    fn section(&mut self, root: &mut toml::Table, name: &str) -> toml::Table {
        match root.remove(name) {
            None => toml::Table::new(),
            Some(toml::Value::Table(t)) => t,
            Some(other) => {
                self.problem(
                    name,
                    format!("expected a [{name}] table, found {}", other.type_str()),
                );
                toml::Table::new()
            }
        }
    }

    /// What is left in a section after its keys were taken.
    fn unknown_keys(&mut self, section: &str, left: toml::Table) {
        for key in left.keys() {
            self.problem(format!("{section}.{key}"), "unknown key");
        }
    }

    /// One key: the default, the file over it, the environment over both.
    fn key<T: Value>(&mut self, t: &mut toml::Table, section: &str, key: &str, default: T) -> T {
        let path = format!("{section}.{key}");
        let mut value = default;
        let inline = t.remove(key);
        if T::SECRET {
            let file_key = format!("{key}_file");
            if let Some(file) = t.remove(&file_key) {
                let file_path = format!("{section}.{file_key}");
                if inline.is_some() {
                    self.problem(&path, format!("set either {key} or {file_key}, not both"));
                } else if let Some(v) = self.secret_file(&file_path, file.as_str()) {
                    value = v;
                }
            }
        }
        if let Some(v) = inline {
            match T::from_toml(v) {
                Ok(v) => value = v,
                Err(e) => self.problem(&path, e),
            }
        }
        let var = env_name(section, key);
        self.known_env.insert(var.clone());
        let from_env = self.env.get(&var).cloned();
        if T::SECRET {
            let file_var = format!("{var}_FILE");
            self.known_env.insert(file_var.clone());
            if let Some(file) = self.env.get(&file_var).cloned() {
                let where_ = format!("{file_var} ({section}.{key}_file)");
                if from_env.is_some() {
                    self.problem(where_, format!("set either {var} or {file_var}, not both"));
                } else if let Some(v) = self.secret_file(&where_, Some(&file)) {
                    value = v;
                }
            }
        }
        if let Some(s) = from_env {
            match T::from_env(&s) {
                Ok(v) => value = v,
                Err(e) => self.problem(format!("{var} ({path})"), e),
            }
        }
        value
    }

    /// A secret read from the file named at `path` (`None`: a problem).
    fn secret_file<T: Value>(&mut self, path: &str, file: Option<&str>) -> Option<T> {
        let Some(file) = file else {
            self.problem(path, "expected the path of a file (a string)");
            return None;
        };
        match std::fs::read_to_string(file) {
            Ok(text) => match T::from_env(Secret::from_file_text(&text).expose()) {
                Ok(v) => Some(v.read_from(Path::new(file))),
                Err(e) => {
                    self.problem(path, e);
                    None
                }
            },
            Err(e) => {
                self.problem(path, format!("reading {file}: {e}"));
                None
            }
        }
    }
}

impl Config {
    /// Reads a file (`None`: no file, the embedded default) and the
    /// process's `HUYTK_…__…` variables over it.
    pub fn load(path: Option<&Path>) -> Result<Config, ConfigError> {
        let env: BTreeMap<String, String> = std::env::vars()
            .filter(|(k, _)| k.starts_with(ENV_PREFIX))
            .collect();
        let (text, origin) = match path {
            Some(path) => (
                std::fs::read_to_string(path).map_err(|e| ConfigError::Read(path.to_owned(), e))?,
                path.display().to_string(),
            ),
            None => (String::new(), "configuration".to_owned()),
        };
        let root: toml::Table = toml::from_str(&text)
            .map_err(|e| ConfigError::Parse(path.map(Path::to_owned).unwrap_or_default(), e))?;
        Config::from_parts(root, &env, &origin)
    }

    /// Reads TOML text and these variables (the tests' way: no process
    /// environment). `origin` names the source in the error.
    pub fn parse(
        text: &str,
        env: &BTreeMap<String, String>,
        origin: &str,
    ) -> Result<Config, ConfigError> {
        let root: toml::Table =
            toml::from_str(text).map_err(|e| ConfigError::Parse(PathBuf::from(origin), e))?;
        Config::from_parts(root, env, origin)
    }

    fn from_parts(
        mut root: toml::Table,
        env: &BTreeMap<String, String>,
        origin: &str,
    ) -> Result<Config, ConfigError> {
        let mut r = Reader {
            env,
            known_env: BTreeSet::new(),
            problems: Vec::new(),
        };
        let config = Config::read_sections(&mut root, &mut r);
        let sections: Vec<&str> = Config::reference().iter().map(|s| s.name).collect();
        for name in root.keys() {
            r.problem(
                name.as_str(),
                format!("unknown section (known: {})", sections.join(", ")),
            );
        }
        // A variable of the configuration's shape that names no key is a
        // typo: refused rather than silently ignored.
        for var in env.keys() {
            if var.contains("__") && !r.known_env.contains(var) {
                r.problem(var.as_str(), "unknown variable (no such key)");
            }
        }
        if r.problems.is_empty() {
            Ok(config)
        } else {
            Err(ConfigError::Invalid(origin.to_owned(), r.problems))
        }
    }
}

impl SenderAuthConfig {
    /// The trusted servers, or `None` when the trusted-header way is off.
    pub fn trusted(&self) -> Option<crate::intake::auth::TrustedServers> {
        if self.uses_resolver() {
            return None;
        }
        crate::intake::auth::TrustedServers::new(
            &self.trusted_authserv_ids,
            self.trust_unnamed_authserv_id,
        )
    }

    /// Whether huytk checks mail itself (`check = "resolver"`).
    pub fn uses_resolver(&self) -> bool {
        self.check == SenderCheckWay::Resolver
    }
}

impl DatabaseConfig {
    /// The master key file in effect (see `master_key_file`).
    pub fn master_key_path(&self) -> PathBuf {
        if let Some(p) = &self.master_key_file {
            return p.clone();
        }
        let sqlite = self
            .url
            .strip_prefix("sqlite://")
            .or_else(|| self.url.strip_prefix("sqlite:"))
            .map(|p| p.split('?').next().unwrap_or(p));
        match sqlite.filter(|p| *p != ":memory:").map(Path::new) {
            Some(db) => db
                .parent()
                .filter(|d| !d.as_os_str().is_empty())
                .unwrap_or(Path::new("."))
                .join("master.key"),
            None => PathBuf::from("huytk-data/master.key"),
        }
    }

    /// Where the master key comes from: `HUYTK_MASTER_KEY`, else the file.
    pub fn key_source(&self) -> crate::store::keys::KeySource {
        crate::store::keys::KeySource::from_env_or(self.master_key_path())
    }
}

/// The shipped templates: beside the binary's source tree when run from a
/// checkout, else `./templates`.
fn default_templates_dir() -> PathBuf {
    let here = PathBuf::from("templates");
    if here.join("email").is_dir() {
        return here;
    }
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("templates")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str) -> Result<Config, ConfigError> {
        Config::parse(text, &BTreeMap::new(), "test.toml")
    }

    fn parse_env(text: &str, env: &[(&str, &str)]) -> Result<Config, ConfigError> {
        let env = env
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        Config::parse(text, &env, "test.toml")
    }

    fn problems(r: Result<Config, ConfigError>) -> Vec<Problem> {
        r.expect_err("refused").problems().to_vec()
    }

    #[test]
    fn example_config_parses_to_the_defaults() {
        let text =
            std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/config.example.toml"))
                .unwrap();
        let c = parse(&text).unwrap();
        let d = Config::default();
        assert_eq!(c.mailbox.kind, MailboxKind::Maildir);
        assert_eq!(c.desk.service_level_days, 20);
        assert_eq!(format!("{:?}", c.web), format!("{:?}", d.web));
        assert_eq!(format!("{:?}", c.accounts), format!("{:?}", d.accounts));
    }

    #[test]
    fn sender_auth_is_off_unless_configured() {
        assert!(Config::default().sender_auth.trusted().is_none());
        let c = parse("[sender_auth]\ntrusted_authserv_ids = [\"MX.Google.com\"]\n").unwrap();
        let t = c.sender_auth.trusted().unwrap();
        assert!(t.trusts(&crate::intake::auth::AuthservId::Named(
            "mx.google.com".into()
        )));
        // The resolver way is not implemented: naming it is an error.
        assert!(parse("[sender_auth]\nresolvers = \"1.1.1.1\"\n").is_err());
        assert!(parse("[sender_auth]\ncheck = \"dns\"\n").is_err());
        // The resolver way turns the trusted-header way off.
        let c = parse(
            "[sender_auth]\ncheck = \"resolver\"\nresolver = \"127.0.0.1:5353\"\n\
             trusted_authserv_ids = [\"mx.google.com\"]\ntrusted_received_by = [\"mx.desk.test\"]\n",
        )
        .unwrap();
        assert!(c.sender_auth.uses_resolver() && c.sender_auth.trusted().is_none());
        assert_eq!(c.sender_auth.check_timeout_ms, 5000);
    }

    #[test]
    fn unknown_keys_and_sections_are_errors() {
        let p = problems(parse(
            "[desk]\nservice_days = 3\n[mialbox]\nkind = \"imap\"\n",
        ));
        assert_eq!(p.len(), 2, "{p:?}");
        assert_eq!(p[0].path, "desk.service_days");
        assert_eq!(p[1].path, "mialbox");
        assert!(p[1].message.contains("mailbox"), "{p:?}");
    }

    #[test]
    fn unknown_kind_names_its_path_and_the_choices() {
        let p = problems(parse("[accounts]\nkind = \"ldaps\"\n"));
        assert_eq!(p.len(), 1);
        assert_eq!(p[0].path, "accounts.kind");
        assert!(
            p[0].message.contains("\"ldaps\"")
                && p[0].message.contains("embedded, ldap, sql, rest"),
            "{}",
            p[0]
        );
    }

    #[test]
    fn wrong_types_are_all_reported() {
        let p = problems(parse(
            "[mailbox]\nport = 70000\nidle = \"yes\"\n[web]\npage_size = -1\nbind = 8480\n",
        ));
        let paths: Vec<&str> = p.iter().map(|p| p.path.as_str()).collect();
        assert_eq!(
            paths,
            ["mailbox.port", "mailbox.idle", "web.bind", "web.page_size"]
        );
        assert!(p[0].message.contains("out of range"), "{}", p[0]);
    }

    #[test]
    fn the_environment_wins_over_the_file() {
        let c = parse_env(
            "[mailbox]\nkind = \"maildir\"\nport = 143\n[desk]\ndigest_to = [\"a@x\"]\n",
            &[
                ("HUYTK_MAILBOX__KIND", "imap"),
                ("HUYTK_MAILBOX__PORT", "1993"),
                ("HUYTK_DESK__DIGEST_TO", "b@x, c@x"),
                ("HUYTK_MAIL_OUT__SECURITY", "tls"),
                ("HUYTK_DATABASE__MASTER_KEY_FILE", "/run/k"),
                ("HUYTK_MASTER_KEY", "not a key of the configuration"),
            ],
        )
        .unwrap();
        assert_eq!(c.mailbox.kind, MailboxKind::Imap);
        assert_eq!(c.mailbox.port, 1993);
        assert_eq!(c.desk.digest_to, ["b@x", "c@x"]);
        assert_eq!(c.mail_out.security, Security::Tls);
        assert_eq!(c.database.master_key_file, Some(PathBuf::from("/run/k")));
        let p = problems(parse_env(
            "",
            &[("HUYTK_MAILBOX__PORTT", "1"), ("HUYTK_SMS__KIND", "sms")],
        ));
        assert_eq!(p.len(), 2, "{p:?}");
        assert!(p[0].path.starts_with("HUYTK_SMS__KIND"), "{p:?}");
        assert_eq!(p[1].path, "HUYTK_MAILBOX__PORTT");
    }

    #[test]
    fn secrets_come_from_files_and_never_show() {
        let dir = std::env::temp_dir().join(format!("huytk-config-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let file = dir.join("imap-password");
        std::fs::write(&file, "s3cr3t-from-file\n").unwrap();
        let c = parse(&format!(
            "[mailbox]\npassword_file = {:?}\n[sms]\ndlr_secret = \"dlr-inline\"\n",
            file.display().to_string()
        ))
        .unwrap();
        assert_eq!(c.mailbox.password.expose(), "s3cr3t-from-file");
        let env_file = dir.join("token");
        std::fs::write(&env_file, "tok-from-env-file").unwrap();
        let c2 = parse_env(
            "[accounts]\ntoken = \"inline\"\n",
            &[("HUYTK_ACCOUNTS__TOKEN_FILE", env_file.to_str().unwrap())],
        )
        .unwrap();
        assert_eq!(c2.accounts.token.expose(), "tok-from-env-file");
        let shown = format!("{c:?} {c:#?} {} {c2:?}", c.mailbox.password);
        for secret in ["s3cr3t-from-file", "dlr-inline", "tok-from-env-file"] {
            assert!(!shown.contains(secret), "{secret} shown");
        }
        assert!(shown.contains("password: ***"));
        // A database URL's password is masked too.
        let c = parse("[database]\nurl = \"postgres://huytk:pg-pass@db/huytk\"\n").unwrap();
        assert!(!format!("{c:?}").contains("pg-pass"));
        // Unreadable file, and both ways at once: each reported.
        let p = problems(parse(
            "[mail_out]\npassword_file = \"/nonexistent/pw\"\n[sms]\ntoken = \"a\"\ntoken_file = \"/x\"\n",
        ));
        assert_eq!(p.len(), 2, "{p:?}");
        assert_eq!(p[0].path, "mail_out.password_file");
        assert!(p[0].message.contains("/nonexistent/pw"), "{}", p[0]);
        assert_eq!(p[1].path, "sms.token");
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn every_default_reads_back_from_the_reference() {
        // The example written from the declaration parses to the default.
        let c = parse(&example()).unwrap();
        assert_eq!(format!("{c:?}"), format!("{:?}", Config::default()));
    }
}
