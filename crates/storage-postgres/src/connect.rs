//! Making one connection, as libpq's `sslmode=prefer` does.
//!
//! tokio-postgres' `prefer` uses TLS when the server offers it but fails outright when that TLS
//! handshake then fails; libpq then connects again without TLS. So does this: a server with TLS
//! switched on in a way rustls cannot speak (old protocol versions, say) still gets a broker.
//!
//! Host names: tokio-postgres resolves them with `getaddrinfo`, which the static build cannot use
//! (see `skiff-resolve`). There each named host is resolved here on every connection (so a
//! moved database is followed) and given to tokio-postgres as its `hostaddr`; the name still
//! serves TLS verification.

use deadpool_postgres::Connect;
use futures::future::BoxFuture;
use skiff_resolve::BuiltinResolver;
use tokio::task::JoinHandle;
use tokio_postgres::config::{Host, SslMode};
use tokio_postgres::{Client, Config, Error};
use tokio_postgres_rustls::MakeRustlsConnect;
use tracing::{debug, warn};

use crate::options::Options;
use crate::tls;

/// How the pool connects: with `tls`, and plain again after a failed handshake when
/// `plain_after_tls_failure` (the `prefer` mode).
pub(crate) struct PreferConnect {
    pub(crate) tls: MakeRustlsConnect,
    pub(crate) plain_after_tls_failure: bool,
}

impl PreferConnect {
    /// How connections to the database `options` name are made.
    pub(crate) fn new(options: &Options) -> skiff_storage::Result<PreferConnect> {
        Ok(PreferConnect {
            tls: MakeRustlsConnect::new(tls::client_config(&options.tls)?),
            plain_after_tls_failure: options.tls.mode == tls::SslMode::Prefer,
        })
    }
}

/// Single connections to a storage URL's database, made exactly as the engine's pool makes
/// them: TLS by `sslmode` (with `sslrootcert`, `sslcert`, `sslkey`), `prefer`'s plain retry,
/// host names resolved in the static build. For parts of Skiff that keep their own tables in
/// the same database, such as the Iceberg catalog, so that a URL that works for the storage
/// works for them too.
pub struct Connector {
    config: Config,
    connect: PreferConnect,
}

impl Connector {
    /// Connections to the database `url` names (a storage URL; `pool_size` is ignored), with
    /// this `application_name` unless the URL sets one.
    pub fn new(url: &str, application_name: &str) -> skiff_storage::Result<Connector> {
        let options = Options::parse_as(url, application_name)?;
        Ok(Connector { connect: PreferConnect::new(&options)?, config: options.postgres })
    }

    /// A new connection; its driver task runs until the client is dropped or the server goes.
    pub async fn connect(&self) -> Result<Client, Error> {
        let (client, _driver) = Connect::connect(&self.connect, &self.config).await?;
        Ok(client)
    }
}

impl std::fmt::Debug for Connector {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Connector").field("config", &self.config).finish_non_exhaustive()
    }
}

/// tokio-postgres does not expose its error kinds; this is the text of its TLS kind.
fn is_tls_failure(error: &Error) -> bool {
    error.to_string().starts_with("error performing TLS handshake")
}

/// `config` with an address for each named host (the first `resolver` finds), or `None` when
/// tokio-postgres needs no help: the hosts are IP literals, one is a Unix socket (which a
/// `hostaddr` would turn into TCP), `hostaddr` is given already, or a name does not resolve
/// (tokio-postgres then reports the failure itself, after this logs why).
async fn with_host_addresses(config: &Config, resolver: &BuiltinResolver) -> Option<Config> {
    if !config.get_hostaddrs().is_empty() {
        return None;
    }
    let mut names = Vec::new();
    for host in config.get_hosts() {
        match host {
            Host::Tcp(name) => names.push(name),
            Host::Unix(_) => return None,
        }
    }
    if names.iter().all(|name| skiff_resolve::ip_literal(name).is_some()) {
        return None;
    }
    let mut resolved = config.clone();
    for (index, name) in names.into_iter().enumerate() {
        let port = config.get_ports().get(index).or(config.get_ports().first()).copied();
        match resolver.lookup(name, port.unwrap_or(5432)).await {
            Ok(addresses) => {
                let address = addresses.first()?;
                resolved.hostaddr(address.ip());
            }
            Err(error) => {
                warn!(host = %name, %error, "cannot resolve the postgres host");
                return None;
            }
        }
    }
    Some(resolved)
}

async fn connect_with(
    config: &Config,
    tls: MakeRustlsConnect,
) -> Result<(Client, JoinHandle<()>), Error> {
    let resolved = if skiff_resolve::BUILTIN {
        with_host_addresses(config, BuiltinResolver::shared()).await
    } else {
        None
    };
    let config = resolved.as_ref().unwrap_or(config);
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

    fn config(url: &str) -> Config {
        url.parse().expect("connection string")
    }

    /// What the static build hands tokio-postgres: the named host keeps its name (for TLS) and
    /// its port, and gains the address the resolver found.
    #[tokio::test]
    async fn named_hosts_get_the_resolved_address() {
        let resolver = BuiltinResolver::from_hosts("10.9.8.7 db.skiff.test\n").expect("hosts");
        let named = config("postgres://skiff@db.skiff.test:6543/records");
        let resolved = with_host_addresses(&named, &resolver).await.expect("resolved");
        assert_eq!(resolved.get_hosts(), named.get_hosts());
        assert_eq!(resolved.get_hostaddrs(), ["10.9.8.7".parse::<std::net::IpAddr>().expect("ip")]);
        assert_eq!(resolved.get_ports(), [6543]);
    }

    /// IP literals, Unix sockets, given `hostaddr`s and names that do not resolve are left to
    /// tokio-postgres as they are.
    #[tokio::test]
    async fn configs_that_need_no_help_are_left_alone() {
        let resolver = BuiltinResolver::from_hosts("10.9.8.7 db.skiff.test\n").expect("hosts");
        for url in [
            "postgres://skiff@127.0.0.1:5432/records",
            "postgres://skiff@[::1]:5432/records",
            "host=/var/run/postgresql,db.skiff.test dbname=records",
            "host=db.skiff.test hostaddr=10.0.0.1 dbname=records",
            "postgres://skiff@nothing.invalid/records",
        ] {
            assert!(with_host_addresses(&config(url), &resolver).await.is_none(), "{url}");
        }
    }
}
