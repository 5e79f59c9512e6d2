//! An OpenLDAP slapd of our own (Debian `slapd`, `ldap-utils`) holding the
//! portal's accounts.

use std::path::Path;
use std::process::{Child, Command, Stdio};

use super::{free_port, wait_for_port, TempDir};

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

    /// Freezes the server (SIGSTOP): it still takes connections, the
    /// kernel queues them, but it answers nothing: a directory that hangs.
    pub fn pause(&self) {
        signal(self.child.id(), libc::SIGSTOP);
    }

    /// Lets a paused server go on (SIGCONT).
    pub fn resume(&self) {
        signal(self.child.id(), libc::SIGCONT);
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

/// Sends `sig` to process `pid`.
fn signal(pid: u32, sig: libc::c_int) {
    // SAFETY: kill(2) takes any pid and signal number; it only fails.
    let done = unsafe { libc::kill(pid as libc::pid_t, sig) };
    assert_eq!(done, 0, "kill({pid}, {sig})");
}
