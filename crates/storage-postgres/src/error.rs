//! Postgres errors in the storage contract's terms.
//!
//! Anything about reaching the server (refused or lost connections, a server shutting down or
//! starting, too many connections, pool timeouts) is `Unavailable`: clients get a retriable error
//! and the pool reconnects by itself once Postgres is back. Serialization failures and deadlocks
//! are `Unavailable` too (a retry succeeds). Unique violations are `Conflict` unless the caller
//! knows better.

use deadpool_postgres::PoolError;
use skiff_storage::StorageError;
use tokio_postgres::error::SqlState;

/// Maps a tokio-postgres error; use as `.map_err(db_error)`.
pub(crate) fn db_error(error: tokio_postgres::Error) -> StorageError {
    let Some(db) = error.as_db_error() else {
        return StorageError::Unavailable(format!("postgres: {}", describe(&error)));
    };
    let code = db.code();
    if *code == SqlState::UNIQUE_VIOLATION {
        return StorageError::Conflict(format!("postgres: {db}"));
    }
    if code.code().starts_with("22") {
        return StorageError::InvalidArgument(format!("postgres: {db}"));
    }
    StorageError::Unavailable(format!("postgres: {db}"))
}

/// The error with its causes (tokio-postgres shows only the outermost, e.g. "error performing TLS
/// handshake" without saying that the certificate was refused).
fn describe(error: &tokio_postgres::Error) -> String {
    let mut text = error.to_string();
    let mut source = std::error::Error::source(error);
    while let Some(cause) = source {
        let cause_text = cause.to_string();
        if !text.contains(&cause_text) {
            text.push_str(": ");
            text.push_str(&cause_text);
        }
        source = cause.source();
    }
    text
}

/// Maps a failure to get a pooled connection.
pub(crate) fn pool_error(error: PoolError) -> StorageError {
    match error {
        PoolError::Backend(error) => db_error(error),
        other => StorageError::Unavailable(format!("postgres connection pool: {other}")),
    }
}
