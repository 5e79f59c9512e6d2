//! IMAP over TLS and STARTTLS against a real Dovecot with a self-signed
//! certificate: accepted only when the configuration says so, and then
//! the session works.

mod support;

use huytk::config::{MailboxConfig, Security};
use support::{Dovecot, PASSWORD};

fn config(port: u16, security: Security, insecure_tls: bool) -> MailboxConfig {
    MailboxConfig {
        host: "localhost".into(),
        port,
        security,
        insecure_tls,
        username: "desk@test".into(),
        password: PASSWORD.into(),
        ..Default::default()
    }
}

#[tokio::test]
async fn tls_and_starttls_with_a_self_signed_certificate() {
    let d = Dovecot::start_with(&["desk@test"], true);
    for (port, security) in [
        (d.imaps_port, Security::Tls),
        (d.imap_port, Security::Starttls),
    ] {
        // The certificate is not trusted: refused unless allowed.
        let err = huytk::mailbox::imap::connect(&config(port, security, false))
            .await
            .err();
        assert!(
            err.as_ref().is_some_and(|e| e.to_string().contains("TLS")),
            "{security:?} with an untrusted certificate: {err:?}"
        );
        let mut s = huytk::mailbox::imap::connect(&config(port, security, true))
            .await
            .unwrap_or_else(|e| panic!("{security:?}: {e}\n{}", d.log()));
        let mb = s.select("INBOX").await.unwrap();
        assert!(mb.uid_validity.is_some());
        s.logout().await.ok();
    }
}
