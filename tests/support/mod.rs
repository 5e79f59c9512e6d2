//! Real servers for the integration tests, started on loopback in a temp
//! folder and stopped when dropped. Each needs its Debian package, which
//! `scripts/test` installs; a missing binary is a test failure, not a skip.

#![allow(dead_code)]

pub mod desk;
pub mod dns;
pub mod mail;

use futures::StreamExt;
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// A fresh temporary folder, removed on drop.
pub struct TempDir(pub PathBuf);

impl TempDir {
    /// Makes one.
    pub fn new(tag: &str) -> TempDir {
        let p = std::env::temp_dir().join(format!(
            "huytk-{tag}-{}-{}",
            std::process::id(),
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .unwrap()
                .as_nanos()
        ));
        std::fs::create_dir_all(&p).unwrap();
        TempDir(p)
    }
    /// Its path.
    pub fn path(&self) -> &Path {
        &self.0
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// A free loopback port.
pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// Waits until something listens on `port`.
pub fn wait_for_port(port: u16, what: &str) {
    let start = Instant::now();
    while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(
            start.elapsed() < Duration::from_secs(30),
            "{what} did not start on port {port}"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

fn run(cmd: &mut Command, what: &str) {
    let out = cmd.output().unwrap_or_else(|e| {
        panic!("{what}: {e} (is its package installed? scripts/test installs it)")
    });
    assert!(
        out.status.success(),
        "{what} failed: {}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

/// A PostgreSQL 15 server of our own.
pub struct Postgres {
    dir: TempDir,
    /// Its URL.
    pub url: String,
    bin: PathBuf,
}

fn pg_bin() -> PathBuf {
    for v in ["17", "16", "15", "14"] {
        let p = PathBuf::from(format!("/usr/lib/postgresql/{v}/bin"));
        if p.join("initdb").exists() {
            return p;
        }
    }
    panic!("PostgreSQL server binaries not found under /usr/lib/postgresql (scripts/test installs postgresql)");
}

fn as_postgres(cmd: &str) -> Command {
    // initdb refuses to run as root: run the server as the postgres user.
    let mut c = if unsafe_is_root() {
        Command::new("runuser")
    } else {
        Command::new("sh")
    };
    if unsafe_is_root() {
        c.args(["-u", "postgres", "--", "sh", "-c", cmd]);
    } else {
        c.args(["-c", cmd]);
    }
    c
}

fn unsafe_is_root() -> bool {
    Command::new("id")
        .arg("-u")
        .output()
        .map(|o| o.stdout.starts_with(b"0"))
        .unwrap_or(false)
}

impl Postgres {
    /// Starts one (about a second).
    pub fn start() -> Postgres {
        let bin = pg_bin();
        let dir = TempDir::new("pg");
        let _ = Command::new("chown")
            .args(["-R", "postgres:postgres"])
            .arg(dir.path())
            .status();
        let data = dir.path().join("data");
        let sock = dir.path().join("sock");
        std::fs::create_dir_all(&sock).unwrap();
        let _ = Command::new("chown")
            .args(["-R", "postgres:postgres"])
            .arg(dir.path())
            .status();
        run(
            &mut as_postgres(&format!(
                "{}/initdb -D {} -U postgres --auth=trust -E UTF8 --locale=C.UTF-8 -N >/dev/null",
                bin.display(),
                data.display()
            )),
            "initdb",
        );
        let port = free_port();
        run(
            &mut as_postgres(&format!(
                "{}/pg_ctl -D {} -l {}/log -w -o \"-c listen_addresses=127.0.0.1 -p {port} -k {} -c fsync=off -c max_connections=200\" start >/dev/null",
                bin.display(),
                data.display(),
                dir.path().display(),
                sock.display()
            )),
            "pg_ctl start",
        );
        wait_for_port(port, "postgres");
        Postgres {
            url: format!("postgres://postgres@127.0.0.1:{port}/postgres"),
            dir,
            bin,
        }
    }

    /// A fresh empty database on this server.
    pub fn fresh_database(&self, name: &str) -> String {
        let port = self
            .url
            .rsplit(':')
            .next()
            .unwrap()
            .split('/')
            .next()
            .unwrap();
        run(
            Command::new("psql")
                .args([
                    "-h",
                    "127.0.0.1",
                    "-p",
                    port,
                    "-U",
                    "postgres",
                    "-c",
                    &format!("CREATE DATABASE {name}"),
                ])
                .stdout(Stdio::null()),
            "createdb",
        );
        format!("postgres://postgres@127.0.0.1:{port}/{name}")
    }

    /// Every row of the database at `url`, as `pg_dump` writes it.
    pub fn dump(&self, url: &str) -> Vec<u8> {
        let out = Command::new(self.bin.join("pg_dump"))
            .arg(url)
            .output()
            .expect("pg_dump");
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        out.stdout
    }
}

impl Drop for Postgres {
    fn drop(&mut self) {
        let _ = as_postgres(&format!(
            "{}/pg_ctl -D {}/data -m immediate stop >/dev/null 2>&1",
            self.bin.display(),
            self.dir.path().display()
        ))
        .status();
    }
}

/// A child process killed on drop.
pub struct Daemon(pub Child);

impl Drop for Daemon {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Process ids whose parent is `pid`.
/// Sends `sig` (TERM, KILL …) to `pid`, quietly: a process that has already
/// gone is what a test wants, not an error to print.
pub fn signal(pid: u32, sig: &str) {
    let _ = Command::new("kill")
        .args([&format!("-{sig}"), &pid.to_string()])
        .stderr(Stdio::null())
        .status();
}

pub fn children_of(pid: u32) -> Vec<u32> {
    let mut out = Vec::new();
    for entry in std::fs::read_dir("/proc").into_iter().flatten().flatten() {
        let Ok(child) = entry.file_name().to_string_lossy().parse::<u32>() else {
            continue;
        };
        let Ok(stat) = std::fs::read_to_string(entry.path().join("stat")) else {
            continue;
        };
        // Fields after the parenthesised command name: state, ppid, …
        let after = stat.rsplit_once(')').map(|(_, r)| r).unwrap_or("");
        if after
            .split_whitespace()
            .nth(1)
            .and_then(|p| p.parse::<u32>().ok())
            == Some(pid)
        {
            out.push(child);
        }
    }
    out
}

/// A Dovecot IMAP server (with LMTP for delivery) of our own.
pub struct Dovecot {
    dir: TempDir,
    child: Child,
    /// IMAP port.
    pub imap_port: u16,
    /// LMTP port (delivery into mailboxes).
    pub lmtp_port: u16,
    /// IMAPS port (with `start_with(.., true)`).
    pub imaps_port: u16,
}

/// What a test Dovecot offers beyond plain IMAP with IDLE.
#[derive(Debug, Clone, Default)]
pub struct DovecotOptions {
    /// A self-signed certificate: STARTTLS on the IMAP port, TLS on
    /// `imaps_port`.
    pub tls: bool,
    /// XOAUTH2 through Dovecot's `oauth2` passdb, validating tokens
    /// locally: JWTs signed HS256 with this key are accepted (the password
    /// still works for the other mechanisms).
    pub oauth2_hs256_key: Option<Vec<u8>>,
    /// IDLE left out of the advertised capabilities.
    pub no_idle: bool,
    /// Every session's client commands recorded (Dovecot's rawlog) in
    /// `rawlog_in(user)`.
    pub rawlog: bool,
}

/// Password of every test mailbox.
pub const PASSWORD: &str = "secret";

impl Dovecot {
    /// Starts Dovecot with mailboxes for `users` (`name@domain`).
    pub fn start(users: &[&str]) -> Dovecot {
        Dovecot::start_with(users, false)
    }

    /// Starts Dovecot; with `tls`, a self-signed certificate serves
    /// STARTTLS on the IMAP port and TLS on `imaps_port`.
    pub fn start_with(users: &[&str], tls: bool) -> Dovecot {
        Dovecot::start_opts(
            users,
            DovecotOptions {
                tls,
                ..Default::default()
            },
        )
    }

    /// Starts Dovecot with the given options.
    pub fn start_opts(users: &[&str], opts: DovecotOptions) -> Dovecot {
        let tls = opts.tls;
        let dir = TempDir::new("dovecot");
        let d = dir.path();
        for sub in ["run", "state", "mail"] {
            std::fs::create_dir_all(d.join(sub)).unwrap();
        }
        if opts.rawlog {
            // rawlog records a session only when this folder exists in the
            // user's home.
            for u in users {
                std::fs::create_dir_all(d.join("mail").join(u).join("dovecot.rawlog")).unwrap();
            }
        }
        // XOAUTH2 through the oauth2 passdb, tokens checked locally: the key
        // is looked up in the dict as <azp>/<alg>/<kid> ("default" when the
        // token names none), base64-encoded.
        let (mechanisms, oauth2) = match &opts.oauth2_hs256_key {
            Some(key) => {
                use base64::Engine;
                let keys = d.join("oauth2-keys").join("default").join("HS256");
                std::fs::create_dir_all(&keys).unwrap();
                std::fs::write(
                    keys.join("default"),
                    base64::engine::general_purpose::STANDARD.encode(key),
                )
                .unwrap();
                std::fs::write(
                    d.join("oauth2.conf.ext"),
                    format!(
                        "introspection_mode = local\nlocal_validation_key_dict = fs:posix:prefix={}/oauth2-keys/\nusername_attribute = email\n",
                        d.display()
                    ),
                )
                .unwrap();
                (
                    "plain login xoauth2",
                    format!(
                        "auth_verbose = yes\npassdb {{\n  driver = oauth2\n  mechanisms = xoauth2\n  args = {}/oauth2.conf.ext\n}}\n",
                        d.display()
                    ),
                )
            }
            None => ("plain login", String::new()),
        };
        // Dovecot's own list (2.3) without IDLE.
        let capability = if opts.no_idle {
            "imap_capability = IMAP4rev1 SASL-IR LOGIN-REFERRALS ID ENABLE LITERAL+ SORT \
             THREAD=REFERENCES MULTIAPPEND UNSELECT CHILDREN NAMESPACE UIDPLUS LIST-EXTENDED \
             I18NLEVEL=1 CONDSTORE QRESYNC ESEARCH ESORT SEARCHRES WITHIN CONTEXT=SEARCH \
             LIST-STATUS BINARY MOVE SNIPPET=FUZZY PREVIEW=FUZZY STATUS=SIZE SAVEDATE\n"
        } else {
            ""
        };
        // Each IMAP session's client lines go to ~/dovecot.rawlog/*.in.
        let rawlog = if opts.rawlog {
            "service imap {\n  executable = imap postlogin\n}\n\
             service postlogin {\n  executable = script-login -d rawlog\n  unix_listener postlogin {\n  }\n}\n"
        } else {
            ""
        };
        let ssl = if tls {
            run(
                Command::new("openssl")
                    .args([
                        "req",
                        "-x509",
                        "-newkey",
                        "rsa:2048",
                        "-nodes",
                        "-days",
                        "2",
                        "-subj",
                        "/CN=localhost",
                    ])
                    .arg("-keyout")
                    .arg(d.join("key.pem"))
                    .arg("-out")
                    .arg(d.join("cert.pem"))
                    .stdout(Stdio::null())
                    .stderr(Stdio::null()),
                "openssl req",
            );
            format!(
                "ssl = yes\nssl_cert = <{d}/cert.pem\nssl_key = <{d}/key.pem\n",
                d = d.display()
            )
        } else {
            "ssl = no\n".to_owned()
        };
        let conf_for = |imap_port: u16, lmtp_port: u16, imaps_port: u16| {
            format!(
            "base_dir = {d}/run\nstate_dir = {d}/state\ninstance_name = huytk-{imap_port}\nlisten = 127.0.0.1\n\
             {ssl}disable_plaintext_auth = no\nauth_mechanisms = {mechanisms}\n{capability}{rawlog}\
             mail_location = maildir:~/Maildir\nfirst_valid_uid = 1\nprotocols = imap lmtp\nlog_path = {d}/dovecot.log\n\
             passdb {{\n  driver = passwd-file\n  mechanisms = plain login\n  args = scheme=PLAIN {d}/users\n}}\n{oauth2}\
             userdb {{\n  driver = passwd-file\n  args = {d}/users\n}}\n\
             service imap-login {{\n  inet_listener imap {{\n    address = 127.0.0.1\n    port = {imap_port}\n  }}\n  inet_listener imaps {{\n    address = 127.0.0.1\n    port = {imaps}\n  }}\n}}\n\
             service lmtp {{\n  inet_listener lmtp {{\n    address = 127.0.0.1\n    port = {lmtp_port}\n  }}\n}}\n\
             protocol lmtp {{\n  postmaster_address = postmaster@test\n}}\nshutdown_clients = yes\n",
            d = d.display(),
            imaps = if tls { imaps_port } else { 0 },
            )
        };
        let users: String = users
            .iter()
            .map(|u| {
                format!(
                    "{u}:{{PLAIN}}{PASSWORD}:65534:65534::{}/mail/{u}::\n",
                    d.display()
                )
            })
            .collect();
        std::fs::write(d.join("users"), users).unwrap();
        let _ = Command::new("chown")
            .args(["-R", "65534"])
            .arg(d.join("mail"))
            .status();
        // Other test binaries pick free ports at the same time: a port
        // taken between our pick and Dovecot's bind makes it exit at once,
        // and then it is started again on other ports.
        for attempt in 1..=3 {
            let (imap_port, lmtp_port, imaps_port) = loop {
                let p = (free_port(), free_port(), free_port());
                if p.0 != p.1 && p.1 != p.2 && p.0 != p.2 {
                    break p;
                }
            };
            std::fs::write(
                d.join("dovecot.conf"),
                conf_for(imap_port, lmtp_port, imaps_port),
            )
            .unwrap();
            let mut child = Command::new("dovecot")
                .args(["-F", "-c"])
                .arg(d.join("dovecot.conf"))
                .stdout(Stdio::null())
                .stderr(std::fs::File::create(d.join("dovecot.stderr")).unwrap())
                .spawn()
                .expect("dovecot (scripts/test installs dovecot-core dovecot-imapd dovecot-lmtpd)");
            let mut ports = vec![imap_port, lmtp_port];
            if tls {
                ports.push(imaps_port);
            }
            let start = Instant::now();
            let exited = loop {
                if let Ok(Some(status)) = child.try_wait() {
                    break Some(status);
                }
                if ports
                    .iter()
                    .all(|p| std::net::TcpStream::connect(("127.0.0.1", *p)).is_ok())
                {
                    // Listening, and still alive a moment later (not another
                    // server's port while ours failed to bind).
                    std::thread::sleep(Duration::from_millis(100));
                    match child.try_wait() {
                        Ok(Some(status)) => break Some(status),
                        _ => break None,
                    }
                }
                if start.elapsed() > Duration::from_secs(30) {
                    let _ = child.kill();
                    let _ = child.wait();
                    panic!(
                        "dovecot did not listen on {ports:?} within 30 s:\n{}{}",
                        std::fs::read_to_string(d.join("dovecot.stderr")).unwrap_or_default(),
                        std::fs::read_to_string(d.join("dovecot.log")).unwrap_or_default()
                    );
                }
                std::thread::sleep(Duration::from_millis(50));
            };
            let Some(status) = exited else {
                return Dovecot {
                    dir,
                    child,
                    imap_port,
                    lmtp_port,
                    imaps_port,
                };
            };
            let why = format!(
                "{}{}",
                std::fs::read_to_string(d.join("dovecot.stderr")).unwrap_or_default(),
                std::fs::read_to_string(d.join("dovecot.log")).unwrap_or_default()
            );
            assert!(
                attempt < 3 && why.contains("Address already in use"),
                "dovecot exited ({status}):\n{why}"
            );
        }
        unreachable!("the loop returns or panics")
    }

    /// What clients sent in `user`'s sessions so far (with `rawlog`), one
    /// session after another.
    pub fn rawlog_in(&self, user: &str) -> String {
        let dir = self
            .dir
            .path()
            .join("mail")
            .join(user)
            .join("dovecot.rawlog");
        let mut files: Vec<PathBuf> = std::fs::read_dir(dir)
            .map(|r| r.filter_map(|e| e.ok().map(|e| e.path())).collect())
            .unwrap_or_default();
        files.retain(|p| p.extension().is_some_and(|e| e == "in"));
        files.sort();
        files
            .iter()
            .map(|p| std::fs::read_to_string(p).unwrap_or_default())
            .collect()
    }

    /// Its log, for failure messages.
    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("dovecot.log")).unwrap_or_default()
    }

    /// How many messages `user`'s INBOX holds, counted on disk (cheaper
    /// than a login when a test waits for a thousand mailboxes).
    pub fn inbox_count(&self, user: &str) -> usize {
        let maildir = self.dir.path().join("mail").join(user).join("Maildir");
        ["new", "cur"]
            .iter()
            .map(|sub| std::fs::read_dir(maildir.join(sub)).map_or(0, |d| d.count()))
            .sum()
    }

    /// The master's process id.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Stops it (to test outages); `restart` brings it back on the same ports.
    pub fn stop(&mut self) {
        // The master's children (imap, lmtp, auth …) serve open connections
        // for a while after it exits: end them too, as a crash would.
        let children = children_of(self.child.id());
        signal(self.child.id(), "TERM");
        for pid in children {
            signal(pid, "KILL");
        }
        let _ = self.child.wait();
        let start = Instant::now();
        while std::net::TcpStream::connect(("127.0.0.1", self.imap_port)).is_ok()
            && start.elapsed() < Duration::from_secs(10)
        {
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// Starts it again after `stop`.
    pub fn restart(&mut self) {
        self.child = Command::new("dovecot")
            .args(["-F", "-c"])
            .arg(self.dir.path().join("dovecot.conf"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        wait_for_port(self.imap_port, "dovecot imap");
    }
}

impl Drop for Dovecot {
    fn drop(&mut self) {
        self.stop();
    }
}

/// A Postfix MTA of our own, delivering every `@test` address into Dovecot
/// over LMTP (or, with [`PostfixOptions::relay_to`], relaying all mail to
/// another one).
pub struct Postfix {
    dir: TempDir,
    /// SMTP port.
    pub port: u16,
}

/// How a [`Postfix`] is set up beyond the default (`mx.test`, delivering
/// `@test` into Dovecot).
#[derive(Debug, Clone, Default)]
pub struct PostfixOptions {
    /// `myhostname`: its HELO, and the `by` of its `Received` lines
    /// (default `mx.test`).
    pub hostname: Option<String>,
    /// Relay every mail to this loopback SMTP port instead of delivering
    /// `@test` over LMTP (a sending server).
    pub relay_to: Option<u16>,
    /// The loopback address its SMTP client connects from
    /// (`smtp_bind_address`), so a receiver sees another client IP.
    pub bind_address: Option<String>,
    /// Milters (OpenDKIM, OpenDMARC) on these loopback ports, in order.
    pub milters: Vec<u16>,
}

impl Postfix {
    /// Starts Postfix relaying to `lmtp_port`.
    pub fn start(lmtp_port: u16) -> Postfix {
        Postfix::start_with(lmtp_port, &PostfixOptions::default())
    }

    /// Starts Postfix delivering to `lmtp_port` (unused with
    /// `options.relay_to`), set up as `options` says.
    pub fn start_with(lmtp_port: u16, options: &PostfixOptions) -> Postfix {
        let dir = TempDir::new("postfix");
        let d = dir.path();
        for sub in ["etc", "queue", "data"] {
            std::fs::create_dir_all(d.join(sub)).unwrap();
        }
        let port = free_port();
        let mut main = format!(
            "compatibility_level = 3.6\nqueue_directory = {d}/queue\ndata_directory = {d}/data\nmail_owner = postfix\n\
             setgid_group = postdrop\ninet_interfaces = 127.0.0.1\ninet_protocols = ipv4\nmyhostname = {host}\n\
             mydomain = test\nmyorigin = test\nmydestination =\nmynetworks = 127.0.0.0/8\nrelay_domains =\n\
             maillog_file_prefixes = /tmp, /var\nmaillog_file = {d}/maillog\n\
             smtpd_relay_restrictions = permit_mynetworks, reject_unauth_destination\nsmtputf8_enable = yes\n",
            d = d.display(),
            host = options.hostname.as_deref().unwrap_or("mx.test"),
        );
        match options.relay_to {
            Some(relay) => main.push_str(&format!(
                "relayhost = [127.0.0.1]:{relay}\nsmtp_host_lookup = native\n"
            )),
            None => main.push_str(&format!(
                "virtual_mailbox_domains = test\nvirtual_transport = lmtp:inet:127.0.0.1:{lmtp_port}\n"
            )),
        }
        if let Some(ip) = &options.bind_address {
            main.push_str(&format!("smtp_bind_address = {ip}\n"));
        }
        if !options.milters.is_empty() {
            let milters: Vec<String> = options
                .milters
                .iter()
                .map(|p| format!("inet:127.0.0.1:{p}"))
                .collect();
            // No reverse lookups of loopback clients: the Received line
            // says `unknown [IP]`, as for any client without a PTR.
            main.push_str(&format!(
                "smtpd_milters = {}\nnon_smtpd_milters =\nmilter_default_action = tempfail\n\
                 smtpd_peername_lookup = no\n",
                milters.join(", ")
            ));
        }
        std::fs::write(d.join("etc/main.cf"), main).unwrap();
        let template = std::fs::read_to_string("/usr/share/postfix/master.cf.dist")
            .or_else(|_| std::fs::read_to_string("/etc/postfix/master.cf"))
            .expect("postfix master.cf (scripts/test installs postfix)");
        let mut master = String::new();
        for line in template.lines() {
            let mut fields: Vec<&str> = line.split_whitespace().collect();
            let is_service = !line.starts_with('#') && !line.starts_with(' ') && fields.len() >= 8;
            let listen = format!("127.0.0.1:{port}");
            if is_service && fields[0] == "smtp" && fields[1] == "inet" {
                fields[0] = &listen;
            }
            if is_service {
                fields[4] = "n"; // no chroot: the queue is in a temp folder
                master.push_str(&fields.join(" "));
            } else {
                master.push_str(line);
            }
            master.push('\n');
        }
        if !master.contains("postlogd") {
            master.push_str("postlog unix-dgram n - n - 1 postlogd\n");
        }
        std::fs::write(d.join("etc/master.cf"), master).unwrap();
        let _ = Command::new("chown")
            .args(["-R", "postfix"])
            .arg(d.join("data"))
            .status();
        run(
            Command::new("postfix")
                .arg("-c")
                .arg(d.join("etc"))
                .arg("start"),
            "postfix start",
        );
        wait_for_port(port, "postfix smtpd");
        Postfix { dir, port }
    }

    /// Stops it (to test outages).
    pub fn stop(&self) {
        let _ = Command::new("postfix")
            .arg("-c")
            .arg(self.dir.path().join("etc"))
            .arg("stop")
            .output();
        let start = Instant::now();
        while std::net::TcpStream::connect(("127.0.0.1", self.port)).is_ok()
            && start.elapsed() < Duration::from_secs(10)
        {
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// Starts it again.
    pub fn restart(&self) {
        run(
            Command::new("postfix")
                .arg("-c")
                .arg(self.dir.path().join("etc"))
                .arg("start"),
            "postfix start",
        );
        wait_for_port(self.port, "postfix smtpd");
    }

    /// Its mail log.
    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("maillog")).unwrap_or_default()
    }
}

impl Drop for Postfix {
    fn drop(&mut self) {
        self.stop();
    }
}

/// A logged-in IMAP session on a test Dovecot (plain, loopback).
pub async fn imap_login(
    port: u16,
    user: &str,
) -> async_imap::Session<Box<dyn huytk::mailbox::imap::Io>> {
    let c = huytk::config::MailboxConfig {
        host: "127.0.0.1".into(),
        port,
        security: huytk::config::Security::Plain,
        username: user.into(),
        password: PASSWORD.into(),
        ..Default::default()
    };
    huytk::mailbox::imap::connect(&c).await.unwrap()
}

/// A plain HTTP/1.1 GET on loopback; the whole response as text.
pub fn http_get(port: u16, path: &str) -> String {
    use std::io::{Read, Write};
    let mut s = std::net::TcpStream::connect(("127.0.0.1", port)).unwrap();
    write!(
        s,
        "GET {path} HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n"
    )
    .unwrap();
    let mut out = String::new();
    s.read_to_string(&mut out).unwrap();
    out
}

/// Appends a message to a user's INBOX.
pub async fn append(port: u16, user: &str, raw: &[u8]) {
    let mut s = imap_login(port, user).await;
    s.append("INBOX", None, None, raw).await.unwrap();
    s.logout().await.ok();
}

/// Messages of a folder: (subject, raw).
pub async fn folder(port: u16, user: &str, name: &str) -> Vec<(String, Vec<u8>)> {
    let mut s = imap_login(port, user).await;
    let mb = s.select(huytk::mailbox::utf7::encode(name)).await;
    if mb.is_err() {
        return Vec::new();
    }
    let mut out = Vec::new();
    {
        let mut st = s.fetch("1:*", "(BODY.PEEK[])").await.unwrap();
        while let Some(f) = st.next().await {
            let f = f.unwrap();
            if let Some(b) = f.body() {
                let m = mail_parser::MessageParser::default().parse(b).unwrap();
                out.push((m.subject().unwrap_or("").to_owned(), b.to_vec()));
            }
        }
    }
    s.logout().await.ok();
    out
}

/// Polls `f` until it holds, failing after `secs` seconds.
pub async fn wait_until<F, Fut>(what: &str, secs: u64, mut f: F)
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let start = Instant::now();
    while !f().await {
        assert!(
            start.elapsed() < Duration::from_secs(secs),
            "timed out waiting for {what}"
        );
        tokio::time::sleep(Duration::from_millis(300)).await;
    }
}

/// A shipped demo message with its sender replaced.
pub fn demo(name: &str, from: &str, to: &str) -> Vec<u8> {
    let raw = std::fs::read(
        PathBuf::from(env!("CARGO_MANIFEST_DIR"))
            .join("demo")
            .join(name),
    )
    .unwrap();
    String::from_utf8_lossy(&raw).replace(from, to).into_bytes()
}

/// An HTTP response as the tests read it.
#[derive(Debug)]
pub struct HttpResponse {
    /// Status code.
    pub status: u16,
    /// Headers, names in lower case.
    pub headers: Vec<(String, String)>,
    /// Body.
    pub body: Vec<u8>,
}

impl HttpResponse {
    /// A header's first value.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }
    /// The body as text.
    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }
    /// The body as JSON.
    pub fn json(&self) -> serde_json::Value {
        serde_json::from_slice(&self.body)
            .unwrap_or_else(|e| panic!("not JSON ({e}): {}", self.text()))
    }
}

/// One HTTP/1.1 request on loopback (Connection: close), for API and
/// page checks that need no browser.
pub fn http(
    port: u16,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: &[u8],
) -> HttpResponse {
    try_http(port, method, path, headers, body).unwrap()
}

/// `http`, with a server that is down or dies mid-answer (a replica being
/// killed) an error instead of a panic.
pub fn try_http(
    port: u16,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: &[u8],
) -> std::io::Result<HttpResponse> {
    use std::io::{Read, Write};
    let mut s = std::net::TcpStream::connect(("127.0.0.1", port))?;
    s.set_read_timeout(Some(Duration::from_secs(30)))?;
    let mut head = format!(
        "{method} {path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nConnection: close\r\nContent-Length: {}\r\n",
        body.len()
    );
    for (k, v) in headers {
        head.push_str(&format!("{k}: {v}\r\n"));
    }
    head.push_str("\r\n");
    s.write_all(head.as_bytes())?;
    s.write_all(body)?;
    let mut raw = Vec::new();
    s.read_to_end(&mut raw)?;
    let split = raw
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .ok_or_else(|| std::io::Error::other("an incomplete HTTP response"))?;
    let head = String::from_utf8_lossy(&raw[..split]).into_owned();
    let mut lines = head.split("\r\n");
    let status: u16 = lines
        .next()
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|c| c.parse().ok())
        .ok_or_else(|| std::io::Error::other("no status line"))?;
    let headers: Vec<(String, String)> = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(k, v)| (k.trim().to_ascii_lowercase(), v.trim().to_owned()))
        .collect();
    let mut body = raw[split + 4..].to_vec();
    if headers
        .iter()
        .any(|(k, v)| k == "transfer-encoding" && v.contains("chunked"))
    {
        let mut out = Vec::new();
        let mut rest = &body[..];
        while let Some(eol) = rest.windows(2).position(|w| w == b"\r\n") {
            let n = usize::from_str_radix(String::from_utf8_lossy(&rest[..eol]).trim(), 16)
                .unwrap_or(0);
            if n == 0 {
                break;
            }
            out.extend_from_slice(&rest[eol + 2..eol + 2 + n]);
            rest = &rest[eol + 2 + n + 2..];
        }
        body = out;
    }
    Ok(HttpResponse {
        status,
        headers,
        body,
    })
}

/// Runs the huytk binary with a config; panics with its output on failure.
pub fn huytk_cli(config: &Path, args: &[&str], stdin: &str) -> String {
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
    let out = child.wait_with_output().unwrap();
    assert!(
        out.status.success(),
        "huytk {args:?} failed: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// ChromeDriver driving Debian's headless Chromium.
pub struct ChromeDriver {
    child: Child,
    /// Its port.
    pub port: u16,
    profiles: TempDir,
}

impl ChromeDriver {
    /// Starts chromedriver on a free loopback port.
    pub fn start() -> ChromeDriver {
        let port = free_port();
        let child = Command::new("chromedriver")
            .arg(format!("--port={port}"))
            .arg("--allowed-ips=127.0.0.1")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("chromedriver (Debian package chromium-driver; scripts/test installs it)");
        wait_for_port(port, "chromedriver");
        ChromeDriver {
            child,
            port,
            profiles: TempDir::new("chrome"),
        }
    }

    /// A new browser with an empty profile.
    pub async fn browser(&self) -> fantoccini::Client {
        let profile = self.profiles.path().join(format!("p{}", free_port()));
        std::fs::create_dir_all(&profile).unwrap();
        let caps = serde_json::json!({
            "goog:chromeOptions": {
                "binary": "/usr/bin/chromium",
                "args": [
                    "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic",
                    "--no-first-run", "--disable-background-networking",
                    "--disable-component-update", "--disable-sync", "--disable-dev-shm-usage",
                    "--window-size=1400,1000",
                    format!("--user-data-dir={}", profile.display()),
                ]
            },
            "unhandledPromptBehavior": "ignore"
        });
        let caps = caps.as_object().unwrap().clone().into_iter().collect();
        // Plain HTTP to chromedriver on loopback: no TLS stack needed.
        let connector = hyper_util::client::legacy::connect::HttpConnector::new();
        fantoccini::ClientBuilder::new(connector)
            .capabilities(caps)
            .connect(&format!("http://127.0.0.1:{}", self.port))
            .await
            .expect("a Chromium session through chromedriver")
    }
}

impl Drop for ChromeDriver {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Where tests leave files for people to look at (screenshots).
pub fn artifacts(sub: &str) -> PathBuf {
    let p = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("target")
        .join("test-artifacts")
        .join(sub);
    std::fs::create_dir_all(&p).unwrap();
    p
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
    let log = std::fs::File::create(log).unwrap();
    Daemon(
        Command::new(env!("CARGO_BIN_EXE_huytk"))
            .arg("--config")
            .arg(config)
            .arg("serve")
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .unwrap(),
    )
}

/// An OpenLDAP slapd of our own: suffix `dc=portal,dc=test`, root
/// `cn=admin,dc=portal,dc=test` / `secret`, accounts under `ou=accounts`.
pub struct Slapd {
    dir: TempDir,
    child: Child,
    /// Its port.
    pub port: u16,
}

/// The test directory's suffix and accounts folder.
pub const LDAP_BASE: &str = "ou=accounts,dc=portal,dc=test";

impl Slapd {
    /// Starts slapd with the core, cosine, inetorgperson and nis schemas.
    pub fn start() -> Slapd {
        let dir = TempDir::new("slapd");
        let port = free_port();
        let data = dir.path().join("data");
        std::fs::create_dir_all(&data).unwrap();
        let conf = format!(
            "include /etc/ldap/schema/core.schema\ninclude /etc/ldap/schema/cosine.schema\n\
             include /etc/ldap/schema/inetorgperson.schema\ninclude /etc/ldap/schema/nis.schema\n\
             pidfile {d}/slapd.pid\nmodulepath /usr/lib/ldap\nmoduleload back_mdb\n\
             database mdb\nmaxsize 104857600\nsuffix \"dc=portal,dc=test\"\n\
             rootdn \"cn=admin,dc=portal,dc=test\"\nrootpw secret\ndirectory {data}\n",
            d = dir.path().display(),
            data = data.display()
        );
        let conf_path = dir.path().join("slapd.conf");
        std::fs::write(&conf_path, conf).unwrap();
        let child = Command::new("/usr/sbin/slapd")
            .arg("-h")
            .arg(format!("ldap://127.0.0.1:{port}/"))
            .arg("-f")
            .arg(&conf_path)
            .arg("-d")
            .arg("stats")
            .stdout(Stdio::null())
            .stderr(slapd_log(dir.path()))
            .spawn()
            .expect("slapd (Debian package slapd; scripts/test installs it)");
        wait_for_port(port, "slapd");
        let s = Slapd { dir, child, port };
        s.add(
            "dn: dc=portal,dc=test\nobjectClass: dcObject\nobjectClass: organization\ndc: portal\no: Portal\n\n\
             dn: ou=accounts,dc=portal,dc=test\nobjectClass: organizationalUnit\nou: accounts\n",
        );
        s
    }

    /// Adds entries (LDIF) with ldapadd.
    pub fn add(&self, ldif: &str) {
        use std::io::Write;
        let mut c = Command::new("ldapadd")
            .args(["-x", "-H", &format!("ldap://127.0.0.1:{}", self.port)])
            .args(["-D", "cn=admin,dc=portal,dc=test", "-w", "secret"])
            .stdin(Stdio::piped())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("ldapadd (Debian package ldap-utils)");
        c.stdin.take().unwrap().write_all(ldif.as_bytes()).unwrap();
        let out = c.wait_with_output().unwrap();
        assert!(
            out.status.success(),
            "ldapadd: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }

    /// An account entry's attributes (LDIF text), or None when it is gone.
    pub fn entry(&self, uid: &str) -> Option<String> {
        let out = Command::new("ldapsearch")
            .args([
                "-x",
                "-LLL",
                "-H",
                &format!("ldap://127.0.0.1:{}", self.port),
            ])
            .args(["-D", "cn=admin,dc=portal,dc=test", "-w", "secret"])
            .args(["-b", LDAP_BASE, &format!("(uid={uid})")])
            .output()
            .expect("ldapsearch");
        let text = String::from_utf8_lossy(&out.stdout).into_owned();
        (!text.trim().is_empty()).then_some(text)
    }

    /// Its operations log (`-d stats`: every connection and operation).
    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("slapd.log")).unwrap_or_default()
    }

    /// How many delete operations the server was asked for on the entry
    /// `uid`, whatever their result: a delete retried after a crash shows.
    pub fn delete_requests(&self, uid: &str) -> usize {
        let needle = format!("DEL dn=\"uid={uid},");
        self.log().matches(&needle).count()
    }

    /// Stops the server (the account store goes down).
    pub fn stop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    /// Starts it again on the same port and data.
    pub fn restart(&mut self) {
        self.stop();
        self.child = Command::new("/usr/sbin/slapd")
            .arg("-h")
            .arg(format!("ldap://127.0.0.1:{}/", self.port))
            .arg("-f")
            .arg(self.dir.path().join("slapd.conf"))
            .arg("-d")
            .arg("stats")
            .stdout(Stdio::null())
            .stderr(slapd_log(self.dir.path()))
            .spawn()
            .unwrap();
        wait_for_port(self.port, "slapd");
    }
}

/// slapd's stats output, appended to `slapd.log` in its folder.
fn slapd_log(dir: &Path) -> std::fs::File {
    std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(dir.join("slapd.log"))
        .unwrap()
}

impl Drop for Slapd {
    fn drop(&mut self) {
        self.stop();
    }
}

/// Kannel: bearerbox, smsbox and the fake SMSC, whose output lists every
/// SMS delivered to it.
pub struct Kannel {
    dir: TempDir,
    children: Vec<Child>,
    /// smsbox's sendsms port.
    pub sendsms_port: u16,
    bearer_admin: u16,
    smsc_port: u16,
    smsbox_port: u16,
}

impl Kannel {
    /// Starts bearerbox, the fake SMSC and smsbox.
    pub fn start() -> Kannel {
        Kannel::start_with_black_list("")
    }

    /// The same, with numbers matching `regex` refused by the sendsms user.
    pub fn start_with_black_list(regex: &str) -> Kannel {
        let dir = TempDir::new("kannel");
        let (bearer_admin, smsbox_port, smsc_port, sendsms_port) =
            (free_port(), free_port(), free_port(), free_port());
        let conf = format!(
            "group = core\nadmin-port = {bearer_admin}\nadmin-password = secret\nsmsbox-port = {smsbox_port}\n\
             log-file = \"{d}/bearerbox.log\"\nlog-level = 1\nbox-allow-ip = \"127.0.0.1\"\n\
             admin-allow-ip = \"127.0.0.1\"\nstore-type = spool\nstore-location = \"{d}/spool\"\n\
             dlr-storage = internal\n\n\
             group = smsc\nsmsc = fake\nsmsc-id = fake\nport = {smsc_port}\nconnect-allow-ip = \"127.0.0.1\"\n\n\
             group = smsbox\nbearerbox-host = 127.0.0.1\nsendsms-port = {sendsms_port}\n\
             http-request-retry = 10\nhttp-queue-delay = 1\n\
             log-file = \"{d}/smsbox.log\"\nlog-level = 1\n\n\
             group = sendsms-user\nusername = desk\npassword = secret\nmax-messages = 3\nconcatenation = true\n{black}",
            d = dir.path().display(),
            black = if regex.is_empty() {
                String::new()
            } else {
                format!("black-list-regex = \"{regex}\"\n")
            }
        );
        std::fs::create_dir_all(dir.path().join("spool")).unwrap();
        let conf_path = dir.path().join("kannel.conf");
        std::fs::write(&conf_path, conf).unwrap();
        let mut k = Kannel {
            dir,
            children: Vec::new(),
            sendsms_port,
            bearer_admin,
            smsc_port,
            smsbox_port,
        };
        k.start_all();
        k
    }

    fn start_all(&mut self) {
        let conf_path = self.dir.path().join("kannel.conf");
        let bearer = Command::new("/usr/sbin/bearerbox")
            .arg(&conf_path)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("bearerbox (Debian package kannel; scripts/test installs it)");
        wait_for_port(self.smsc_port, "bearerbox's fake SMSC port");
        // fakesmsc logs each message it receives on stderr.
        let out = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(self.dir.path().join("fakesmsc.out"))
            .unwrap();
        let fake = Command::new("/usr/lib/kannel/test/fakesmsc")
            .args([
                "-H",
                "127.0.0.1",
                "-r",
                &self.smsc_port.to_string(),
                "-i",
                "1",
                "-m",
                "0",
            ])
            .arg("x y text z")
            .stdout(Stdio::null())
            .stderr(out)
            .spawn()
            .expect("fakesmsc (Debian package kannel-extras)");
        wait_for_port(self.smsbox_port, "bearerbox's smsbox port");
        let smsbox = Command::new("/usr/sbin/smsbox")
            .arg(&conf_path)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("smsbox (Debian package kannel)");
        wait_for_port(self.sendsms_port, "smsbox's sendsms port");
        self.children = vec![smsbox, fake, bearer];
    }

    /// What the fake SMSC received: one line per message, `TO TEXT`, with
    /// the parts of a concatenated SMS joined and the text decoded.
    pub fn delivered(&self) -> String {
        let log = std::fs::read_to_string(self.dir.path().join("fakesmsc.out")).unwrap_or_default();
        let decode = |s: &str| -> String {
            let b = s.as_bytes();
            let mut out = Vec::new();
            let mut i = 0;
            while i < b.len() {
                match b[i] {
                    b'+' => out.push(b' '),
                    b'%' if i + 2 < b.len() => {
                        out.push(u8::from_str_radix(&s[i + 1..i + 3], 16).unwrap_or(b'?'));
                        i += 2;
                    }
                    c => out.push(c),
                }
                i += 1;
            }
            String::from_utf8_lossy(&out).into_owned()
        };
        let mut lines: Vec<String> = Vec::new();
        let mut joining = false;
        for l in log.lines() {
            let Some(body) = l.split("Got message").nth(1) else {
                continue;
            };
            let Some(inner) = body
                .split_once('<')
                .and_then(|(_, r)| r.rsplit_once('>'))
                .map(|(x, _)| x)
            else {
                continue;
            };
            let words: Vec<&str> = inner.splitn(3, ' ').collect();
            if words.len() < 3 {
                continue;
            }
            let (to, rest) = (words[1], words[2]);
            if let Some(r) = rest.strip_prefix("udh ") {
                let (udh, data) = r.split_once(" data ").unwrap_or((r, ""));
                let parts = decode(udh);
                let (total, seq) = {
                    let b = parts.as_bytes();
                    (
                        b.get(4).copied().unwrap_or(1),
                        b.get(5).copied().unwrap_or(1),
                    )
                };
                if seq > 1 && joining {
                    if let Some(last) = lines.last_mut() {
                        last.push_str(&decode(data));
                    }
                } else {
                    lines.push(format!("{to} {}", decode(data)));
                }
                joining = seq < total;
            } else {
                let text = rest.strip_prefix("text ").unwrap_or(rest);
                lines.push(format!("{to} {}", decode(text)));
                joining = false;
            }
        }
        lines.join("\n")
    }

    /// Stops every box (the gateway goes down).
    pub fn stop(&mut self) {
        for c in &mut self.children {
            let _ = c.kill();
            let _ = c.wait();
        }
        self.children.clear();
    }

    /// Starts them again.
    pub fn restart(&mut self) {
        self.stop();
        self.start_all();
    }

    /// bearerbox's status page port (admin password `secret`).
    pub fn admin_port(&self) -> u16 {
        self.bearer_admin
    }
}

impl Drop for Kannel {
    fn drop(&mut self) {
        self.stop();
    }
}

/// json-server 0.17 (from the npm registry, installed once under
/// `target/node`): a real REST server over a JSON file, standing for the
/// portal's account API, whose contract (`docs/portal-accounts.openapi.json`)
/// follows its conventions.
pub struct JsonServer {
    child: Child,
    /// Its port.
    pub port: u16,
    _dir: TempDir,
}

impl JsonServer {
    /// Serves `db` (a JSON document) on a free port.
    pub fn start(db: &serde_json::Value) -> JsonServer {
        let node = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("target/node");
        let bin = node.join("node_modules/.bin/json-server");
        if !bin.exists() {
            run(
                Command::new("npm")
                    .args(["install", "--no-audit", "--no-fund", "--prefix"])
                    .arg(&node)
                    .arg("json-server@0.17.4"),
                "npm install json-server (needs the npm registry)",
            );
        }
        let dir = TempDir::new("json-server");
        let file = dir.path().join("db.json");
        std::fs::write(&file, db.to_string()).unwrap();
        let port = free_port();
        let child = Command::new(&bin)
            .args(["--host", "127.0.0.1", "--port", &port.to_string()])
            .arg(&file)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("json-server");
        wait_for_port(port, "json-server");
        JsonServer {
            child,
            port,
            _dir: dir,
        }
    }

    /// GET a path, as JSON.
    pub fn get(&self, path: &str) -> serde_json::Value {
        http(self.port, "GET", path, &[], b"").json()
    }
}

impl Drop for JsonServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The browser's path and query.
pub async fn path_of(b: &fantoccini::Client) -> String {
    let u = b.current_url().await.unwrap();
    match u.query() {
        Some(q) => format!("{}?{q}", u.path()),
        None => u.path().to_owned(),
    }
}

/// Logs in through the console's login page at `base` (`http://host:port`).
pub async fn browser_login(b: &fantoccini::Client, base: &str, login: &str, password: &str) {
    use fantoccini::Locator;
    b.goto(&format!("{base}/login")).await.unwrap();
    b.find(Locator::Css("#login"))
        .await
        .unwrap()
        .send_keys(login)
        .await
        .unwrap();
    b.find(Locator::Css("#password"))
        .await
        .unwrap()
        .send_keys(password)
        .await
        .unwrap();
    b.find(Locator::Css("#login-submit"))
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
    if b.wait()
        .at_most(Duration::from_secs(10))
        .for_element(Locator::Css("#me"))
        .await
        .is_err()
    {
        panic!(
            "{login} did not get in: at {}\n{}",
            path_of(b).await,
            b.source().await.unwrap_or_default()
        );
    }
}

/// Clicks what `css` names (a button that asks for confirmation) and
/// confirms.
pub async fn click_confirmed(b: &fantoccini::Client, css: &str) {
    b.find(fantoccini::Locator::Css(css))
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
    accept_confirmation(b).await;
}

/// Accepts the confirmation dialog that a click opened.
pub async fn accept_confirmation(b: &fantoccini::Client) {
    let start = Instant::now();
    while b.accept_alert().await.is_err() {
        assert!(
            start.elapsed() < Duration::from_secs(5),
            "no confirmation asked"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
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
