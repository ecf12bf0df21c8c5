//! Making one connection, as libpq's `sslmode=prefer` does.
//!
//! tokio-postgres' `prefer` uses TLS when the server offers it but fails outright when that TLS
//! handshake then fails; libpq then connects again without TLS. So does this: a server with TLS
//! switched on in a way rustls cannot speak (old protocol versions, say) still gets a broker.

use deadpool_postgres::Connect;
use futures::future::BoxFuture;
use tokio::task::JoinHandle;
use tokio_postgres::config::SslMode;
use tokio_postgres::{Client, Config, Error};
use tokio_postgres_rustls::MakeRustlsConnect;
use tracing::{debug, warn};

/// How the pool connects: with `tls`, and plain again after a failed handshake when
/// `plain_after_tls_failure` (the `prefer` mode).
pub(crate) struct PreferConnect {
    pub(crate) tls: MakeRustlsConnect,
    pub(crate) plain_after_tls_failure: bool,
}

/// tokio-postgres does not expose its error kinds; this is the text of its TLS kind.
fn is_tls_failure(error: &Error) -> bool {
    error.to_string().starts_with("error performing TLS handshake")
}

async fn connect_with(
    config: &Config,
    tls: MakeRustlsConnect,
) -> Result<(Client, JoinHandle<()>), Error> {
    let (client, connection) = config.connect(tls).await?;
    let task = tokio::spawn(async move {
        if let Err(error) = connection.await {
            debug!(%error, "postgres connection ended");
        }
    });
    Ok((client, task))
}

impl Connect for PreferConnect {
    fn connect(&self, config: &Config) -> BoxFuture<'_, Result<(Client, JoinHandle<()>), Error>> {
        let config = config.clone();
        Box::pin(async move {
            match connect_with(&config, self.tls.clone()).await {
                Err(error) if self.plain_after_tls_failure && is_tls_failure(&error) => {
                    warn!(%error, "postgres tls handshake failed; connecting without tls (sslmode=prefer)");
                    let mut plain = config;
                    plain.ssl_mode(SslMode::Disable);
                    connect_with(&plain, self.tls.clone()).await
                }
                other => other,
            }
        })
    }
}

#[cfg(test)]
mod tests {
    use std::path::PathBuf;

    use super::*;
    use crate::options::Options;
    use crate::testdb;
    use crate::tls::{client_config, SslMode, TlsOptions};

    /// A TLS handshake that fails (here: a certificate no root vouches for) is followed by a
    /// plain connection in `prefer` mode, and is an error otherwise.
    #[tokio::test]
    async fn prefer_connects_without_tls_after_a_failed_handshake() {
        let url = testdb::admin_url();
        let admin = testdb::connect(&url).await;
        let server_tls: String = admin.query_one("SHOW ssl", &[]).await.expect("ssl").get(0);
        if server_tls != "on" {
            eprintln!("NOTE: server has ssl=off, the tls fallback is not exercised");
            return;
        }
        let failing = TlsOptions {
            mode: SslMode::VerifyFull,
            root_cert: Some(PathBuf::from(concat!(
                env!("CARGO_MANIFEST_DIR"),
                "/testdata/unrelated_ca.pem"
            ))),
            ..TlsOptions::default()
        };
        let mut config = Options::parse(&url).expect("url").postgres;
        config.ssl_mode(SslMode::Prefer.into());
        let tls = MakeRustlsConnect::new(client_config(&failing).expect("tls config"));
        let strict = PreferConnect { tls: tls.clone(), plain_after_tls_failure: false };
        let refused = strict.connect(&config).await;
        assert!(refused.as_ref().is_err_and(is_tls_failure), "{:?}", refused.err());

        let prefer = PreferConnect { tls, plain_after_tls_failure: true };
        let (client, _task) = prefer.connect(&config).await.expect("plain after tls failure");
        let encrypted: bool = client
            .query_one("SELECT ssl FROM pg_stat_ssl WHERE pid = pg_backend_pid()", &[])
            .await
            .expect("pg_stat_ssl")
            .get(0);
        assert!(!encrypted);
    }
}
