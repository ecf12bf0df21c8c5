//! Server TLS from PEM files, reloaded when they change.
//!
//! Certificates are renewed while brokers run (ACME, cert-manager, a rotated private CA), so a
//! listener checks its files' modification times at most once a second as connections arrive
//! and builds a new configuration when one changed: new connections get the new certificate,
//! open ones keep theirs. A file that fails to load on reload keeps the previous configuration
//! in service (with a warning); at startup it is an error.

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant, SystemTime};

use rustls::server::WebPkiClientVerifier;
use rustls::{RootCertStore, ServerConfig};
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, PrivateKeyDer};
use tokio_rustls::TlsAcceptor;

/// How often, at most, the files are checked for changes.
const RELOAD_CHECK: Duration = Duration::from_secs(1);

/// Where a TLS listener's certificate, key and (for mutual TLS) client CA come from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TlsFiles {
    /// The certificate chain, leaf first (PEM).
    pub cert: PathBuf,
    /// The private key (PEM: PKCS#8, PKCS#1 or SEC1).
    pub key: PathBuf,
    /// CA certificates that sign client certificates (PEM); when set, clients must present a
    /// certificate it signed (mutual TLS).
    pub client_ca: Option<PathBuf>,
}

/// Why a TLS configuration could not be built.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct TlsError(String);

impl TlsFiles {
    fn paths(&self) -> impl Iterator<Item = &Path> {
        [Some(self.cert.as_path()), Some(self.key.as_path()), self.client_ca.as_deref()]
            .into_iter()
            .flatten()
    }

    fn stamps(&self) -> Vec<Option<SystemTime>> {
        self.paths().map(|path| std::fs::metadata(path).and_then(|m| m.modified()).ok()).collect()
    }

    /// Reads the files and builds the server configuration.
    pub fn load(&self) -> Result<ServerConfig, TlsError> {
        let read = |path: &Path, what: &str, error: &dyn std::fmt::Display| {
            TlsError(format!("{what} {}: {error}", path.display()))
        };
        let certs: Vec<CertificateDer<'static>> = CertificateDer::pem_file_iter(&self.cert)
            .and_then(Iterator::collect)
            .map_err(|e| read(&self.cert, "reading the certificate", &e))?;
        if certs.is_empty() {
            return Err(TlsError(format!("no certificate in {}", self.cert.display())));
        }
        let key = PrivateKeyDer::from_pem_file(&self.key)
            .map_err(|e| read(&self.key, "reading the private key", &e))?;
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let builder = ServerConfig::builder_with_provider(provider.clone())
            .with_safe_default_protocol_versions()
            .map_err(|e| TlsError(e.to_string()))?;
        let builder = match &self.client_ca {
            None => builder.with_no_client_auth(),
            Some(path) => {
                let mut roots = RootCertStore::empty();
                for cert in CertificateDer::pem_file_iter(path)
                    .map_err(|e| read(path, "reading the client CA", &e))?
                {
                    let cert = cert.map_err(|e| read(path, "reading the client CA", &e))?;
                    roots.add(cert).map_err(|e| read(path, "using the client CA", &e))?;
                }
                let verifier =
                    WebPkiClientVerifier::builder_with_provider(Arc::new(roots), provider)
                        .build()
                        .map_err(|e| read(path, "using the client CA", &e))?;
                builder.with_client_cert_verifier(verifier)
            }
        };
        builder
            .with_single_cert(certs, key)
            .map_err(|e| TlsError(format!("the certificate and key do not fit: {e}")))
    }
}

/// A TLS acceptor over [`TlsFiles`], rebuilt when they change.
pub struct ReloadingAcceptor {
    files: TlsFiles,
    current: Mutex<Loaded>,
}

struct Loaded {
    acceptor: TlsAcceptor,
    stamps: Vec<Option<SystemTime>>,
    checked: Instant,
}

impl std::fmt::Debug for ReloadingAcceptor {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ReloadingAcceptor").field("files", &self.files).finish_non_exhaustive()
    }
}

impl ReloadingAcceptor {
    /// Loads the files now: a listener with unusable TLS files does not start.
    pub fn new(files: TlsFiles) -> Result<Self, TlsError> {
        let stamps = files.stamps();
        let acceptor = TlsAcceptor::from(Arc::new(files.load()?));
        Ok(Self {
            files,
            current: Mutex::new(Loaded { acceptor, stamps, checked: Instant::now() }),
        })
    }

    /// The acceptor for a new connection, reloaded first if a file changed.
    pub fn acceptor(&self) -> TlsAcceptor {
        let mut current = self.current.lock().unwrap_or_else(PoisonError::into_inner);
        if current.checked.elapsed() >= RELOAD_CHECK {
            current.checked = Instant::now();
            let stamps = self.files.stamps();
            if stamps != current.stamps {
                current.stamps = stamps;
                match self.files.load() {
                    Ok(config) => {
                        tracing::info!(cert = %self.files.cert.display(), "TLS files changed: reloaded");
                        current.acceptor = TlsAcceptor::from(Arc::new(config));
                    }
                    Err(error) => {
                        tracing::warn!(%error, "TLS files changed but do not load: keeping the previous ones");
                    }
                }
            }
        }
        current.acceptor.clone()
    }
}
