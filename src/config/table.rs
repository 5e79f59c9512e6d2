//! Every configuration key, declared once: section, name, type, default
//! and doc. From this one table come the section structs the desk reads,
//! their defaults, their `Debug` (secrets masked), the reading of the file
//! and of the environment with every problem collected, and the reference
//! (`huytk config reference`, `docs/configuration.md`) and example
//! (`huytk config example`, `config.example.toml`).
//!
//! A new key is one more line in its section: `/// doc`, then
//! `name: Type = default,` (`; shown "…"` when the default depends on the
//! machine, to write in the reference instead). A `Secret` key also reads
//! `<name>_file`; its type is in `values.rs`.

use std::fmt;
use std::path::PathBuf;

use super::values::{
    AccountsKind, MailOutKind, MailboxKind, Secret, Security, SenderCheckWay, Shown, SmsKind,
};
use super::{KeyInfo, Reader, SectionInfo};

/// Turns the table below into the section structs, `Config`, and their
/// readers and reference (the idea of vaultwarden's `make_config!`: each
/// key once, with its type, default and doc).
macro_rules! config_table {
    ($(
        $(#[doc = $sdoc:literal])*
        [$section:ident] $Struct:ident {
            $(
                $(#[doc = $doc:literal])*
                $key:ident : $ty:ty = $default:expr $(; shown $shown:literal)?
            ),* $(,)?
        }
    )*) => {
        $(
            $(#[doc = $sdoc])*
            #[derive(Clone)]
            pub struct $Struct {
                $( $(#[doc = $doc])* pub $key: $ty, )*
            }

            impl Default for $Struct {
                fn default() -> Self {
                    $Struct { $( $key: $default, )* }
                }
            }

            impl fmt::Debug for $Struct {
                fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                    f.debug_struct(stringify!($Struct))
                        $( .field(stringify!($key), &Shown(&self.$key)) )*
                        .finish()
                }
            }

            impl $Struct {
                /// Its keys as the reference lists them.
                fn keys() -> Vec<KeyInfo> {
                    let d = Self::default();
                    vec![$(
                        KeyInfo::new::<$ty>(
                            stringify!($section),
                            stringify!($key),
                            &d.$key,
                            concat!($($doc, "\n"),*),
                            None $( .or(Some($shown)) )?,
                        ),
                    )*]
                }

                /// Reads the section's table (the keys it knows are taken
                /// out of it), the environment over it.
                fn read(t: &mut toml::Table, r: &mut Reader) -> Self {
                    let d = Self::default();
                    $Struct {
                        $( $key: r.key(t, stringify!($section), stringify!($key), d.$key), )*
                    }
                }
            }
        )*

        /// The whole configuration: one struct per section.
        #[derive(Clone, Default)]
        pub struct Config {
            $( $(#[doc = $sdoc])* pub $section: $Struct, )*
        }

        impl fmt::Debug for Config {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.debug_struct("Config")
                    $( .field(stringify!($section), &self.$section) )*
                    .finish()
            }
        }

        impl Config {
            /// Every section and key, in the declaration's order.
            pub fn reference() -> Vec<SectionInfo> {
                vec![$(
                    SectionInfo {
                        name: stringify!($section),
                        doc: concat!($($sdoc, "\n"),*),
                        keys: $Struct::keys(),
                    },
                )*]
            }

            /// Reads every section out of the file's root table; what is
            /// left in it afterwards is unknown.
            pub(super) fn read_sections(root: &mut toml::Table, r: &mut Reader) -> Config {
                Config {
                    $( $section: {
                        let mut t = r.section(root, stringify!($section));
                        let s = $Struct::read(&mut t, r);
                        r.unknown_keys(stringify!($section), t);
                        s
                    }, )*
                }
            }
        }
    };
}

config_table! {
    /// Where state lives.
    [database] DatabaseConfig {
        /// `sqlite://PATH` (created if missing) or
        /// `postgres://USER:PASS@HOST:PORT/DB`. Its password is masked
        /// wherever the URL is shown.
        url: String = "sqlite://huytk-data/huytk.db".into(),
        /// The file holding the master key that seals citizens' data (mode
        /// 0600; created on first start). Default: `master.key` beside a
        /// SQLite database, else `huytk-data/master.key`. The variable
        /// `HUYTK_MASTER_KEY` (the key itself) takes precedence. Never put
        /// the key in the configuration file.
        master_key_file: Option<PathBuf> = None; shown "beside a SQLite database, else \"huytk-data/master.key\"",
    }

    /// The desk itself.
    [desk] DeskConfig {
        /// The support inbox's own address: never answered, used as sender.
        address: String = "dichvucong@chinhphu.vn".into(),
        /// Display name on outgoing mail.
        name: String = "Cổng Dịch vụ công quốc gia".into(),
        /// Working days to handle a request.
        service_level_days: u32 = 20,
        /// At most this many mails to one address per day (no loops with
        /// robots).
        max_mails_per_address_per_day: u32 = 5,
        /// Domain of the Message-IDs we send.
        message_id_domain: String = "huytk.dichvucong.gov.vn".into(),
        /// The hotline number printed in letters.
        hotline: String = "18001096".into(),
        /// Days a needs_info request waits before it is closed.
        needs_info_days: u32 = 30,
        /// Every approval needs a second operator (four-eyes).
        four_eyes: bool = false,
        /// The window in which the holder can stop a deletion, in seconds
        /// (3 days), counted from the SMS gateway's acceptance.
        grace_seconds: u64 = 3 * 24 * 3600,
        /// Days after a request closes that its photos and raw mail are
        /// purged.
        retention_days: u32 = 30,
        /// Supervisors' addresses for the daily digest of requests due
        /// within 3 working days and overdue (empty: none sent).
        digest_to: Vec<String> = Vec::new(),
        /// Hour (Vietnam time, 0–23) the daily digest goes out.
        digest_hour: u32 = 7,
        /// Seconds one message's inspection may take; a message still being
        /// inspected then is marked failed with the reason, and the others
        /// go on.
        inspection_seconds: u64 = 30,
        /// Memory (MiB) all inspections together may take: each message
        /// reserves intake's estimate of its peak (160 MiB + 3 × its size)
        /// before it starts, so this sets how many are inspected at once
        /// (at least one, at most one per core).
        inspection_memory_mb: u64 = 800,
    }

    /// Where mail comes from: a local Maildir spool, or an IMAP mailbox.
    [mailbox] MailboxConfig {
        /// Where mail comes from.
        kind: MailboxKind = MailboxKind::Maildir,
        /// Maildir spool folder.
        path: PathBuf = "huytk-data/spool".into(),
        /// IMAP folder handled mail is moved to (requests, auto-replies,
        /// bounces). A Maildir spool keeps no such copy: the database holds
        /// handled mail sealed, so it is removed from the spool.
        archive_folder: String = "Archive".into(),
        /// Folder for mail that is not a request (left for people).
        other_folder: String = "Khác".into(),
        /// IMAP host.
        host: String = String::new(),
        /// IMAP port (993 TLS, 143 STARTTLS/plain).
        port: u16 = 993,
        /// Connection security.
        security: Security = Security::Tls,
        /// Accept any TLS certificate (self-signed test servers only).
        insecure_tls: bool = false,
        /// Login name.
        username: String = String::new(),
        /// Password (or use `oauth2_token`).
        password: Secret = Secret::default(),
        /// XOAUTH2 access token; when set, used instead of the password.
        /// Given as `oauth2_token_file` (mode 0600), the file is read again
        /// at every connection, so a token agent can renew it there.
        oauth2_token: Secret = Secret::default(),
        /// Folder to read.
        folder: String = "INBOX".into(),
        /// Use IDLE when the server offers it.
        idle: bool = true,
        /// Seconds between polls (and the longest IDLE wait).
        poll_seconds: u64 = 30,
        /// Messages fetched per round trip.
        batch: u32 = 50,
    }

    /// How mail goes out: a local Maildir outbox, or an SMTP server.
    [mail_out] MailOutConfig {
        /// How mail goes out.
        kind: MailOutKind = MailOutKind::Maildir,
        /// Maildir outbox folder.
        path: PathBuf = "huytk-data/outbox".into(),
        /// SMTP host.
        host: String = String::new(),
        /// SMTP port.
        port: u16 = 587,
        /// Connection security.
        security: Security = Security::Starttls,
        /// Login name (empty: no authentication).
        username: String = String::new(),
        /// Password.
        password: Secret = Secret::default(),
        /// Attempts before a mail is marked failed for good.
        max_attempts: u32 = 20,
        /// First retry after this many seconds, doubling up to an hour.
        retry_base_seconds: u64 = 10,
    }

    /// Letters and pages.
    [templates] TemplatesConfig {
        /// Folder with `email/`, `sms/`, `web/` and `problems.toml`;
        /// reworded letters take effect on restart. Default: `templates`
        /// in the working folder when it has one, else the source tree's.
        dir: PathBuf = super::default_templates_dir(); shown "\"templates\"",
    }

    /// Additions to the shipped working-day calendar
    /// (`data/calendar-vn.toml`).
    [calendar] CalendarConfig {
        /// Extra public holidays, `YYYY-MM-DD`.
        holidays: Vec<String> = Vec::new(),
        /// Extra Saturdays worked in exchange, `YYYY-MM-DD`.
        working_saturdays: Vec<String> = Vec::new(),
    }

    /// The console, `/api/v1`, `/healthz`, `/readyz` and `/metrics`.
    [web] WebConfig {
        /// Address to listen on; empty turns the console and endpoints off.
        bind: String = "127.0.0.1:8480".into(),
        /// Mark cookies `Secure` (set when the console is reached over TLS,
        /// through a reverse proxy).
        secure_cookies: bool = false,
        /// A session unused this long ends.
        idle_minutes: u64 = 30,
        /// A session ends this long after its login, however busy.
        session_hours: u64 = 12,
        /// Failed logins for one login name from one client within the
        /// window before that pair is refused for the rest of the window.
        /// Other clients are not affected: a stranger cannot lock an
        /// operator out.
        max_failed_logins: u32 = 5,
        /// Failed logins from one client within the window, whatever the
        /// names, before it is refused.
        max_failed_logins_per_client: u32 = 30,
        /// The window of the two limits above.
        login_window_minutes: u64 = 15,
        /// API tokens stop working this many days after they are made (a
        /// password change revokes them).
        api_token_days: u64 = 90,
        /// Password checks (argon2id, 19 MiB each) run at once at most; the
        /// others wait their turn off the async runtime.
        password_checks: usize = 2,
        /// A client must send a request's headers within this many seconds.
        header_timeout_seconds: u64 = 10,
        /// A connection is closed after this many seconds, whatever it does.
        connection_seconds: u64 = 120,
        /// Open connections at most; more are closed at once.
        max_connections: usize = 256,
        /// Re-encoded photos kept in memory for the next view, in MiB.
        photo_cache_mb: usize = 64,
        /// Photos decoded at once at most (each can take hundreds of MiB).
        photo_decodes: usize = 2,
        /// Rows per queue page.
        page_size: u32 = 50,
    }

    /// Where portal accounts live. Every call is retried with backoff until
    /// it succeeds, and shows in the console while it fails.
    [accounts] AccountsConfig {
        /// `embedded` (a table in the desk's database, `huytk accounts load
        /// FILE`), `ldap`, `sql` (statements against the portal's database)
        /// or `rest` (the portal's API, `docs/portal-accounts.openapi.json`).
        kind: AccountsKind = AccountsKind::Embedded,
        /// ldap: `ldap://host:port` or `ldaps://host:port`; sql: a database
        /// URL; rest: the API's base URL.
        url: String = String::new(),
        /// ldap: DN to bind as (empty: anonymous).
        bind_dn: String = String::new(),
        /// ldap: its password.
        bind_password: Secret = Secret::default(),
        /// ldap: where accounts are searched.
        base_dn: String = String::new(),
        /// ldap: attribute holding the portal's account id.
        id_attribute: String = "uid".into(),
        /// ldap: attribute holding the CCCD/CMND number.
        number_attribute: String = "employeeNumber".into(),
        /// ldap: attribute holding the name.
        name_attribute: String = "cn".into(),
        /// ldap: attribute holding the phone.
        phone_attribute: String = "mobile".into(),
        /// ldap: attribute holding the email.
        email_attribute: String = "mail".into(),
        /// ldap: attribute holding the birth date (YYYY-MM-DD), or "".
        birth_attribute: String = String::new(),
        /// ldap: attribute telling the account is linked to VNeID
        /// (true/1/yes), or "".
        vneid_attribute: String = String::new(),
        /// ldap: attribute that marks a locked account (it carries
        /// `lock_attribute: lock_value`).
        lock_attribute: String = "employeeType".into(),
        /// ldap: its value on a locked account.
        lock_value: String = "locked".into(),
        /// Seconds to wait for the account store.
        timeout_seconds: u64 = 10,
        /// sql: accounts of one number (`$1`), with the columns account_id,
        /// id_number, full_name, birth_date, phone, email, vneid_linked,
        /// state.
        find_sql: String = String::new(),
        /// sql: lock the account `$1`.
        lock_sql: String = String::new(),
        /// sql: unlock the account `$1`.
        unlock_sql: String = String::new(),
        /// sql: delete the account `$1`.
        delete_sql: String = String::new(),
        /// rest: bearer token for the portal's API.
        token: Secret = Secret::default(),
    }

    /// How SMS go out.
    [sms] SmsConfig {
        /// `file` (one JSON line per SMS), `kannel` or `json`.
        kind: SmsKind = SmsKind::File,
        /// file: the outbox (one JSON line per SMS).
        path: PathBuf = "huytk-data/sms-outbox.jsonl".into(),
        /// kannel: the smsbox sendsms URL
        /// (`http://host:13013/cgi-bin/sendsms`); json: the gateway's
        /// endpoint.
        url: String = String::new(),
        /// kannel: sendsms-user name.
        username: String = String::new(),
        /// kannel: sendsms-user password.
        password: Secret = Secret::default(),
        /// json: bearer token.
        token: Secret = Secret::default(),
        /// Sender id shown on the handset.
        from: String = "DVCQG".into(),
        /// Our own base URL as the gateway reaches it, for delivery reports
        /// to `/api/v1/sms/dlr` (`http://desk.internal:8480`); empty: no
        /// delivery reports.
        dlr_base_url: String = String::new(),
        /// Secret the gateway sends back with delivery reports.
        dlr_secret: Secret = Secret::default(),
        /// Attempts before an SMS is failed for good (the request goes back
        /// to an operator, the account unlocked).
        max_attempts: u32 = 30,
        /// First retry after this many seconds, doubling up to an hour.
        retry_base_seconds: u64 = 10,
    }

    /// Whose word on a sender's DKIM, SPF and DMARC the desk takes
    /// (docs/sender-auth.md). Two ways, chosen by `check`: `"headers"`
    /// reads the `Authentication-Results` of the trusted receiving servers
    /// below (none: off, no `auth` anywhere, no warning); `"resolver"` has
    /// huytk check the mail itself at ingest with the DNS server
    /// `resolver`, the SMTP client taken from the `Received` line of one of
    /// `trusted_received_by`.
    [sender_auth] SenderAuthConfig {
        /// `headers` (trusted `Authentication-Results`) or `resolver`
        /// (huytk's own check; `resolver` and `trusted_received_by`
        /// required).
        check: SenderCheckWay = SenderCheckWay::Headers,
        /// The authserv-ids of the desk's own receiving servers
        /// (`mx.google.com`, `mx.dichvucong.gov.vn`), without case. Read
        /// only with `check = "headers"`.
        trusted_authserv_ids: Vec<String> = Vec::new(),
        /// Also trust headers without an authserv-id, as Microsoft 365
        /// writes them: only for a mailbox hosted there.
        trust_unnamed_authserv_id: bool = false,
        /// `check = "resolver"`: the DNS server asked, `IP:port` (`IP`
        /// alone means port 53): the desk's own recursive resolver.
        resolver: String = String::new(),
        /// How long one DNS query waits for an answer, in milliseconds.
        resolver_timeout_ms: u64 = 2000,
        /// How many times a DNS query is sent before it is a `temperror`.
        resolver_attempts: u32 = 2,
        /// The cap on the whole check of one mail (every DKIM key, SPF and
        /// DMARC lookup), in milliseconds: past it the results are
        /// `temperror` and the mail goes on. A DNS outage delays a mail by
        /// at most this.
        check_timeout_ms: u64 = 5000,
        /// The host names the desk's own receiving servers write in the
        /// `by` clause of their `Received` line (`mx.dichvucong.gov.vn`),
        /// without case: the topmost such line gives the SMTP client's IP
        /// and HELO for SPF. No such line: SPF is `none`.
        trusted_received_by: Vec<String> = Vec::new(),
    }
}
