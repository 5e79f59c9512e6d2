//! Kannel (Debian `kannel`, `kannel-extras`): bearerbox, smsbox and the
//! fake SMSC standing for the operator's SMS gateway.

use std::process::{Child, Command, Stdio};

use super::{free_port, wait_for_port, TempDir};

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
