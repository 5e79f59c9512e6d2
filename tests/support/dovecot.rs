//! A Dovecot IMAP server (with LMTP for delivery) of our own, and the
//! IMAP client calls the tests make on it (log in, append, read a folder).

use futures::StreamExt;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use super::{children_of, free_port, run, signal, wait_for_port, wait_for_port_closed, TempDir};

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
        wait_for_port_closed(self.imap_port, "the stopped Dovecot");
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
