//! Transaction helpers shared by the writer thread and the readers.
//!
//! All statements, transaction control included, go through the per-connection statement cache:
//! the hot path runs the same few statements thousands of times a second.

use rusqlite::Connection;
use skiff_storage::Result;

use crate::error::db_error;
use crate::sql;

/// Runs one statement that returns no rows.
pub(crate) fn execute(conn: &Connection, statement: &str) -> Result<()> {
    conn.prepare_cached(statement)
        .and_then(|mut prepared| prepared.execute([]))
        .map_err(db_error)?;
    Ok(())
}

/// Runs `work` inside a savepoint of the open transaction: if it fails, exactly its own changes
/// are undone and the rest of the transaction (other commands of the same group) stays intact.
pub(crate) fn in_savepoint<T>(
    conn: &Connection,
    work: impl FnOnce(&Connection) -> Result<T>,
) -> Result<T> {
    execute(conn, sql::SAVEPOINT)?;
    let outcome = work(conn);
    let closed = match outcome {
        Ok(_) => execute(conn, sql::RELEASE),
        Err(_) => execute(conn, sql::ROLLBACK_TO).and_then(|()| execute(conn, sql::RELEASE)),
    };
    settle(outcome, closed)
}

/// Runs `work` in one read transaction, so that its statements see one snapshot (e.g. the
/// watermarks and the batches of a fetch agree with each other).
pub(crate) fn read_snapshot<T>(
    conn: &Connection,
    work: impl FnOnce(&Connection) -> Result<T>,
) -> Result<T> {
    execute(conn, sql::BEGIN_DEFERRED)?;
    let outcome = work(conn);
    let closed = execute(conn, if outcome.is_ok() { sql::COMMIT } else { sql::ROLLBACK });
    settle(outcome, closed)
}

/// The work's own error wins; otherwise a failure to close the transaction is the result.
fn settle<T>(outcome: Result<T>, closed: Result<()>) -> Result<T> {
    match (outcome, closed) {
        (Ok(value), Ok(())) => Ok(value),
        (Ok(_), Err(error)) | (Err(error), _) => Err(error),
    }
}
