//! The desk's one TLS client setup: the platform's root certificates,
//! loaded once per process, and one shared `rustls` client configuration
//! that every client uses (HTTP, IMAP, SMTP, LDAP). Loading the roots reads
//! every file under `/etc/ssl/certs`; doing that per request was slow and
//! gave each client its own idea of what is trusted.

use std::sync::{Arc, OnceLock};

use tokio_rustls::rustls;
use tokio_rustls::rustls::client::danger::{
    HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier,
};
use tokio_rustls::rustls::crypto::CryptoProvider;
use tokio_rustls::rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use tokio_rustls::rustls::{ClientConfig, DigitallySignedStruct, RootCertStore, SignatureScheme};

/// Why a TLS client could not be set up or connect.
#[derive(Debug, thiserror::Error)]
pub enum TlsError {
    /// The crypto provider refused the protocol versions (a build problem).
    #[error("TLS setup: {0}")]
    Setup(rustls::Error),
    /// The host cannot be a TLS server name.
    #[error("TLS: {host:?} is not a valid server name")]
    ServerName {
        /// The host given.
        host: String,
    },
    /// The handshake failed (certificate refused, protocol error, closed).
    #[error("TLS handshake with {host}: {source}")]
    Handshake {
        /// The host.
        host: String,
        /// What the handshake said.
        source: std::io::Error,
    },
}

/// The platform's root certificates, read once; only those rustls can use
/// as trust anchors (lettre refuses a whole list with one bad entry).
pub fn root_certificates() -> &'static [CertificateDer<'static>] {
    static ROOTS: OnceLock<Vec<CertificateDer<'static>>> = OnceLock::new();
    ROOTS.get_or_init(|| {
        let found = rustls_native_certs::load_native_certs();
        // Unreadable files in the store are worth a line, not a refusal:
        // the rest of the store still works.
        for e in &found.errors {
            tracing::warn!(error = %e, "a platform root certificate could not be read");
        }
        let usable = |c: &CertificateDer<'static>| RootCertStore::empty().add(c.clone()).is_ok();
        found.certs.into_iter().filter(usable).collect()
    })
}

fn provider() -> Arc<CryptoProvider> {
    static PROVIDER: OnceLock<Arc<CryptoProvider>> = OnceLock::new();
    PROVIDER
        .get_or_init(|| Arc::new(rustls::crypto::ring::default_provider()))
        .clone()
}

fn build(insecure: bool) -> Result<Arc<ClientConfig>, TlsError> {
    let builder = ClientConfig::builder_with_provider(provider())
        .with_safe_default_protocol_versions()
        .map_err(TlsError::Setup)?;
    let config = if insecure {
        builder
            .dangerous()
            .with_custom_certificate_verifier(Arc::new(AcceptAny(provider())))
            .with_no_client_auth()
    } else {
        let mut roots = RootCertStore::empty();
        roots.add_parsable_certificates(root_certificates().iter().cloned());
        builder.with_root_certificates(roots).with_no_client_auth()
    };
    Ok(Arc::new(config))
}

fn cached(
    cell: &'static OnceLock<Arc<ClientConfig>>,
    insecure: bool,
) -> Result<Arc<ClientConfig>, TlsError> {
    if let Some(c) = cell.get() {
        return Ok(c.clone());
    }
    let made = build(insecure)?;
    Ok(cell.get_or_init(|| made).clone())
}

/// The shared client configuration that verifies servers against the
/// platform's roots.
pub fn client_config() -> Result<Arc<ClientConfig>, TlsError> {
    static VERIFYING: OnceLock<Arc<ClientConfig>> = OnceLock::new();
    cached(&VERIFYING, false)
}

/// The configuration for `insecure_tls = true`: accepts any certificate
/// (self-signed loopback test servers only).
pub fn insecure_client_config() -> Result<Arc<ClientConfig>, TlsError> {
    static ANY: OnceLock<Arc<ClientConfig>> = OnceLock::new();
    cached(&ANY, true)
}

/// Wraps a connected stream in TLS for `host`, verifying its certificate
/// unless `insecure`.
pub async fn connect<S>(
    stream: S,
    host: &str,
    insecure: bool,
) -> Result<tokio_rustls::client::TlsStream<S>, TlsError>
where
    S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin,
{
    let config = if insecure {
        insecure_client_config()?
    } else {
        client_config()?
    };
    let name = ServerName::try_from(host.trim_matches(['[', ']']).to_owned()).map_err(|_| {
        TlsError::ServerName {
            host: host.to_owned(),
        }
    })?;
    tokio_rustls::TlsConnector::from(config)
        .connect(name, stream)
        .await
        .map_err(|source| TlsError::Handshake {
            host: host.to_owned(),
            source,
        })
}

/// Accepts any certificate but still checks the handshake signatures:
/// only for self-signed loopback test servers, and only when the
/// configuration says `insecure_tls = true`.
#[derive(Debug)]
struct AcceptAny(Arc<CryptoProvider>);

impl ServerCertVerifier for AcceptAny {
    fn verify_server_cert(
        &self,
        _: &CertificateDer<'_>,
        _: &[CertificateDer<'_>],
        _: &ServerName<'_>,
        _: &[u8],
        _: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        Ok(ServerCertVerified::assertion())
    }
    fn verify_tls12_signature(
        &self,
        m: &[u8],
        c: &CertificateDer<'_>,
        d: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(m, c, d, &self.0.signature_verification_algorithms)
    }
    fn verify_tls13_signature(
        &self,
        m: &[u8],
        c: &CertificateDer<'_>,
        d: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(m, c, d, &self.0.signature_verification_algorithms)
    }
    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.0.signature_verification_algorithms.supported_schemes()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_configuration_per_process() {
        let a = client_config().unwrap();
        let b = client_config().unwrap();
        assert!(Arc::ptr_eq(&a, &b), "the roots were loaded twice");
        let c = insecure_client_config().unwrap();
        assert!(!Arc::ptr_eq(&a, &c));
        assert!(Arc::ptr_eq(&c, &insecure_client_config().unwrap()));
    }

    #[test]
    fn platform_roots_are_found() {
        // scripts/deps.sh installs ca-certificates; an empty store would
        // make every verified connection fail.
        assert!(!root_certificates().is_empty());
    }
}
