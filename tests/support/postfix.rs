//! A Postfix MTA of our own delivering into a test Dovecot over LMTP.

use std::process::Command;

use super::{free_port, run, wait_for_port, wait_for_port_closed, TempDir};

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
        wait_for_port_closed(self.port, "the stopped Postfix");
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
