//! SQLite errors in the storage contract's terms.
//!
//! Busy and locked databases, I/O failures and full disks are `Unavailable`: the caller may retry
//! (another broker may hold the write lock, an operator may free space). Stored values that do not
//! convert back are `Corrupt`. Constraint violations are `Conflict` unless the caller knows better
//! (a duplicate topic name is `AlreadyExists`, decided where the insert happens).

use rusqlite::ErrorCode;
use skiff_storage::StorageError;

/// Maps a rusqlite error; use as `.map_err(db_error)`.
pub(crate) fn db_error(error: rusqlite::Error) -> StorageError {
    match &error {
        rusqlite::Error::SqliteFailure(failure, _) => match failure.code {
            ErrorCode::ConstraintViolation => StorageError::Conflict(error.to_string()),
            ErrorCode::DatabaseCorrupt | ErrorCode::NotADatabase => {
                StorageError::Corrupt(format!("sqlite: {error}"))
            }
            ErrorCode::DatabaseBusy | ErrorCode::DatabaseLocked => {
                StorageError::Unavailable(format!("sqlite database busy: {error}"))
            }
            _ => StorageError::Unavailable(format!("sqlite: {error}")),
        },
        rusqlite::Error::FromSqlConversionFailure(..)
        | rusqlite::Error::IntegralValueOutOfRange(..)
        | rusqlite::Error::InvalidColumnType(..) => {
            StorageError::Corrupt(format!("stored value does not convert: {error}"))
        }
        _ => StorageError::Unavailable(format!("sqlite: {error}")),
    }
}

/// True when another connection holds a lock `error`'s statement needed.
pub(crate) fn is_busy(error: &rusqlite::Error) -> bool {
    matches!(error.sqlite_error_code(), Some(ErrorCode::DatabaseBusy | ErrorCode::DatabaseLocked))
}

/// True when `error` is a violated UNIQUE/PRIMARY KEY constraint.
pub(crate) fn is_unique_violation(error: &rusqlite::Error) -> bool {
    matches!(
        error,
        rusqlite::Error::SqliteFailure(failure, _)
            if failure.extended_code == rusqlite::ffi::SQLITE_CONSTRAINT_UNIQUE
                || failure.extended_code == rusqlite::ffi::SQLITE_CONSTRAINT_PRIMARYKEY
    )
}

/// The error every caller sees once the writer thread has stopped.
pub(crate) fn writer_closed() -> StorageError {
    StorageError::Unavailable("sqlite writer thread has stopped".into())
}

#[cfg(test)]
mod tests {
    use super::*;
    use rusqlite::ffi;

    fn failure(code: i32) -> rusqlite::Error {
        rusqlite::Error::SqliteFailure(ffi::Error::new(code), None)
    }

    #[test]
    fn busy_locked_and_io_are_unavailable() {
        for code in [ffi::SQLITE_BUSY, ffi::SQLITE_LOCKED, ffi::SQLITE_IOERR, ffi::SQLITE_FULL] {
            assert!(matches!(db_error(failure(code)), StorageError::Unavailable(_)), "{code}");
        }
    }

    #[test]
    fn constraints_conflict_and_corruption_is_corrupt() {
        let unique = failure(ffi::SQLITE_CONSTRAINT_UNIQUE);
        assert!(is_unique_violation(&unique));
        assert!(matches!(db_error(unique), StorageError::Conflict(_)));
        assert!(matches!(db_error(failure(ffi::SQLITE_CORRUPT)), StorageError::Corrupt(_)));
        let conversion = rusqlite::Error::IntegralValueOutOfRange(0, -1);
        assert!(matches!(db_error(conversion), StorageError::Corrupt(_)));
    }
}
