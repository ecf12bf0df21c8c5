//! The storage URL: libpq-style `postgres://user:password@host:port/database?options`.
//!
//! tokio-postgres understands the connection part and `sslmode=disable|prefer|require`; the
//! settings it does not know are taken out here first: the full `sslmode` range with
//! `sslrootcert`, `sslcert` and `sslkey` (see `tls`), `pool_size` (connections per broker,
//! default 16) and `operation_timeout` (seconds one storage call may take, default 20; 0 for
//! none). Sessions run with `jit=off`. Everything else goes to tokio-postgres unchanged (e.g.
//! `connect_timeout`, `application_name`, `keepalives_idle`).
//!
//! # Nothing waits forever
//! A broker must never hold a client's request on a connection that stopped answering (a
//! network that drops packets, a server host that vanished): the client would wait without end
//! (soak bug 6). So, unless the URL says otherwise:
//! - each storage call has a time limit (`operation_timeout`), after which it is `Unavailable`
//!   (Kafka clients retry) and its transaction is rolled back;
//! - TCP keepalives probe an idle connection after 10 s (then every 5 s, 3 times) and
//!   `tcp_user_timeout` drops one whose sent bytes go unacknowledged for 20 s, so a dead
//!   connection is closed and the pool replaces it;
//! - the server side does the same for a broker that vanished mid-transaction: the session's
//!   `tcp_keepalives_*` settings, and `idle_in_transaction_session_timeout` (the operation limit
//!   plus 10 s) so its row locks are released instead of blocking every other broker.

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
/// How long one storage call may take: below Kafka's default `request.timeout.ms` (30 s), so a
/// client gets a retriable error rather than timing out itself.
const DEFAULT_OPERATION_TIMEOUT: Duration = Duration::from_secs(20);
/// TCP keepalive: first probe after this much idle time, then every interval, this many times.
const KEEPALIVE_IDLE: Duration = Duration::from_secs(10);
const KEEPALIVE_INTERVAL: Duration = Duration::from_secs(5);
const KEEPALIVE_RETRIES: u32 = 3;
/// How long sent bytes may go unacknowledged before the kernel drops the connection.
const TCP_USER_TIMEOUT: Duration = Duration::from_secs(20);

/// A parsed storage URL.
#[derive(Debug, Clone)]
pub(crate) struct Options {
    pub(crate) postgres: tokio_postgres::Config,
    pub(crate) tls: TlsOptions,
    pub(crate) pool_size: usize,
    /// The time limit of one storage call; `None` for none.
    pub(crate) operation_timeout: Option<Duration>,
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
        let mut operation_timeout = Some(DEFAULT_OPERATION_TIMEOUT);
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
                "operation_timeout" => {
                    let seconds: u64 = value.parse().map_err(|_| {
                        invalid(format!("operation_timeout {value:?} is not a number of seconds"))
                    })?;
                    operation_timeout = (seconds > 0).then(|| Duration::from_secs(seconds));
                }
                _ => kept.push((key.into_owned(), value.into_owned())),
            }
        }
        let given = |name: &str| kept.iter().any(|(key, _)| key == name);
        let keepalives_given =
            ["keepalives", "keepalives_idle", "keepalives_interval", "keepalives_retries"]
                .into_iter()
                .any(given);
        let user_timeout_given = given("tcp_user_timeout");
        url.set_query(query(&kept).as_deref());
        let mut postgres = tokio_postgres::Config::from_str(url.as_str()).map_err(invalid)?;
        postgres.ssl_mode(tls.mode.into());
        if postgres.get_connect_timeout().is_none() {
            postgres.connect_timeout(DEFAULT_CONNECT_TIMEOUT);
        }
        if !keepalives_given {
            postgres
                .keepalives(true)
                .keepalives_idle(KEEPALIVE_IDLE)
                .keepalives_interval(KEEPALIVE_INTERVAL)
                .keepalives_retries(KEEPALIVE_RETRIES);
        }
        if !user_timeout_given {
            postgres.tcp_user_timeout(TCP_USER_TIMEOUT);
        }
        let session = session_options(postgres.get_options(), operation_timeout);
        postgres.options(session);
        if postgres.get_application_name().is_none() {
            postgres.application_name(application_name);
        }
        Ok(Self { postgres, tls, pool_size, operation_timeout })
    }
}

/// `pairs` as a query string tokio-postgres reads back: it percent-decodes but takes `+`
/// literally, so a space (as in `options=-c x=1 -c y=2`) is written `%20`, not form-style `+`.
fn query(pairs: &[(String, String)]) -> Option<String> {
    let encode = |text: &str| {
        url::form_urlencoded::byte_serialize(text.as_bytes())
            .collect::<String>()
            .replace('+', "%20")
    };
    let joined: Vec<String> =
        pairs.iter().map(|(key, value)| format!("{}={}", encode(key), encode(value))).collect();
    (!joined.is_empty()).then(|| joined.join("&"))
}

/// The server settings of every session, after the URL's own `options`.
fn session_options(given: Option<&str>, operation_timeout: Option<Duration>) -> String {
    // Row estimates of a fetch's join can look large enough to make Postgres JIT-compile it,
    // which costs more than the short queries an engine runs ever take.
    let mut session = vec!["-c jit=off".to_owned()];
    let keepalive = [
        ("tcp_keepalives_idle", KEEPALIVE_IDLE.as_secs()),
        ("tcp_keepalives_interval", KEEPALIVE_INTERVAL.as_secs()),
        ("tcp_keepalives_count", u64::from(KEEPALIVE_RETRIES)),
    ];
    for (name, value) in keepalive {
        session.push(format!("-c {name}={value}"));
    }
    if let Some(limit) = operation_timeout {
        let idle = limit + Duration::from_secs(10);
        session.push(format!("-c idle_in_transaction_session_timeout={}", idle.as_millis()));
    }
    // The URL's settings come last, so they win over these defaults.
    session.extend(given.map(str::to_owned));
    session.join(" ")
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
        assert!(options.postgres.get_options().is_some_and(|o| o.starts_with("-c jit=off")));
    }

    /// Without settings in the URL, nothing waits forever: keepalives on both ends, a TCP user
    /// timeout, a time limit per call and an idle-in-transaction limit on the server; the URL's
    /// own values win.
    #[test]
    fn connections_have_time_limits_unless_the_url_sets_its_own() {
        let options = Options::parse("postgres://u@h/d").expect("parses");
        assert_eq!(options.operation_timeout, Some(DEFAULT_OPERATION_TIMEOUT));
        assert!(options.postgres.get_keepalives());
        assert_eq!(options.postgres.get_keepalives_idle(), KEEPALIVE_IDLE);
        assert_eq!(options.postgres.get_keepalives_retries(), Some(KEEPALIVE_RETRIES));
        assert_eq!(options.postgres.get_tcp_user_timeout(), Some(&TCP_USER_TIMEOUT));
        let session = options.postgres.get_options().expect("session options");
        assert!(session.contains("-c tcp_keepalives_idle=10"), "{session}");
        assert!(session.contains("-c idle_in_transaction_session_timeout=30000"), "{session}");

        let own = Options::parse(
            "postgres://u@h/d?operation_timeout=0&keepalives_idle=60&tcp_user_timeout=1\
             &options=-c%20statement_timeout%3D5s",
        )
        .expect("parses");
        assert_eq!(own.operation_timeout, None);
        assert_eq!(own.postgres.get_keepalives_idle(), Duration::from_secs(60));
        assert_eq!(own.postgres.get_tcp_user_timeout(), Some(&Duration::from_secs(1)));
        let session = own.postgres.get_options().expect("session options");
        assert!(!session.contains("idle_in_transaction"), "{session}");
        assert!(session.ends_with("-c statement_timeout=5s"), "{session}");
        let bad = Options::parse("postgres://h/d?operation_timeout=soon");
        assert!(matches!(bad, Err(StorageError::InvalidArgument(_))), "{bad:?}");
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
