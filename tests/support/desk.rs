//! `TestDesk`: one `huytk serve` on the embedded default's parts (Maildir
//! spool and outbox, file SMS) or on a PostgreSQL database, with an
//! operator and a supervisor, typed API calls and the letters it sent.
//! In the shape of zero2prod's `spawn_app`: a test says what desk it
//! needs and talks to it as a client would.

use serde_json::{json, Value};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Duration;

use super::{
    apply_clock_file, free_port, http, wait_for, wait_for_port, Daemon, Dovecot, FakeClock,
    HttpResponse, Kannel, Slapd, TempDir, LDAP_BASE, PASSWORD,
};

/// The operators' passwords (none contains its login).
pub const OPERATOR_PASSWORD: &str = "mat-khau-thu-nhat";

/// An operator a desk starts with.
#[derive(Debug, Clone)]
pub struct TestOperator {
    /// Login.
    pub login: String,
    /// Display name (`--name`), if any.
    pub name: Option<String>,
    /// `operator`, `supervisor` or `admin`.
    pub role: String,
    /// Password.
    pub password: String,
}

impl TestOperator {
    /// One with `role` and `password`, no display name.
    pub fn new(login: &str, role: &str, password: &str) -> TestOperator {
        TestOperator {
            login: login.to_owned(),
            name: None,
            role: role.to_owned(),
            password: password.to_owned(),
        }
    }

    /// The same with a display name.
    pub fn named(mut self, name: &str) -> TestOperator {
        self.name = Some(name.to_owned());
        self
    }
}

/// How a desk starts.
pub struct TestDeskBuilder {
    tag: String,
    database: Option<String>,
    accounts: String,
    grace_seconds: u64,
    extra: String,
    desk_extra: String,
    database_extra: String,
    poll_seconds: u64,
    operators: Option<Vec<TestOperator>>,
    mailbox: Option<String>,
    mail: Option<(u16, u16)>,
    ldap: Option<u16>,
    kannel: Option<u16>,
    sms: Option<String>,
    clock: Option<PathBuf>,
}

/// A running desk.
pub struct TestDesk {
    /// Its data folder (spool, outbox, SMS file, SQLite database).
    pub dir: TempDir,
    /// Its config file.
    pub config: PathBuf,
    /// The console's port.
    pub web: u16,
    /// `lan`'s API token (operator).
    pub operator: String,
    /// `giamsat`'s API token (supervisor).
    pub supervisor: String,
    daemon: Option<Daemon>,
    delivered: std::cell::Cell<u32>,
    clock: Option<PathBuf>,
}

/// A letter the desk put in its outbox.
#[derive(Debug, Clone)]
pub struct Letter {
    /// To.
    pub to: String,
    /// Subject.
    pub subject: String,
    /// Plain text.
    pub text: String,
    /// Its Message-ID, with angle brackets.
    pub message_id: String,
}

impl TestDesk {
    /// A desk on the embedded default, named `tag` in its temp folder.
    pub fn embedded(tag: &str) -> TestDeskBuilder {
        TestDeskBuilder {
            tag: tag.to_owned(),
            database: None,
            accounts: String::new(),
            grace_seconds: 60,
            extra: String::new(),
            desk_extra: String::new(),
            database_extra: String::new(),
            poll_seconds: 1,
            operators: Some(vec![
                TestOperator::new("lan", "operator", OPERATOR_PASSWORD),
                TestOperator::new("giamsat", "supervisor", OPERATOR_PASSWORD),
            ]),
            mailbox: None,
            mail: None,
            ldap: None,
            kannel: None,
            sms: None,
            clock: None,
        }
    }
}

impl TestDeskBuilder {
    /// The portal accounts in its embedded directory (TOML `[[account]]`s).
    pub fn accounts(mut self, toml: &str) -> Self {
        self.accounts = toml.to_owned();
        self
    }

    /// Another database (a PostgreSQL URL) instead of the SQLite file.
    pub fn database(mut self, url: &str) -> Self {
        self.database = Some(url.to_owned());
        self
    }

    /// The grace period's length.
    pub fn grace_seconds(mut self, s: u64) -> Self {
        self.grace_seconds = s;
        self
    }

    /// Another replica of a desk whose database has its operators already
    /// (its tokens are then empty).
    pub fn replica(mut self) -> Self {
        self.operators = None;
        self
    }

    /// These operators instead of `lan` (operator) and `giamsat`
    /// (supervisor); the desk's `operator` and `supervisor` tokens are then
    /// those of the first of each role here (empty if none).
    pub fn operators(mut self, operators: &[TestOperator]) -> Self {
        self.operators = Some(operators.to_vec());
        self
    }

    /// How often the inbox is read when idle (1 s unless said).
    pub fn poll_seconds(mut self, s: u64) -> Self {
        self.poll_seconds = s;
        self
    }

    /// Reads `desk@test` on a test Dovecot (IMAP) and sends through a test
    /// Postfix at `smtp_port`, instead of the local spool and outbox (whose
    /// `letters` and `deliver` then see nothing).
    pub fn imap(mut self, dovecot: &Dovecot, smtp_port: u16) -> Self {
        self.mail = Some((dovecot.imap_port, smtp_port));
        self
    }

    /// Portal accounts in a test OpenLDAP instead of the embedded table.
    pub fn ldap(mut self, slapd: &Slapd) -> Self {
        self.ldap = Some(slapd.port);
        self
    }

    /// SMS through a test Kannel (delivery reports back to this desk's
    /// console) instead of the file outbox.
    pub fn kannel(mut self, kannel: &Kannel) -> Self {
        self.kannel = Some(kannel.sendsms_port);
        self
    }

    /// The daemon lives at the time `clock` says (libfaketime), not the
    /// machine's; the CLI calls that prepare it keep the machine's.
    pub fn clock(mut self, clock: &FakeClock) -> Self {
        self.clock = Some(clock.file());
        self
    }

    /// Another `[sms]` table than the file outbox (its keys, without the
    /// header): a JSON gateway's, say.
    pub fn sms(mut self, toml: &str) -> Self {
        self.sms = Some(toml.to_owned());
        self
    }

    /// More lines for the config's `[desk]` table.
    pub fn desk(mut self, toml: &str) -> Self {
        self.desk_extra.push_str(toml);
        self
    }

    /// More lines for the config's `[database]` table.
    pub fn database_config(mut self, toml: &str) -> Self {
        self.database_extra.push_str(toml);
        self
    }

    /// Another `[mailbox]` than the spool (the keys, without the
    /// header): an IMAP server's, say; letters still go to the outbox.
    pub fn mailbox(mut self, toml: &str) -> Self {
        self.mailbox = Some(toml.to_owned());
        self
    }

    /// More TOML appended to the config.
    pub fn config(mut self, toml: &str) -> Self {
        self.extra.push_str(toml);
        self
    }

    /// Writes the config, loads the accounts, adds the operators and
    /// starts the daemon; returns once the console answers.
    pub fn start(self) -> TestDesk {
        self.start_deferred().run()
    }

    /// All of `start` but the daemon, so several replicas can start at once.
    pub fn start_deferred(self) -> PreparedDesk {
        let dir = TempDir::new(&self.tag);
        let d = dir.path();
        let web = free_port();
        let db = self
            .database
            .unwrap_or_else(|| format!("sqlite://{}/desk.db", d.display()));
        let config = d.join("huytk.toml");
        let mail = match (self.mail, &self.mailbox) {
            (None, Some(mailbox)) => format!(
                "[mailbox]\n{mailbox}[mail_out]\npath = \"{p}/outbox\"\n",
                p = d.display(),
            ),
            (None, None) => format!(
                "[mailbox]\npath = \"{p}/spool\"\npoll_seconds = {poll}\n[mail_out]\npath = \"{p}/outbox\"\n",
                p = d.display(),
                poll = self.poll_seconds,
            ),
            (Some((imap, smtp)), _) => format!(
                "[mailbox]\nkind = \"imap\"\nhost = \"127.0.0.1\"\nport = {imap}\nsecurity = \"plain\"\n\
                 username = \"desk@test\"\npassword = \"{PASSWORD}\"\npoll_seconds = {poll}\n\
                 [mail_out]\nkind = \"smtp\"\nhost = \"127.0.0.1\"\nport = {smtp}\nsecurity = \"plain\"\n\
                 retry_base_seconds = 1\n",
                poll = self.poll_seconds,
            ),
        };
        let sms = match (self.kannel, &self.sms) {
            (None, Some(sms)) => format!("[sms]\n{sms}"),
            (None, None) => format!("[sms]\nkind = \"file\"\npath = \"{}/sms.jsonl\"\n", d.display()),
            (Some(port), _) => format!(
                "[sms]\nkind = \"kannel\"\nurl = \"http://127.0.0.1:{port}/cgi-bin/sendsms\"\n\
                 username = \"desk\"\npassword = \"secret\"\ndlr_base_url = \"http://127.0.0.1:{web}\"\n\
                 dlr_secret = \"dlr-secret\"\nretry_base_seconds = 1\n"
            ),
        };
        let accounts = match self.ldap {
            None => String::new(),
            Some(port) => format!(
                "[accounts]\nkind = \"ldap\"\nurl = \"ldap://127.0.0.1:{port}\"\n\
                 bind_dn = \"cn=admin,dc=portal,dc=test\"\nbind_password = \"secret\"\n\
                 base_dn = \"{LDAP_BASE}\"\ntimeout_seconds = 3\n"
            ),
        };
        std::fs::write(
            &config,
            format!(
                "[database]\nurl = \"{db}\"\n{dbx}[desk]\naddress = \"desk@test\"\ngrace_seconds = {g}\n{dx}\
                 {mail}{sms}{accounts}\
                 [web]\nbind = \"127.0.0.1:{web}\"\n[templates]\ndir = \"{t}\"\n{extra}",
                g = self.grace_seconds,
                dbx = self.database_extra,
                dx = self.desk_extra,
                t = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
                    .join("templates")
                    .display(),
                extra = self.extra,
            ),
        )
        .unwrap();
        if !self.accounts.is_empty() {
            let file = d.join("accounts.toml");
            std::fs::write(&file, &self.accounts).unwrap();
            huytk_cli(&config, &["accounts", "load", file.to_str().unwrap()], "");
        }
        let (operator, supervisor) = add_operators(&config, self.operators.as_deref());
        PreparedDesk(TestDesk {
            dir,
            config,
            web,
            operator,
            supervisor,
            daemon: None,
            delivered: std::cell::Cell::new(0),
            clock: self.clock,
        })
    }
}

/// Adds `operators` through the CLI; the tokens of the first operator and
/// the first supervisor among them.
fn add_operators(config: &Path, operators: Option<&[TestOperator]>) -> (String, String) {
    let operators = operators.unwrap_or_default();
    for o in operators {
        let mut args = vec!["operator", "add", &o.login, "--role", &o.role];
        if let Some(name) = &o.name {
            args.extend(["--name", name]);
        }
        args.push("--password-stdin");
        huytk_cli(config, &args, &format!("{}\n", o.password));
    }
    let first = |role: &str| {
        operators
            .iter()
            .find(|o| o.role == role)
            .map(|o| token_of(config, &o.login))
            .unwrap_or_default()
    };
    (first("operator"), first("supervisor"))
}

/// A new API token for `login`.
fn token_of(config: &Path, login: &str) -> String {
    huytk_cli(config, &["operator", "token", login], "")
        .trim()
        .to_owned()
}

/// A desk whose daemon has not started yet.
pub struct PreparedDesk(TestDesk);

impl PreparedDesk {
    /// Starts its daemon; returns once the console answers.
    pub fn run(self) -> TestDesk {
        let d = self.spawn();
        wait_for_port(d.web, "the console");
        d
    }

    /// Starts its daemon and returns at once.
    pub fn spawn(mut self) -> TestDesk {
        let d = &mut self.0;
        d.daemon = Some(d.start_daemon(&d.dir.path().join("daemon.log")));
        self.0
    }
}

impl TestDesk {
    /// Starts `huytk serve` on its config, on its clock if it has one.
    fn start_daemon(&self, log: &Path) -> Daemon {
        start_daemon_with(&self.config, log, |cmd| {
            if let Some(file) = &self.clock {
                apply_clock_file(file, cmd);
            }
        })
    }

    /// Its folder.
    pub fn path(&self) -> &Path {
        self.dir.path()
    }

    /// A new API token for `login`.
    pub fn token(&self, login: &str) -> String {
        token_of(&self.config, login)
    }

    /// The console's URL for `path`.
    pub fn url(&self, path: &str) -> String {
        format!("http://127.0.0.1:{}{path}", self.web)
    }

    /// The first daemon's log (stderr), for a failure message.
    pub fn log(&self) -> String {
        std::fs::read_to_string(self.log_path()).unwrap_or_default()
    }

    /// Where the first daemon logs.
    pub fn log_path(&self) -> PathBuf {
        self.path().join("daemon.log")
    }

    /// Waits until the newest request for `number` is in `state`; its
    /// whole view.
    pub async fn wait_state(&self, number: &str, state: &str, timeout: Duration) -> Value {
        let what = format!("a request for {number} in {state}");
        wait_for(&what, timeout, || async {
            let found = self.requests_for(number);
            match found.last() {
                Some(v) if v["request"]["state"] == state => Ok(v.clone()),
                Some(v) => Err(v["request"].to_string()),
                None => Err("no request".into()),
            }
        })
        .await
    }

    /// Drops a message into the inbox spool.
    pub fn deliver(&self, raw: &[u8]) {
        let n = self.delivered.get() + 1;
        self.delivered.set(n);
        huytk::mailbox::maildir::Spool::open(&self.path().join("spool"))
            .unwrap()
            .deliver(raw, &format!("{n:04}-test"))
            .unwrap();
    }

    /// An API call with `token`.
    pub fn api_as(
        &self,
        token: &str,
        method: &str,
        path: &str,
        body: Option<Value>,
    ) -> HttpResponse {
        let auth = format!("Bearer {token}");
        let body = body.map(|b| b.to_string()).unwrap_or_default();
        http(
            self.web,
            method,
            &format!("/api/v1{path}"),
            &[
                ("Authorization", &auth),
                ("Content-Type", "application/json"),
            ],
            body.as_bytes(),
        )
    }

    /// Posts the login form (`login=…&password=…&next=…`, URL-encoded) as
    /// the console's own page would.
    pub fn post_login(&self, form: &str) -> HttpResponse {
        http(
            self.web,
            "POST",
            "/login",
            &[
                ("Content-Type", "application/x-www-form-urlencoded"),
                ("Origin", &format!("http://127.0.0.1:{}", self.web)),
            ],
            form.as_bytes(),
        )
    }

    /// An API call as the operator.
    pub fn api(&self, method: &str, path: &str, body: Option<Value>) -> HttpResponse {
        self.api_as(&self.operator, method, path, body)
    }

    /// Every request for `number` (any state), newest last.
    pub fn requests_for(&self, number: &str) -> Vec<Value> {
        let list = self
            .api(
                "GET",
                &format!("/requests?state=all&q={number}&limit=100"),
                None,
            )
            .json();
        let mut refs: Vec<String> = list["items"]
            .as_array()
            .unwrap()
            .iter()
            .map(|i| i["reference"].as_str().unwrap().to_owned())
            .collect();
        refs.sort_by_key(|r| r.rsplit('-').next().unwrap().parse::<u64>().unwrap());
        refs.iter().map(|r| self.request(r)).collect()
    }

    /// One request's whole view.
    pub fn request(&self, reference: &str) -> Value {
        self.api("GET", &format!("/requests/{reference}"), None)
            .json()
    }

    /// Waits until `count` requests for `number` exist and none is still
    /// being read (every stored message processed); returns them.
    pub async fn settle(&self, number: &str, count: usize) -> Vec<Value> {
        let what = format!("{count} requests for {number}, every message read");
        wait_for(&what, Duration::from_secs(60), || async {
            let found = self.requests_for(number);
            let messages = huytk_cli(&self.config, &["messages", "--json", "--all"], "");
            let pending = messages
                .lines()
                .filter(|l| l.contains("\"status\":\"stored\""))
                .count();
            if found.len() >= count && pending == 0 {
                return Ok(found);
            }
            let states: Vec<&Value> = found.iter().map(|r| &r["request"]["state"]).collect();
            Err(format!(
                "{} requests {states:?}, {pending} messages unread; messages:\n{messages}",
                found.len()
            ))
        })
        .await
    }

    /// Approves `account` on `reference` as the operator.
    pub fn approve(&self, reference: &str, account: &str) -> HttpResponse {
        self.api(
            "POST",
            &format!("/requests/{reference}/approve"),
            Some(json!({ "account": account })),
        )
    }

    /// Rejects `reference` with `reason` as the operator.
    pub fn reject(&self, reference: &str, reason: &str) -> HttpResponse {
        self.api(
            "POST",
            &format!("/requests/{reference}/reject"),
            Some(json!({ "reason": reason })),
        )
    }

    /// Asks the citizen for more (`message`) on `reference` as the operator.
    pub fn ask(&self, reference: &str, message: &str) -> HttpResponse {
        self.api(
            "POST",
            &format!("/requests/{reference}/ask"),
            Some(json!({ "message": message })),
        )
    }

    /// A served photo of `reference` (by its SHA-256) as the operator.
    pub fn photo(&self, reference: &str, sha256: &str) -> HttpResponse {
        self.api(
            "GET",
            &format!("/requests/{reference}/photos/{sha256}"),
            None,
        )
    }

    /// The letters in the outbox.
    pub fn letters(&self) -> Vec<Letter> {
        let mut out = Vec::new();
        for e in std::fs::read_dir(self.path().join("outbox/new"))
            .into_iter()
            .flatten()
            .flatten()
        {
            let raw = std::fs::read(e.path()).unwrap();
            let m = mail_parser::MessageParser::default().parse(&raw).unwrap();
            out.push(Letter {
                to: m
                    .to()
                    .and_then(|a| a.first())
                    .and_then(|a| a.address())
                    .unwrap_or_default()
                    .to_owned(),
                subject: m.subject().unwrap_or_default().to_owned(),
                text: m.body_text(0).unwrap_or_default().into_owned(),
                message_id: format!("<{}>", m.message_id().unwrap_or_default()),
            });
        }
        out
    }

    /// Waits for a letter matching `pred`.
    pub async fn letter(&self, what: &str, pred: impl Fn(&Letter) -> bool) -> Letter {
        wait_for(
            &format!("a letter {what}"),
            Duration::from_secs(30),
            || async {
                let letters = self.letters();
                match letters.iter().find(|l| pred(l)) {
                    Some(l) => Ok(l.clone()),
                    None => Err(format!("{letters:#?}")),
                }
            },
        )
        .await
    }

    /// Stops the daemon (SIGKILL on drop).
    pub fn stop(&mut self) {
        self.daemon.take();
    }

    /// Starts its daemon again (after `stop`); returns once the console
    /// answers.
    pub fn restart(mut self) -> TestDesk {
        self.daemon.take();
        let n = std::fs::read_dir(self.path()).map_or(0, |d| d.count());
        self.daemon = Some(self.start_daemon(&self.dir.path().join(format!("daemon-{n}.log"))));
        wait_for_port(self.web, "the console");
        self
    }
}

/// Runs the huytk binary with a config and `stdin`; its whole output.
pub fn huytk_run(config: &Path, args: &[&str], stdin: &str) -> std::process::Output {
    use std::io::Write;
    let mut child = Command::new(env!("CARGO_BIN_EXE_huytk"))
        .arg("--config")
        .arg(config)
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(stdin.as_bytes())
        .unwrap();
    child.wait_with_output().unwrap()
}

/// Runs the huytk binary with a config; panics with its output on failure.
pub fn huytk_cli(config: &Path, args: &[&str], stdin: &str) -> String {
    let out = huytk_run(config, args, stdin);
    assert!(
        out.status.success(),
        "huytk {args:?} failed: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// A daemon configuration reading `desk@test` on a test Dovecot and
/// sending through a test Postfix; `extra` adds keys to `[desk]`.
pub fn imap_config(
    dir: &Path,
    dovecot: &Dovecot,
    smtp_port: u16,
    db: &str,
    web_port: u16,
    extra: &str,
) -> PathBuf {
    let conf = format!(
        r#"[database]
url = "{db}"
[desk]
address = "desk@test"
message_id_domain = "desk.test"
{extra}
[mailbox]
kind = "imap"
host = "127.0.0.1"
port = {imap}
security = "plain"
username = "desk@test"
password = "{PASSWORD}"
poll_seconds = 5
[mail_out]
kind = "smtp"
host = "127.0.0.1"
port = {smtp_port}
security = "plain"
retry_base_seconds = 1
[templates]
dir = "{templates}"
[web]
bind = "127.0.0.1:{web}"
"#,
        web = web_port,
        imap = dovecot.imap_port,
        templates = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
            .join("templates")
            .display(),
    );
    let path = dir.join("huytk.toml");
    std::fs::write(&path, conf).unwrap();
    path
}

/// Starts `huytk serve` with a config, logging to a file.
pub fn start_daemon(config: &Path, log: &Path) -> Daemon {
    start_daemon_with(config, log, |_| {})
}

/// `start_daemon`, with its command changed by `prepare` first (put on a
/// [`super::FakeClock`], say).
pub fn start_daemon_with(config: &Path, log: &Path, prepare: impl FnOnce(&mut Command)) -> Daemon {
    let log = std::fs::File::create(log).unwrap();
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_huytk"));
    cmd.arg("--config")
        .arg(config)
        .arg("serve")
        .stdout(Stdio::null())
        .stderr(log);
    prepare(&mut cmd);
    Daemon(cmd.spawn().unwrap())
}

/// The store at `url`, unlocked with the key file `key`.
pub async fn open_store_with(url: &str, key: &Path) -> huytk::store::Store {
    huytk::store::Store::connect(url)
        .await
        .unwrap()
        .unlock(&huytk::store::keys::KeySource::File(key.to_owned()))
        .await
        .unwrap()
        .0
}

/// The store at `url`, unlocked as the daemon unlocks it (the master key
/// beside a SQLite file, or the default key file for PostgreSQL).
pub async fn open_store(url: &str) -> huytk::store::Store {
    let db = huytk::config::DatabaseConfig {
        url: url.to_owned(),
        ..Default::default()
    };
    huytk::store::Store::connect(url)
        .await
        .unwrap()
        .unlock(&db.key_source())
        .await
        .unwrap()
        .0
}
