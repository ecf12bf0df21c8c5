//! Opening connections and bringing the schema up to date.
//!
//! Migrations run inside one `BEGIN IMMEDIATE` transaction that first reads the recorded
//! version: when several brokers open a new file at once, one applies the migrations and the
//! others, waiting on the write lock, then find nothing left to do.

use std::path::Path;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use rusqlite::config::DbConfig;
use rusqlite::{params, Connection, OpenFlags, TransactionBehavior};
use skiff_storage::{Result, StorageError};
use tracing::info;

use crate::error::{db_error, is_busy};
use crate::options::Options;
use crate::sql::{self, MIGRATIONS};

/// Statements kept prepared per connection; more than the engine uses, so none is evicted.
const STATEMENT_CACHE: usize = 64;

/// Pause between attempts to switch a file that another process is opening to WAL.
const WAL_RETRY_PAUSE: Duration = Duration::from_millis(5);

/// The schema version this build writes.
pub(crate) fn latest_version() -> i64 {
    MIGRATIONS.last().map_or(0, |migration| migration.version)
}

/// Opens (creating if needed) the read-write connection, in WAL mode, with the durability the
/// options ask for.
pub(crate) fn open_writer(path: &Path, options: &Options) -> Result<Connection> {
    let flags = OpenFlags::SQLITE_OPEN_READ_WRITE
        | OpenFlags::SQLITE_OPEN_CREATE
        | OpenFlags::SQLITE_OPEN_NO_MUTEX;
    let conn = Connection::open_with_flags(path, flags).map_err(|error| open_error(path, error))?;
    configure(&conn, options.busy_timeout)?;
    enable_wal(&conn, path, options.busy_timeout)?;
    conn.pragma_update(None, "synchronous", options.synchronous.pragma_value())
        .map_err(db_error)?;
    Ok(conn)
}

/// Opens a read-only connection; WAL lets it read while the writer writes.
pub(crate) fn open_reader(path: &Path, busy_timeout: Duration) -> Result<Connection> {
    let flags = OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX;
    let conn = Connection::open_with_flags(path, flags).map_err(|error| open_error(path, error))?;
    configure(&conn, busy_timeout)?;
    Ok(conn)
}

/// Settings every connection gets.
///
/// The query planner stability guarantee (QPSG) matters for speed: without it, SQLite 3.5x
/// re-prepares a cached statement whenever a bound value used in a join or range changes (a
/// different partition, a different fetch offset), which re-parses the hot statements on
/// every call. Plans here never depend on the values.
fn configure(conn: &Connection, busy_timeout: Duration) -> Result<()> {
    conn.busy_timeout(busy_timeout).map_err(db_error)?;
    conn.set_db_config(DbConfig::SQLITE_DBCONFIG_ENABLE_QPSG, true).map_err(db_error)?;
    conn.set_prepared_statement_cache_capacity(STATEMENT_CACHE);
    Ok(())
}

fn open_error(path: &Path, error: rusqlite::Error) -> StorageError {
    StorageError::Unavailable(format!("cannot open sqlite database {}: {error}", path.display()))
}

/// WAL is what lets readers run beside the writer and keeps commits to one sequential write.
///
/// Switching a new file to WAL needs an exclusive lock, and SQLite may refuse it at once (without
/// its busy handler) while another process is opening the same file; so busy answers are retried
/// here until `busy_timeout` has passed.
fn enable_wal(conn: &Connection, path: &Path, busy_timeout: Duration) -> Result<()> {
    let deadline = Instant::now() + busy_timeout;
    let mode: String = loop {
        match conn.pragma_update_and_check(None, "journal_mode", "WAL", |row| row.get(0)) {
            Ok(mode) => break mode,
            Err(error) if is_busy(&error) && Instant::now() < deadline => {
                std::thread::sleep(WAL_RETRY_PAUSE);
            }
            Err(error) => return Err(db_error(error)),
        }
    };
    if !mode.eq_ignore_ascii_case("wal") {
        return Err(StorageError::InvalidArgument(format!(
            "sqlite database {} cannot use WAL mode (journal mode stays {mode})",
            path.display()
        )));
    }
    Ok(())
}

/// Applies the migrations the file lacks, all in one transaction, recording each in
/// `schema_version`. Returns the versions applied (empty when the file was up to date).
pub(crate) fn migrate(conn: &mut Connection) -> Result<Vec<i64>> {
    let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate).map_err(db_error)?;
    tx.execute_batch(sql::SCHEMA_VERSION_TABLE).map_err(db_error)?;
    let current: i64 =
        tx.query_row(sql::SCHEMA_VERSION_CURRENT, [], |row| row.get(0)).map_err(db_error)?;
    if current > latest_version() {
        return Err(StorageError::InvalidArgument(format!(
            "sqlite schema version {current} is newer than this skiff supports ({}); \
             upgrade skiff",
            latest_version()
        )));
    }
    let mut applied = Vec::new();
    for migration in MIGRATIONS.iter().filter(|migration| migration.version > current) {
        tx.execute_batch(migration.sql).map_err(db_error)?;
        tx.execute(
            sql::SCHEMA_VERSION_RECORD,
            params![migration.version, migration.name, now_ms()],
        )
        .map_err(db_error)?;
        info!(version = migration.version, name = migration.name, "applied sqlite migration");
        applied.push(migration.version);
    }
    tx.commit().map_err(db_error)?;
    Ok(applied)
}

fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |elapsed| i64::try_from(elapsed.as_millis()).unwrap_or(i64::MAX))
}
