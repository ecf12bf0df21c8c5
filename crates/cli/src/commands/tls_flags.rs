//! The TLS flags `skiff broker` and `skiff proxy` share.

use std::path::PathBuf;

use clap::Args;
use skiff_net::TlsFiles;

#[derive(Args)]
pub(crate) struct TlsFlags {
    /// The certificate chain (PEM) served to clients on TLS ports (the broker's SSL and
    /// SASL_SSL listeners; every port of the proxy); reloaded when the file changes.
    #[arg(long, env = "SKIFF_TLS_CERT", requires = "tls_key")]
    tls_cert: Option<PathBuf>,
    /// The private key (PEM) of --tls-cert; reloaded when the file changes.
    #[arg(long, env = "SKIFF_TLS_KEY", requires = "tls_cert")]
    tls_key: Option<PathBuf>,
    /// CA certificates (PEM) that sign client certificates: TLS ports then require one
    /// (mutual TLS).
    #[arg(long, env = "SKIFF_TLS_CLIENT_CA", requires = "tls_cert")]
    tls_client_ca: Option<PathBuf>,
}

impl TlsFlags {
    /// The files, when a certificate and key are given.
    pub(crate) fn files(&self) -> Option<TlsFiles> {
        match (&self.tls_cert, &self.tls_key) {
            (Some(cert), Some(key)) => Some(TlsFiles {
                cert: cert.clone(),
                key: key.clone(),
                client_ca: self.tls_client_ca.clone(),
            }),
            _ => None,
        }
    }
}
