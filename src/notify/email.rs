//! Building and sending one email: lettre over SMTP in production, a local
//! Maildir outbox in the embedded default.

use lettre::message::header::{ContentType, HeaderName, HeaderValue};
use lettre::message::{Mailbox, MultiPart, SinglePart};
use lettre::transport::smtp::authentication::Credentials;
use lettre::transport::smtp::client::{Certificate, CertificateStore, Tls, TlsParameters};
use lettre::{AsyncSmtpTransport, AsyncTransport, Message, Tokio1Executor};
use serde::{Deserialize, Serialize};
use std::path::PathBuf;

use crate::config::{MailOutConfig, MailOutKind, Security};

/// A mail waiting in the outbox (its JSON payload).
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct OutgoingEmail {
    /// Recipient address.
    pub to: String,
    /// Subject.
    pub subject: String,
    /// Plain text.
    pub text: String,
    /// HTML.
    pub html: String,
    /// Our Message-ID, `<…>`, carrying the request reference.
    pub message_id: String,
    /// The citizen's message this answers.
    pub in_reply_to: Option<String>,
    /// The thread so far.
    pub references: Vec<String>,
}

/// Why a mail was not sent.
#[derive(Debug, thiserror::Error)]
#[error("{message}")]
pub struct SendError {
    /// What went wrong.
    pub message: String,
    /// Retrying will not help (bad address, message refused).
    pub permanent: bool,
}

/// Where mail goes.
#[derive(Clone)]
pub enum Mailer {
    /// A Maildir folder (embedded default): one file per mail, named by its
    /// outbox row so a retry overwrites instead of doubling.
    Maildir(PathBuf),
    /// An SMTP server.
    Smtp(AsyncSmtpTransport<Tokio1Executor>),
}

impl std::fmt::Debug for Mailer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Mailer::Maildir(p) => write!(f, "Maildir({})", p.display()),
            Mailer::Smtp(_) => f.write_str("Smtp"),
        }
    }
}

/// The RFC 3834 header that tells robots not to answer us.
#[derive(Clone)]
struct AutoSubmitted;

impl lettre::message::header::Header for AutoSubmitted {
    fn name() -> HeaderName {
        HeaderName::new_from_ascii_str("Auto-Submitted")
    }
    fn parse(_: &str) -> Result<Self, Box<dyn std::error::Error + Send + Sync>> {
        Ok(AutoSubmitted)
    }
    fn display(&self) -> HeaderValue {
        HeaderValue::new(Self::name(), "auto-replied".to_owned())
    }
}

/// lettre builds its own rustls configuration, but from the desk's one
/// set of platform roots (`net::tls`), not the bundled webpki list, so
/// SMTP trusts what IMAP, LDAP and HTTP trust.
fn smtp_tls(host: &str) -> Result<TlsParameters, lettre::transport::smtp::Error> {
    let mut b = TlsParameters::builder(host.to_owned()).certificate_store(CertificateStore::None);
    for der in crate::net::tls::root_certificates() {
        b = b.add_root_certificate(Certificate::from_der(der.to_vec())?);
    }
    b.build_rustls()
}

impl Mailer {
    /// The mailer the configuration asks for.
    pub fn from_config(c: &MailOutConfig) -> Result<Mailer, SendError> {
        if c.kind == MailOutKind::Smtp {
            let fail = |e: lettre::transport::smtp::Error| SendError {
                message: format!("SMTP {}: {e}", c.host),
                permanent: true,
            };
            let builder = AsyncSmtpTransport::<Tokio1Executor>::builder_dangerous(&c.host);
            let builder = match c.security {
                Security::Tls => builder.tls(Tls::Wrapper(smtp_tls(&c.host).map_err(fail)?)),
                Security::Starttls => builder.tls(Tls::Required(smtp_tls(&c.host).map_err(fail)?)),
                Security::Plain => builder,
            };
            let mut builder = builder
                .port(c.port)
                .timeout(Some(std::time::Duration::from_secs(30)));
            if !c.username.is_empty() {
                builder = builder.credentials(Credentials::new(
                    c.username.clone(),
                    c.password.expose().to_owned(),
                ));
            }
            Ok(Mailer::Smtp(builder.build()))
        } else {
            Ok(Mailer::Maildir(c.path.clone()))
        }
    }

    /// Builds the MIME message.
    pub fn build(from: &Mailbox, e: &OutgoingEmail) -> Result<Message, SendError> {
        let bad = |m: String| SendError {
            message: m,
            permanent: true,
        };
        let to: Mailbox =
            e.to.parse()
                .map_err(|err| bad(format!("recipient {:?}: {err}", e.to)))?;
        let mut b = Message::builder()
            .from(from.clone())
            .to(to)
            .subject(e.subject.clone())
            .message_id(Some(e.message_id.clone()))
            .header(AutoSubmitted);
        if let Some(irt) = &e.in_reply_to {
            b = b.in_reply_to(irt.clone());
        }
        if !e.references.is_empty() {
            b = b.references(e.references.join(" "));
        }
        b.multipart(
            MultiPart::alternative()
                .singlepart(
                    SinglePart::builder()
                        .header(ContentType::TEXT_PLAIN)
                        .body(e.text.clone()),
                )
                .singlepart(
                    SinglePart::builder()
                        .header(ContentType::TEXT_HTML)
                        .body(e.html.clone()),
                ),
        )
        .map_err(|err| bad(err.to_string()))
    }

    /// Sends one mail; `outbox_id` names it in a Maildir.
    pub async fn send(
        &self,
        from: &Mailbox,
        e: &OutgoingEmail,
        outbox_id: i64,
    ) -> Result<(), SendError> {
        let msg = Mailer::build(from, e)?;
        match self {
            Mailer::Maildir(dir) => {
                let io = |err: std::io::Error| SendError {
                    message: format!("outbox {}: {err}", dir.display()),
                    permanent: false,
                };
                for sub in ["tmp", "new", "cur"] {
                    tokio::fs::create_dir_all(dir.join(sub)).await.map_err(io)?;
                }
                let name = format!("outbox-{outbox_id:010}.eml");
                let tmp = dir.join("tmp").join(&name);
                tokio::fs::write(&tmp, msg.formatted()).await.map_err(io)?;
                tokio::fs::rename(&tmp, dir.join("new").join(&name))
                    .await
                    .map_err(io)?;
                Ok(())
            }
            Mailer::Smtp(t) => t.send(msg).await.map(|_| ()).map_err(|err| SendError {
                permanent: err.is_permanent(),
                message: format!("SMTP: {err}"),
            }),
        }
    }

    /// Removes the copies of these outbox letters that this desk keeps
    /// (the Maildir outbox's files); mail sent by SMTP is not ours to
    /// remove. Returns how many files went.
    pub fn forget(&self, outbox_ids: &[i64]) -> Result<usize, SendError> {
        let Mailer::Maildir(dir) = self else {
            return Ok(0);
        };
        let mut n = 0;
        for id in outbox_ids {
            let name = format!("outbox-{id:010}.eml");
            for sub in ["new", "cur", "tmp"] {
                let p = dir.join(sub).join(&name);
                match std::fs::remove_file(&p) {
                    Ok(()) => n += 1,
                    Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                    Err(e) => {
                        return Err(SendError {
                            message: format!("removing {}: {e}", p.display()),
                            permanent: false,
                        })
                    }
                }
            }
        }
        Ok(n)
    }

    /// Checks the server answers (for `doctor`).
    pub async fn check(&self) -> Result<(), SendError> {
        match self {
            Mailer::Maildir(dir) => std::fs::create_dir_all(dir).map_err(|e| SendError {
                message: format!("outbox {}: {e}", dir.display()),
                permanent: true,
            }),
            Mailer::Smtp(t) => match t.test_connection().await {
                Ok(true) => Ok(()),
                Ok(false) => Err(SendError {
                    message: "SMTP server did not accept a connection".into(),
                    permanent: false,
                }),
                Err(e) => Err(SendError {
                    message: format!("SMTP: {e}"),
                    permanent: false,
                }),
            },
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn smtp_tls_takes_every_platform_root() {
        // lettre refuses the whole list for one root it cannot add: the
        // shared list must hold only usable ones, and hold some.
        assert!(!crate::net::tls::root_certificates().is_empty());
        smtp_tls("smtp.example.org").unwrap();
    }

    #[test]
    fn headers_of_a_reply() {
        let e = OutgoingEmail {
            to: "an@gmail.com".into(),
            subject: "[HTK-1] Đã tiếp nhận".into(),
            text: "Kính gửi".into(),
            html: "<p>Kính gửi</p>".into(),
            message_id: "<HTK-1.ack@huytk>".into(),
            in_reply_to: Some("<abc@gmail.com>".into()),
            references: vec!["<abc@gmail.com>".into()],
        };
        let from: Mailbox = "DVC <dichvucong@chinhphu.vn>".parse().unwrap();
        let raw = String::from_utf8(Mailer::build(&from, &e).unwrap().formatted()).unwrap();
        assert!(raw.contains("Auto-Submitted: auto-replied"));
        assert!(raw.contains("In-Reply-To: <abc@gmail.com>"));
        assert!(raw.contains("References: <abc@gmail.com>"));
        assert!(raw.contains("Message-ID: <HTK-1.ack@huytk>"));
        let parsed = mail_parser::MessageParser::default()
            .parse(raw.as_bytes())
            .unwrap();
        assert_eq!(parsed.subject(), Some("[HTK-1] Đã tiếp nhận"));
    }
}
