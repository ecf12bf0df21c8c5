//! TLS to Postgres with rustls, following libpq's `sslmode` semantics.
//!
//! - `disable`: plain TCP.
//! - `prefer` (the default, as in libpq): TLS when the server offers it, plain otherwise. Like
//!   libpq, the certificate is not verified: `prefer` protects against passive eavesdropping only.
//!   Debian's Postgres has TLS on with a self-signed certificate, and this must just work.
//! - `require`: TLS or nothing, certificate not verified (unless `sslrootcert` is given, which
//!   makes it `verify-ca`, as libpq does).
//! - `verify-ca`: the certificate must chain to `sslrootcert`; the host name is not checked.
//! - `verify-full`: chain and host name are checked.
//!
//! `sslrootcert` defaults to `~/.postgresql/root.crt`, as in libpq. A client certificate is sent
//! when `sslcert` and `sslkey` name PEM files.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::client::WebPkiServerVerifier;
use rustls::crypto::{ring, verify_tls12_signature, verify_tls13_signature, CryptoProvider};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName, UnixTime};
use rustls::{CertificateError, ClientConfig, DigitallySignedStruct, RootCertStore};
use skiff_storage::{Result, StorageError};

/// libpq's `sslmode` values.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum SslMode {
    Disable,
    Prefer,
    Require,
    VerifyCa,
    VerifyFull,
}

impl SslMode {
    pub(crate) fn parse(value: &str) -> Result<Self> {
        match value {
            "disable" => Ok(Self::Disable),
            // libpq's `allow` tries plain first; TLS when offered is at least as safe.
            "allow" | "prefer" => Ok(Self::Prefer),
            "require" => Ok(Self::Require),
            "verify-ca" => Ok(Self::VerifyCa),
            "verify-full" => Ok(Self::VerifyFull),
            other => Err(StorageError::InvalidArgument(format!(
                "sslmode {other:?} is not one of disable, allow, prefer, require, verify-ca, \
                 verify-full"
            ))),
        }
    }
}

impl From<SslMode> for tokio_postgres::config::SslMode {
    /// What tokio-postgres is told: it knows only whether TLS is skipped, tried or required;
    /// certificate checks are rustls' (see `client_config`).
    fn from(mode: SslMode) -> Self {
        match mode {
            SslMode::Disable => Self::Disable,
            SslMode::Prefer => Self::Prefer,
            SslMode::Require | SslMode::VerifyCa | SslMode::VerifyFull => Self::Require,
        }
    }
}

/// The TLS settings of a storage URL.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct TlsOptions {
    pub(crate) mode: SslMode,
    pub(crate) root_cert: Option<PathBuf>,
    pub(crate) client_cert: Option<PathBuf>,
    pub(crate) client_key: Option<PathBuf>,
}

impl Default for TlsOptions {
    fn default() -> Self {
        Self { mode: SslMode::Prefer, root_cert: None, client_cert: None, client_key: None }
    }
}

fn tls_error(what: impl std::fmt::Display) -> StorageError {
    StorageError::InvalidArgument(format!("postgres tls: {what}"))
}

/// The rustls configuration for `options` (also built for `disable`, where it is never used).
pub(crate) fn client_config(options: &TlsOptions) -> Result<ClientConfig> {
    let provider = Arc::new(ring::default_provider());
    let builder = ClientConfig::builder_with_provider(provider.clone())
        .with_safe_default_protocol_versions()
        .map_err(tls_error)?;
    let mode = match (options.mode, &options.root_cert) {
        (SslMode::Require, Some(_)) => SslMode::VerifyCa,
        (mode, _) => mode,
    };
    let verifier: Arc<dyn ServerCertVerifier> = match mode {
        SslMode::Disable | SslMode::Prefer | SslMode::Require => {
            Arc::new(AnyCertificate { provider })
        }
        SslMode::VerifyCa | SslMode::VerifyFull => {
            let roots = Arc::new(root_store(options.root_cert.as_deref())?);
            let webpki = WebPkiServerVerifier::builder_with_provider(roots, provider)
                .build()
                .map_err(tls_error)?;
            if mode == SslMode::VerifyCa {
                Arc::new(ChainOnly { inner: webpki })
            } else {
                webpki
            }
        }
    };
    let builder = builder.dangerous().with_custom_certificate_verifier(verifier);
    match (&options.client_cert, &options.client_key) {
        (Some(cert), Some(key)) => {
            let chain = certificates(cert)?;
            let key = PrivateKeyDer::from_pem_file(key)
                .map_err(|error| tls_error(format!("sslkey {}: {error}", key.display())))?;
            builder.with_client_auth_cert(chain, key).map_err(tls_error)
        }
        (None, None) => Ok(builder.with_no_client_auth()),
        _ => Err(tls_error("sslcert and sslkey must be given together")),
    }
}

fn certificates(path: &Path) -> Result<Vec<CertificateDer<'static>>> {
    let read = |error: rustls::pki_types::pem::Error| {
        tls_error(format!("certificates in {}: {error}", path.display()))
    };
    CertificateDer::pem_file_iter(path).map_err(read)?.map(|cert| cert.map_err(read)).collect()
}

fn root_store(path: Option<&Path>) -> Result<RootCertStore> {
    let default;
    let path = match path {
        Some(path) => path,
        None => {
            let home = std::env::var_os("HOME").ok_or_else(|| {
                tls_error("verify-ca and verify-full need sslrootcert (HOME is not set)")
            })?;
            default = PathBuf::from(home).join(".postgresql/root.crt");
            &default
        }
    };
    let mut store = RootCertStore::empty();
    for cert in certificates(path)? {
        store.add(cert).map_err(tls_error)?;
    }
    Ok(store)
}

/// `prefer` and `require`: encryption without authentication of the server, as in libpq.
/// Signatures are still checked, so the handshake itself is sound.
#[derive(Debug)]
struct AnyCertificate {
    provider: Arc<CryptoProvider>,
}

impl ServerCertVerifier for AnyCertificate {
    fn verify_server_cert(
        &self,
        _end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp_response: &[u8],
        _now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        Ok(ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        let algorithms = &self.provider.signature_verification_algorithms;
        verify_tls12_signature(message, cert, dss, algorithms)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        let algorithms = &self.provider.signature_verification_algorithms;
        verify_tls13_signature(message, cert, dss, algorithms)
    }

    fn supported_verify_schemes(&self) -> Vec<rustls::SignatureScheme> {
        self.provider.signature_verification_algorithms.supported_schemes()
    }
}

/// `verify-ca`: the chain must lead to a trusted root; any host name is accepted.
#[derive(Debug)]
struct ChainOnly {
    inner: Arc<WebPkiServerVerifier>,
}

impl ServerCertVerifier for ChainOnly {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        server_name: &ServerName<'_>,
        ocsp_response: &[u8],
        now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        let verified = self.inner.verify_server_cert(
            end_entity,
            intermediates,
            server_name,
            ocsp_response,
            now,
        );
        match verified {
            Err(rustls::Error::InvalidCertificate(
                CertificateError::NotValidForName | CertificateError::NotValidForNameContext { .. },
            )) => Ok(ServerCertVerified::assertion()),
            other => other,
        }
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.inner.verify_tls12_signature(message, cert, dss)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.inner.verify_tls13_signature(message, cert, dss)
    }

    fn supported_verify_schemes(&self) -> Vec<rustls::SignatureScheme> {
        self.inner.supported_verify_schemes()
    }
}
