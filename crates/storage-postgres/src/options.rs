//! The storage URL: libpq-style `postgres://user:password@host:port/database?options`.
//!
//! tokio-postgres understands the connection part and `sslmode=disable|prefer|require`; the
//! settings it does not know are taken out here first: the full `sslmode` range with
//! `sslrootcert`, `sslcert` and `sslkey` (see `tls`), and `pool_size` (connections per broker,
//! default 16). Sessions run with `jit=off`. Everything else goes to tokio-postgres unchanged
//! (e.g. `connect_timeout`, `application_name`).

use std::path::PathBuf;
use std::str::FromStr;
use std::time::Duration;

use skiff_storage::{Result, StorageError};
use url::Url;

use crate::tls::{SslMode, TlsOptions};

/// Connections a broker keeps to Postgres unless the URL says otherwise.
const DEFAULT_POOL_SIZE: usize = 16;
/// How long a connection attempt may take: an unreachable server answers `Unavailable` soon.
const DEFAULT_CONNECT_TIMEOUT: Duration = Duration::from_secs(5);

/// A parsed storage URL.
#[derive(Debug, Clone)]
pub(crate) struct Options {
    pub(crate) postgres: tokio_postgres::Config,
    pub(crate) tls: TlsOptions,
    pub(crate) pool_size: usize,
}

fn invalid(what: impl std::fmt::Display) -> StorageError {
    StorageError::InvalidArgument(format!("postgres storage url: {what}"))
}

impl Options {
    /// The storage engine's options for `storage_url`.
    pub(crate) fn parse(storage_url: &str) -> Result<Self> {
        Self::parse_as(storage_url, "skiff")
    }

    /// The options, with `application_name` as the sessions' name unless the URL sets one.
    pub(crate) fn parse_as(storage_url: &str, application_name: &str) -> Result<Self> {
        let mut url = Url::parse(storage_url).map_err(invalid)?;
        let mut tls = TlsOptions::default();
        let mut pool_size = DEFAULT_POOL_SIZE;
        let mut kept = Vec::new();
        for (key, value) in url.query_pairs() {
            match key.as_ref() {
                "sslmode" => tls.mode = SslMode::parse(&value)?,
                "sslrootcert" => tls.root_cert = Some(PathBuf::from(value.as_ref())),
                "sslcert" => tls.client_cert = Some(PathBuf::from(value.as_ref())),
                "sslkey" => tls.client_key = Some(PathBuf::from(value.as_ref())),
                "pool_size" => {
                    pool_size = value.parse().ok().filter(|size| *size > 0).ok_or_else(|| {
                        invalid(format!("pool_size {value:?} is not a positive number"))
                    })?;
                }
                _ => kept.push((key.into_owned(), value.into_owned())),
            }
        }
        if kept.is_empty() {
            url.set_query(None);
        } else {
            url.query_pairs_mut().clear().extend_pairs(kept);
        }
        let mut postgres = tokio_postgres::Config::from_str(url.as_str()).map_err(invalid)?;
        postgres.ssl_mode(tls.mode.into());
        if postgres.get_connect_timeout().is_none() {
            postgres.connect_timeout(DEFAULT_CONNECT_TIMEOUT);
        }
        // Row estimates of a fetch's join can look large enough to make Postgres JIT-compile it,
        // which costs more than the short queries an engine runs ever take.
        let session = match postgres.get_options() {
            Some(options) => format!("{options} -c jit=off"),
            None => "-c jit=off".to_owned(),
        };
        postgres.options(session);
        if postgres.get_application_name().is_none() {
            postgres.application_name(application_name);
        }
        Ok(Self { postgres, tls, pool_size })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ssl_settings_are_taken_out_and_the_rest_kept() {
        let options = Options::parse(
            "postgres://u:p@db.example:6543/skiff?sslmode=verify-full&sslrootcert=/ca.pem\
             &connect_timeout=3&pool_size=4",
        )
        .expect("parses");
        assert_eq!(options.tls.mode, SslMode::VerifyFull);
        assert_eq!(options.tls.root_cert, Some(PathBuf::from("/ca.pem")));
        assert_eq!(options.pool_size, 4);
        assert_eq!(options.postgres.get_dbname(), Some("skiff"));
        assert_eq!(options.postgres.get_ports(), [6543]);
        assert_eq!(options.postgres.get_connect_timeout(), Some(&Duration::from_secs(3)));
        assert_eq!(options.postgres.get_ssl_mode(), tokio_postgres::config::SslMode::Require);
        assert_eq!(options.postgres.get_options(), Some("-c jit=off"));
    }

    #[test]
    fn prefer_is_the_default_and_nonsense_is_refused() {
        let options = Options::parse("postgresql://postgres@localhost/test").expect("parses");
        assert_eq!(options.tls.mode, SslMode::Prefer);
        assert_eq!(options.postgres.get_ssl_mode(), tokio_postgres::config::SslMode::Prefer);
        for bad in ["postgres://h/d?sslmode=sometimes", "postgres://h/d?pool_size=0"] {
            assert!(matches!(Options::parse(bad), Err(StorageError::InvalidArgument(_))), "{bad}");
        }
    }
}
