//! Configuration: a TOML file, every key optional. With no file at all,
//! `huytk serve` runs the embedded default: SQLite, a Maildir spool, and a
//! Maildir outbox under `./huytk-data`.

use serde::Deserialize;
use std::path::{Path, PathBuf};

/// Why the configuration could not be read.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// The file could not be read.
    #[error("reading {0}: {1}")]
    Read(PathBuf, std::io::Error),
    /// The file is not valid TOML of the expected shape.
    #[error("{0}: {1}")]
    Parse(PathBuf, toml::de::Error),
}

/// The whole configuration.
#[derive(Debug, Clone, Deserialize, Default)]
#[serde(default, deny_unknown_fields)]
pub struct Config {
    /// Where state lives.
    pub database: DatabaseConfig,
    /// The desk itself.
    pub desk: DeskConfig,
    /// Where mail comes from.
    pub mailbox: MailboxConfig,
    /// How mail goes out.
    pub mail_out: MailOutConfig,
    /// Letters and pages.
    pub templates: TemplatesConfig,
    /// Additions to the working-day calendar.
    pub calendar: CalendarConfig,
    /// The HTTP endpoints (health, metrics; the console later).
    pub web: WebConfig,
    /// Where portal accounts live.
    pub accounts: AccountsConfig,
    /// How SMS go out.
    pub sms: SmsConfig,
    /// Whose word on a sender's DKIM, SPF and DMARC the desk takes.
    pub sender_auth: SenderAuthConfig,
}

/// `[sender_auth]`: whose word on a sender's DKIM, SPF and DMARC the desk
/// takes (docs/sender-auth.md). Two ways, chosen by `check`:
/// `"headers"` (the default) reads the `Authentication-Results` of the
/// trusted receiving servers below (empty: off, no `auth` anywhere, no
/// warning); `"resolver"` has huytk check the mail itself at ingest with the
/// DNS server `resolver`, the SMTP client taken from the `Received` line of
/// one of `trusted_received_by`.
#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct SenderAuthConfig {
    /// `"headers"` (trusted `Authentication-Results`) or `"resolver"`
    /// (huytk's own check; `resolver` and `trusted_received_by` required).
    pub check: String,
    /// The authserv-ids of the desk's own receiving servers
    /// (`mx.google.com`, `mx.dichvucong.gov.vn`), without case. Read only
    /// with `check = "headers"`.
    pub trusted_authserv_ids: Vec<String>,
    /// Also trust headers without an authserv-id, as Microsoft 365 writes
    /// them: only for a mailbox hosted there.
    pub trust_unnamed_authserv_id: bool,
    /// `check = "resolver"`: the DNS server asked, `IP:port` (`IP` alone
    /// means port 53): the desk's own recursive resolver.
    pub resolver: String,
    /// How long one DNS query waits for an answer, in milliseconds.
    pub resolver_timeout_ms: u64,
    /// How many times a DNS query is sent before it is a `temperror`.
    pub resolver_attempts: u32,
    /// The cap on the whole check of one mail (every DKIM key, SPF and
    /// DMARC lookup), in milliseconds: past it the results are `temperror`
    /// and the mail goes on. A DNS outage delays a mail by at most this.
    pub check_timeout_ms: u64,
    /// The host names the desk's own receiving servers write in the `by`
    /// clause of their `Received` line (`mx.dichvucong.gov.vn`), without
    /// case: the topmost such line gives the SMTP client's IP and HELO for
    /// SPF. No such line: SPF is `none`.
    pub trusted_received_by: Vec<String>,
}

impl Default for SenderAuthConfig {
    fn default() -> SenderAuthConfig {
        SenderAuthConfig {
            check: "headers".into(),
            trusted_authserv_ids: Vec::new(),
            trust_unnamed_authserv_id: false,
            resolver: String::new(),
            resolver_timeout_ms: 2000,
            resolver_attempts: 2,
            check_timeout_ms: 5000,
            trusted_received_by: Vec::new(),
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
        self.check.eq_ignore_ascii_case("resolver")
    }
}

/// `[accounts]`: `kind = "embedded"` (the desk's own table), `"ldap"`,
/// `"sql"` (statements against the portal's database) or `"rest"` (the
/// portal's API, `docs/portal-accounts.openapi.json`).
#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct AccountsConfig {
    /// `embedded`, `ldap`, `sql` or `rest`.
    pub kind: String,
    /// `ldap://host:port`, `ldaps://host:port`, or (sql) a database URL.
    pub url: String,
    /// DN to bind as (empty: anonymous).
    pub bind_dn: String,
    /// Its password.
    pub bind_password: String,
    /// Where accounts are searched.
    pub base_dn: String,
    /// Attribute holding the portal's account id.
    pub id_attribute: String,
    /// Attribute holding the CCCD/CMND number.
    pub number_attribute: String,
    /// Attribute holding the name.
    pub name_attribute: String,
    /// Attribute holding the phone.
    pub phone_attribute: String,
    /// Attribute holding the email.
    pub email_attribute: String,
    /// Attribute holding the birth date (YYYY-MM-DD), or "".
    pub birth_attribute: String,
    /// Attribute telling the account is linked to VNeID (true/1/yes), or "".
    pub vneid_attribute: String,
    /// Attribute that marks a locked account.
    pub lock_attribute: String,
    /// Its value on a locked account.
    pub lock_value: String,
    /// Seconds to wait for the directory.
    pub timeout_seconds: u64,
    /// sql: accounts of one number (`$1`), with the columns account_id,
    /// id_number, full_name, birth_date, phone, email, vneid_linked, state.
    pub find_sql: String,
    /// sql: lock the account `$1`.
    pub lock_sql: String,
    /// sql: unlock the account `$1`.
    pub unlock_sql: String,
    /// sql: delete the account `$1`.
    pub delete_sql: String,
    /// rest: bearer token for the portal's API.
    pub token: String,
}

impl Default for AccountsConfig {
    fn default() -> Self {
        AccountsConfig {
            kind: "embedded".into(),
            url: String::new(),
            bind_dn: String::new(),
            bind_password: String::new(),
            base_dn: String::new(),
            id_attribute: "uid".into(),
            number_attribute: "employeeNumber".into(),
            name_attribute: "cn".into(),
            phone_attribute: "mobile".into(),
            email_attribute: "mail".into(),
            birth_attribute: String::new(),
            vneid_attribute: String::new(),
            lock_attribute: "employeeType".into(),
            lock_value: "locked".into(),
            timeout_seconds: 10,
            find_sql: String::new(),
            lock_sql: String::new(),
            unlock_sql: String::new(),
            delete_sql: String::new(),
            token: String::new(),
        }
    }
}

/// `[sms]`: `kind = "file"` (embedded default), `"kannel"` or `"json"`.
#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct SmsConfig {
    /// `file`, `kannel` or `json`.
    pub kind: String,
    /// The file outbox (one JSON line per SMS).
    pub path: PathBuf,
    /// Kannel: the smsbox sendsms URL (`http://host:13013/cgi-bin/sendsms`);
    /// json: the gateway's endpoint.
    pub url: String,
    /// Kannel sendsms-user name.
    pub username: String,
    /// Kannel sendsms-user password.
    pub password: String,
    /// json: bearer token.
    pub token: String,
    /// Sender id shown on the handset.
    pub from: String,
    /// Our own base URL as the gateway reaches it, for delivery reports
    /// (`http://desk.internal:8480`); empty: no delivery reports.
    pub dlr_base_url: String,
    /// Secret the gateway sends back with delivery reports.
    pub dlr_secret: String,
    /// Attempts before an SMS is failed for good (the request goes back to
    /// an operator).
    pub max_attempts: u32,
    /// First retry after this many seconds, doubling up to an hour.
    pub retry_base_seconds: u64,
}

impl Default for SmsConfig {
    fn default() -> Self {
        SmsConfig {
            kind: "file".into(),
            path: "huytk-data/sms-outbox.jsonl".into(),
            url: String::new(),
            username: String::new(),
            password: String::new(),
            token: String::new(),
            from: "DVCQG".into(),
            dlr_base_url: String::new(),
            dlr_secret: String::new(),
            max_attempts: 30,
            retry_base_seconds: 10,
        }
    }
}

/// `[web]`.
#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct WebConfig {
    /// Address to listen on; empty turns the console and endpoints off.
    pub bind: String,
    /// Mark cookies `Secure` (set when the console is reached over TLS,
    /// through a reverse proxy).
    pub secure_cookies: bool,
    /// A session unused this long ends.
    pub idle_minutes: u64,
    /// A session ends this long after its login, however busy.
    pub session_hours: u64,
    /// Failed logins for one login name from one client within the window
    /// before that pair is refused for the rest of the window. Other
    /// clients are not affected: a stranger cannot lock an operator out.
    pub max_failed_logins: u32,
    /// Failed logins from one client within the window, whatever the
    /// names, before it is refused.
    pub max_failed_logins_per_client: u32,
    /// The window of the two limits above.
    pub login_window_minutes: u64,
    /// API tokens stop working this many days after they are made.
    pub api_token_days: u64,
    /// Password checks (argon2id, 19 MiB each) run at once at most; the
    /// others wait their turn off the async runtime.
    pub password_checks: usize,
    /// A client must send a request's headers within this many seconds.
    pub header_timeout_seconds: u64,
    /// A connection is closed after this many seconds, whatever it does.
    pub connection_seconds: u64,
    /// Open connections at most; more are closed at once.
    pub max_connections: usize,
    /// Re-encoded photos kept in memory for the next view, in MiB.
    pub photo_cache_mb: usize,
    /// Photos decoded at once at most (each can take hundreds of MiB).
    pub photo_decodes: usize,
    /// Rows per queue page.
    pub page_size: u32,
}

impl Default for WebConfig {
    fn default() -> Self {
        WebConfig {
            bind: "127.0.0.1:8480".into(),
            secure_cookies: false,
            idle_minutes: 30,
            session_hours: 12,
            max_failed_logins: 5,
            max_failed_logins_per_client: 30,
            login_window_minutes: 15,
            api_token_days: 90,
            password_checks: 2,
            header_timeout_seconds: 10,
            connection_seconds: 120,
            max_connections: 256,
            photo_cache_mb: 64,
            photo_decodes: 2,
            page_size: 50,
        }
    }
}

/// `[database]`.
#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct DatabaseConfig {
    /// `sqlite://PATH` (created if missing) or `postgres://…`.
    pub url: String,
    /// The file holding the master key that seals citizens' data (mode
    /// 0600; created on first start). Default: `master.key` beside a SQLite
    /// database, else `huytk-data/master.key`. `HUYTK_MASTER_KEY` (the key
    /// itself) takes precedence. Never put the key in this file.
    pub master_key_file: Option<PathBuf>,
}

impl Default for DatabaseConfig {
    fn default() -> Self {
        DatabaseConfig {
            url: "sqlite://huytk-data/huytk.db".into(),
            master_key_file: None,
        }
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
        match sqlite
            .filter(|p| *p != ":memory:")
            .map(std::path::Path::new)
        {
            Some(db) => db
                .parent()
                .filter(|d| !d.as_os_str().is_empty())
                .unwrap_or(std::path::Path::new("."))
                .join("master.key"),
            None => PathBuf::from("huytk-data/master.key"),
        }
    }

    /// Where the master key comes from: `HUYTK_MASTER_KEY`, else the file.
    pub fn key_source(&self) -> crate::store::keys::KeySource {
        crate::store::keys::KeySource::from_env_or(self.master_key_path())
    }
}

/// `[desk]`.
#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct DeskConfig {
    /// The support inbox's own address: never answered, used as sender.
    pub address: String,
    /// Display name on outgoing mail.
    pub name: String,
    /// Working days to handle a request.
    pub service_level_days: u32,
    /// At most this many mails to one address per day (no loops with robots).
    pub max_mails_per_address_per_day: u32,
    /// Domain of the Message-IDs we send.
    pub message_id_domain: String,
    /// The hotline number printed in letters.
    pub hotline: String,
    /// Days a needs_info request waits before it is closed.
    pub needs_info_days: u32,
    /// Every approval needs a second operator (four-eyes).
    pub four_eyes: bool,
    /// The window in which the holder can stop a deletion, in seconds
    /// (3 days), counted from the SMS gateway's acceptance.
    pub grace_seconds: u64,
    /// Days after a request closes that its photos and raw mail are purged.
    pub retention_days: u32,
    /// Supervisors' addresses for the daily digest (empty: none sent).
    pub digest_to: Vec<String>,
    /// Hour (Vietnam time, 0–23) the daily digest goes out.
    pub digest_hour: u32,
    /// Seconds one message's inspection may take; a message still being
    /// inspected then is marked failed with the reason, and the others go on.
    pub inspection_seconds: u64,
    /// Memory (MiB) all inspections together may take: each message
    /// reserves intake's estimate of its peak (160 MiB + 3 × its size)
    /// before it starts, so this sets how many are inspected at once (at
    /// least one, at most one per core).
    pub inspection_memory_mb: u64,
}

impl Default for DeskConfig {
    fn default() -> Self {
        DeskConfig {
            address: "dichvucong@chinhphu.vn".into(),
            name: "Cổng Dịch vụ công quốc gia".into(),
            service_level_days: 20,
            max_mails_per_address_per_day: 5,
            message_id_domain: "huytk.dichvucong.gov.vn".into(),
            hotline: "18001096".into(),
            needs_info_days: 30,
            four_eyes: false,
            grace_seconds: 3 * 24 * 3600,
            retention_days: 30,
            digest_to: Vec::new(),
            digest_hour: 7,
            inspection_seconds: 30,
            inspection_memory_mb: 800,
        }
    }
}

/// How a server connection is protected.
#[derive(Debug, Clone, Copy, Deserialize, PartialEq, Eq, Default)]
#[serde(rename_all = "lowercase")]
pub enum Security {
    /// TLS from the first byte (IMAPS 993, SMTPS 465).
    #[default]
    Tls,
    /// Plain, then STARTTLS.
    Starttls,
    /// No encryption (loopback tests only).
    Plain,
}

/// `[mailbox]`: `kind = "maildir"` or `"imap"`.
#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct MailboxConfig {
    /// `maildir` (embedded default) or `imap`.
    pub kind: String,
    /// Maildir spool folder.
    pub path: PathBuf,
    /// IMAP folder handled mail is moved to. A Maildir spool keeps no
    /// such copy: the database holds handled mail sealed, so it is removed
    /// from the spool.
    pub archive_folder: String,
    /// Folder for mail that is not a request (left for people).
    pub other_folder: String,
    /// IMAP host.
    pub host: String,
    /// IMAP port (993 TLS, 143 STARTTLS/plain).
    pub port: u16,
    /// Connection security.
    pub security: Security,
    /// Accept any TLS certificate (self-signed test servers only).
    pub insecure_tls: bool,
    /// Login name.
    pub username: String,
    /// Password (or use `oauth2_token`).
    pub password: String,
    /// XOAUTH2 access token; when set, used instead of the password.
    pub oauth2_token: String,
    /// Folder to read.
    pub folder: String,
    /// Use IDLE when the server offers it.
    pub idle: bool,
    /// Seconds between polls (and the longest IDLE wait).
    pub poll_seconds: u64,
    /// Messages fetched per round trip.
    pub batch: u32,
}

impl Default for MailboxConfig {
    fn default() -> Self {
        MailboxConfig {
            kind: "maildir".into(),
            path: "huytk-data/spool".into(),
            archive_folder: "Archive".into(),
            other_folder: "Khác".into(),
            host: String::new(),
            port: 993,
            security: Security::Tls,
            insecure_tls: false,
            username: String::new(),
            password: String::new(),
            oauth2_token: String::new(),
            folder: "INBOX".into(),
            idle: true,
            poll_seconds: 30,
            batch: 50,
        }
    }
}

/// `[mail_out]`: `kind = "maildir"` or `"smtp"`.
#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct MailOutConfig {
    /// `maildir` (embedded default) or `smtp`.
    pub kind: String,
    /// Maildir outbox folder.
    pub path: PathBuf,
    /// SMTP host.
    pub host: String,
    /// SMTP port.
    pub port: u16,
    /// Connection security.
    pub security: Security,
    /// Login name (empty: no authentication).
    pub username: String,
    /// Password.
    pub password: String,
    /// Attempts before a mail is marked failed for good.
    pub max_attempts: u32,
    /// First retry after this many seconds, doubling up to an hour.
    pub retry_base_seconds: u64,
}

impl Default for MailOutConfig {
    fn default() -> Self {
        MailOutConfig {
            kind: "maildir".into(),
            path: "huytk-data/outbox".into(),
            host: String::new(),
            port: 587,
            security: Security::Starttls,
            username: String::new(),
            password: String::new(),
            max_attempts: 20,
            retry_base_seconds: 10,
        }
    }
}

/// `[templates]`.
#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct TemplatesConfig {
    /// Folder with `email/`, `sms/`, `web/` and `problems.toml`.
    pub dir: PathBuf,
}

impl Default for TemplatesConfig {
    fn default() -> Self {
        TemplatesConfig {
            dir: default_templates_dir(),
        }
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

/// `[calendar]`: days added to the shipped table.
#[derive(Debug, Clone, Deserialize, Default)]
#[serde(default, deny_unknown_fields)]
pub struct CalendarConfig {
    /// Extra public holidays, `YYYY-MM-DD`.
    pub holidays: Vec<String>,
    /// Extra Saturdays worked in exchange.
    pub working_saturdays: Vec<String>,
}

impl Config {
    /// Reads a file; `None` gives the embedded default.
    pub fn load(path: Option<&Path>) -> Result<Config, ConfigError> {
        let Some(path) = path else {
            return Ok(Config::default());
        };
        let text =
            std::fs::read_to_string(path).map_err(|e| ConfigError::Read(path.to_owned(), e))?;
        toml::from_str(&text).map_err(|e| ConfigError::Parse(path.to_owned(), e))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn example_config_parses() {
        let text =
            std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/config.example.toml"))
                .unwrap();
        let c: Config = toml::from_str(&text).unwrap();
        assert_eq!(c.mailbox.kind, "imap");
        assert_eq!(c.desk.service_level_days, 20);
    }

    #[test]
    fn sender_auth_is_off_unless_configured() {
        assert!(Config::default().sender_auth.trusted().is_none());
        let c: Config =
            toml::from_str("[sender_auth]\ntrusted_authserv_ids = [\"MX.Google.com\"]\n").unwrap();
        let t = c.sender_auth.trusted().unwrap();
        assert!(t.trusts(&crate::intake::auth::AuthservId::Named(
            "mx.google.com".into()
        )));
        assert!(toml::from_str::<Config>("[sender_auth]\nresolvers = \"1.1.1.1\"\n").is_err());
        // The resolver way turns the trusted-header way off.
        let c: Config = toml::from_str(
            "[sender_auth]\ncheck = \"resolver\"\nresolver = \"127.0.0.1:5353\"\n\
             trusted_authserv_ids = [\"mx.google.com\"]\ntrusted_received_by = [\"mx.desk.test\"]\n",
        )
        .unwrap();
        assert!(c.sender_auth.uses_resolver() && c.sender_auth.trusted().is_none());
        assert_eq!(c.sender_auth.check_timeout_ms, 5000);
    }

    #[test]
    fn unknown_keys_are_errors() {
        assert!(toml::from_str::<Config>("[desk]\nservice_days = 3\n").is_err());
    }
}
