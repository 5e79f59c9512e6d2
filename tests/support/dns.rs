//! The DNS side of sender authentication, started on loopback for a test:
//! an authoritative NSD serving a citizen's zone (DKIM key, SPF, DMARC),
//! and the OpenDKIM / OpenDMARC milters (Debian `nsd`, `opendkim`,
//! `opendkim-tools`, `opendmarc`; `scripts/test` installs them).
//!
//! OpenDMARC asks the system resolver (`/etc/resolv.conf`, port 53) and
//! has no setting for another: each milter runs in its own mount
//! namespace (`unshare --mount`) where `/etc/resolv.conf` names the test's
//! NSD, and NSD listens on port 53 of an address of its own in 127/8
//! (never the machine's resolver; nothing outside the namespace changes).

use std::net::{IpAddr, Ipv4Addr};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicU8, Ordering};
use std::time::Duration;

use super::{free_port, run, wait_for_blocking, wait_until_blocking, TempDir};

/// Waits for a milter's port; says what it printed if it never opens.
fn wait_for_port_of(dir: &TempDir, port: u16, what: &str) {
    wait_for_blocking(
        &format!("{what} to listen on port {port}"),
        Duration::from_secs(30),
        || match std::net::TcpStream::connect(("127.0.0.1", port)) {
            Ok(_) => Ok(()),
            Err(_) => Err(std::fs::read_to_string(dir.path().join("stderr")).unwrap_or_default()),
        },
    );
}

/// A loopback address of this test's own (127.53.P.N: P from the process,
/// N counted), so tests running at once do not share one.
pub fn own_loopback() -> Ipv4Addr {
    static NEXT: AtomicU8 = AtomicU8::new(1);
    let n = NEXT.fetch_add(1, Ordering::Relaxed);
    Ipv4Addr::new(127, 53, (std::process::id() % 250) as u8 + 1, n)
}

fn wait_for(ip: IpAddr, port: u16, what: &str) {
    wait_until_blocking(
        &format!("{what} to listen on {ip}:{port}"),
        Duration::from_secs(30),
        || std::net::TcpStream::connect((ip, port)).is_ok(),
    );
}

/// A DKIM key pair made by `opendkim-genkey`.
pub struct DkimKey {
    /// The selector.
    pub selector: String,
    /// The private key file (PEM).
    pub private: std::path::PathBuf,
    /// The zone-file line publishing the public key
    /// (`s1._domainkey IN TXT ( "v=DKIM1; …" )`).
    pub record: String,
}

impl DkimKey {
    /// A new 2048-bit RSA key for `domain` in `dir`.
    pub fn generate(dir: &Path, domain: &str, selector: &str) -> DkimKey {
        run(
            Command::new("opendkim-genkey")
                .args(["-b", "2048", "-d", domain, "-s", selector, "-D"])
                .arg(dir),
            "opendkim-genkey (Debian opendkim-tools)",
        );
        let record = std::fs::read_to_string(dir.join(format!("{selector}.txt"))).unwrap();
        // `; ----- DKIM key …` ends the record: a comment in a zone file.
        DkimKey {
            selector: selector.to_owned(),
            private: dir.join(format!("{selector}.private")),
            record,
        }
    }
}

/// An authoritative NSD on port 53 of its own loopback address.
pub struct Nsd {
    dir: TempDir,
    child: Child,
    /// Where it answers (port 53).
    pub ip: Ipv4Addr,
}

impl Nsd {
    /// Serves each `(zone, records)`: the records after a generated SOA
    /// and NS, relative to the zone (`@ IN TXT "v=spf1 …"`).
    pub fn start(zones: &[(&str, String)]) -> Nsd {
        let dir = TempDir::new("nsd");
        let d = dir.path();
        let ip = own_loopback();
        let mut conf = format!(
            "server:\n  ip-address: {ip}@53\n  do-ip6: no\n  username: \"\"\n  chroot: \"\"\n\
             zonesdir: \"{d}\"\n  database: \"\"\n  pidfile: \"{d}/nsd.pid\"\n  logfile: \"{d}/nsd.log\"\n\
             xfrdfile: \"{d}/xfrd.state\"\n  zonelistfile: \"{d}/zone.list\"\n  server-count: 1\n\
             verbosity: 2\nremote-control:\n  control-enable: no\n",
            d = d.display()
        );
        for (zone, records) in zones {
            let file = d.join(format!("{zone}.zone"));
            std::fs::write(
                &file,
                format!(
                    "$ORIGIN {zone}.\n$TTL 60\n@ IN SOA ns.{zone}. hostmaster.{zone}. 1 3600 600 86400 60\n\
                     @ IN NS ns.{zone}.\nns IN A {ip}\n{records}\n"
                ),
            )
            .unwrap();
            conf.push_str(&format!(
                "zone:\n  name: {zone}\n  zonefile: \"{}\"\n",
                file.display()
            ));
        }
        std::fs::write(d.join("nsd.conf"), conf).unwrap();
        run(
            Command::new("nsd-checkconf").arg(d.join("nsd.conf")),
            "nsd-checkconf (Debian nsd)",
        );
        let child = Command::new("nsd")
            .arg("-d")
            .arg("-c")
            .arg(d.join("nsd.conf"))
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(d.join("stderr")).unwrap())
            .spawn()
            .expect("nsd (Debian nsd; scripts/test installs it)");
        wait_for(IpAddr::V4(ip), 53, "nsd");
        Nsd { dir, child, ip }
    }

    /// Its log, for failure messages.
    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("nsd.log")).unwrap_or_default()
            + &std::fs::read_to_string(self.dir.path().join("stderr")).unwrap_or_default()
    }
}

impl Drop for Nsd {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A milter (OpenDKIM or OpenDMARC) on a loopback port, resolving names
/// through `nameserver` only.
pub struct Milter {
    dir: TempDir,
    child: Child,
    /// Its milter port on 127.0.0.1.
    pub port: u16,
    _tables: Option<TempDir>,
}

/// Runs `program args…` in a mount namespace whose `/etc/resolv.conf`
/// names only `nameserver`.
fn spawn_resolving(dir: &Path, nameserver: Ipv4Addr, program: &str, args: &[&str]) -> Child {
    let resolv = dir.join("resolv.conf");
    std::fs::write(
        &resolv,
        format!("nameserver {nameserver}\noptions timeout:1 attempts:1\n"),
    )
    .unwrap();
    Command::new("unshare")
        .args(["--mount", "--propagation", "private", "sh", "-c"])
        .arg("mount --bind \"$0\" /etc/resolv.conf && exec \"$@\"")
        .arg(&resolv)
        .arg(program)
        .args(args)
        .stdout(std::fs::File::create(dir.join("stdout")).unwrap())
        .stderr(std::fs::File::create(dir.join("stderr")).unwrap())
        .spawn()
        .unwrap_or_else(|e| panic!("{program} under unshare: {e}"))
}

impl Milter {
    /// OpenDKIM signing every mail from `domain` (submitted from
    /// 127.0.0.1) with `key`.
    pub fn opendkim_signer(nameserver: Ipv4Addr, domain: &str, key: &DkimKey) -> Milter {
        Milter::opendkim(
            nameserver,
            &format!(
                "Mode s\nDomain {domain}\nSelector {}\nKeyFile {}\nInternalHosts 127.0.0.1\n\
                 SignatureAlgorithm rsa-sha256\nRequireSafeKeys false\n",
                key.selector,
                key.private.display()
            ),
        )
    }

    /// OpenDKIM signing every mail submitted from 127.0.0.1 as `domain`
    /// with `key`, whatever its From (a forger re-signing a copy).
    pub fn opendkim_signer_of_any(nameserver: Ipv4Addr, domain: &str, key: &DkimKey) -> Milter {
        let tables = TempDir::new("opendkim-tables");
        let keys = tables.path().join("keys");
        let signing = tables.path().join("signing");
        std::fs::write(
            &keys,
            format!("k {domain}:{}:{}\n", key.selector, key.private.display()),
        )
        .unwrap();
        std::fs::write(&signing, "* k\n").unwrap();
        let mut m = Milter::opendkim(
            nameserver,
            &format!(
                "Mode s\nKeyTable file:{}\nSigningTable refile:{}\nInternalHosts 127.0.0.1\n\
                 SignatureAlgorithm rsa-sha256\nRequireSafeKeys false\n",
                keys.display(),
                signing.display()
            ),
        );
        m._tables = Some(tables);
        m
    }

    /// OpenDKIM verifying signatures and writing `Authentication-Results:
    /// {authserv_id}; dkim=…`.
    pub fn opendkim_verifier(nameserver: Ipv4Addr, authserv_id: &str) -> Milter {
        Milter::opendkim(
            nameserver,
            // It removes headers naming the host's own name by default;
            // the authserv-id is another name: remove those (RFC 8601
            // section 5), whatever their method.
            &format!(
                "Mode v\nAuthservID {authserv_id}\nAlwaysAddARHeader yes\n\
                 RemoveARFrom {authserv_id}\nRemoveARAll yes\n"
            ),
        )
    }

    fn opendkim(nameserver: Ipv4Addr, extra: &str) -> Milter {
        let dir = TempDir::new("opendkim");
        let d = dir.path();
        let port = free_port();
        // Debian's OpenDKIM resolves with libunbound, which by default
        // never asks a loopback server and answers nothing under `test.`
        // (RFC 6761): a stub zone for `test.` at the NSD, no validation.
        std::fs::write(
            d.join("unbound.conf"),
            format!(
                "server:\n  do-not-query-localhost: no\n  module-config: \"iterator\"\n  do-ip6: no\n\
                 local-zone: \"test.\" nodefault\nstub-zone:\n  name: \"test.\"\n  stub-addr: {nameserver}@53\n"
            ),
        )
        .unwrap();
        std::fs::write(
            d.join("opendkim.conf"),
            format!(
                "Socket inet:{port}@127.0.0.1\nPidFile {d}/opendkim.pid\nSyslog yes\nLogWhy yes\n\
                 Canonicalization relaxed/relaxed\nResolverConfiguration {d}/unbound.conf\nUMask 007\n{extra}",
                d = d.display()
            ),
        )
        .unwrap();
        let conf = d.join("opendkim.conf");
        let child = spawn_resolving(
            d,
            nameserver,
            "opendkim",
            &["-f", "-x", conf.to_str().unwrap()],
        );
        wait_for_port_of(&dir, port, "opendkim");
        Milter {
            dir,
            child,
            port,
            _tables: None,
        }
    }

    /// OpenDMARC checking SPF itself and DMARC (never rejecting: the desk
    /// decides), writing `Authentication-Results: {authserv_id}; spf=…`
    /// and `…; dmarc=…`, reading OpenDKIM's results of the same id.
    pub fn opendmarc(nameserver: Ipv4Addr, authserv_id: &str) -> Milter {
        let dir = TempDir::new("opendmarc");
        let d = dir.path();
        let port = free_port();
        // Mail from 127.0.0.1 is ignored by default: ignore only an address
        // no test uses.
        std::fs::write(d.join("ignore"), "192.0.2.254\n").unwrap();
        std::fs::write(
            d.join("opendmarc.conf"),
            format!(
                "Socket inet:{port}@127.0.0.1\nPidFile {d}/opendmarc.pid\nAuthservID {authserv_id}\n\
                 TrustedAuthservIDs {authserv_id}\nIgnoreHosts {d}/ignore\nSPFSelfValidate true\n\
                 SPFIgnoreResults true\nRejectFailures false\nFailureReports false\nSyslog true\n\
                 RequiredHeaders false\nUMask 007\n",
                d = d.display()
            ),
        )
        .unwrap();
        let conf = d.join("opendmarc.conf");
        let child = spawn_resolving(
            d,
            nameserver,
            "opendmarc",
            &["-f", "-c", conf.to_str().unwrap()],
        );
        wait_for_port_of(&dir, port, "opendmarc");
        Milter {
            dir,
            child,
            port,
            _tables: None,
        }
    }

    /// What it wrote on its standard streams.
    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("stdout")).unwrap_or_default()
            + &std::fs::read_to_string(self.dir.path().join("stderr")).unwrap_or_default()
    }
}

impl Drop for Milter {
    fn drop(&mut self) {
        // `unshare` execs the milter: this is its process.
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// One SMTP conversation from `from_ip` (a loopback address) to a server
/// on 127.0.0.1:`port`: HELO `helo`, `MAIL FROM:<mail_from>`, the
/// message to `rcpt`. Panics with the server's answer when it refuses.
pub async fn smtp_send(
    from_ip: Ipv4Addr,
    port: u16,
    helo: &str,
    mail_from: &str,
    rcpt: &str,
    raw: &[u8],
) {
    use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
    let socket = tokio::net::TcpSocket::new_v4().unwrap();
    socket.bind((from_ip, 0).into()).unwrap();
    let stream = socket.connect(([127, 0, 0, 1], port).into()).await.unwrap();
    let (r, mut w) = stream.into_split();
    let mut r = BufReader::new(r);
    async fn reply(r: &mut (impl AsyncBufReadExt + Unpin), want: &str, what: &str) {
        loop {
            let mut line = String::new();
            r.read_line(&mut line).await.unwrap();
            assert!(line.starts_with(want), "{what}: {line}");
            if line.as_bytes().get(3) != Some(&b'-') {
                return;
            }
        }
    }
    reply(&mut r, "220", "greeting").await;
    for (cmd, want) in [
        (format!("EHLO {helo}\r\n"), "250"),
        (format!("MAIL FROM:<{mail_from}>\r\n"), "250"),
        (format!("RCPT TO:<{rcpt}>\r\n"), "250"),
        ("DATA\r\n".to_owned(), "354"),
    ] {
        w.write_all(cmd.as_bytes()).await.unwrap();
        reply(&mut r, want, cmd.trim()).await;
    }
    // Dot-stuffing: a line starting with "." gets another.
    let mut data = Vec::with_capacity(raw.len() + 16);
    for line in raw.split_inclusive(|&b| b == b'\n') {
        if line.starts_with(b".") {
            data.push(b'.');
        }
        data.extend_from_slice(line);
    }
    if !data.ends_with(b"\r\n") {
        data.extend_from_slice(b"\r\n");
    }
    data.extend_from_slice(b".\r\n");
    w.write_all(&data).await.unwrap();
    reply(&mut r, "250", "end of data").await;
    w.write_all(b"QUIT\r\n").await.unwrap();
}
