//! `sqlite://PATH`: the whole cluster state in one embedded SQLite file (WAL mode); the default
//! engine of `skiff broker`.
//!
//! Brokers hold no state, so several brokers (processes) may open the same file: every write
//! takes SQLite's write lock (`BEGIN IMMEDIATE`) and reads what it depends on (a partition's
//! high watermark, a state version) from the database inside that transaction, never from memory.
//!
//! # Options
//!
//! The URL's query string may set:
//!
//! - `synchronous=full` (default): a write is acknowledged only once the WAL is synced to disk, so
//!   acknowledged records survive a power loss. `synchronous=normal` skips that sync (records
//!   survive a broker crash but the last ones may be lost on power loss); much faster on slow
//!   disks. `synchronous=extra` also syncs the directory.
//! - `busy_timeout_ms=N` (default 5000): how long to wait for another process's write lock before
//!   answering `Unavailable`.
//!
//! Any other key is refused with `InvalidArgument`, e.g. `sqlite://skiff.db?synchronous=normal`.
//!
//! # Layout
//!
//! - `writer`: the writer thread. It owns the only read-write connection, takes every queued
//!   write command, runs them in one transaction (a savepoint each, so one command's failure does
//!   not fail the others), commits once and answers each caller: group commit, one disk sync for
//!   many produce requests.
//! - `readers`: a small pool of read-only connections, used from `spawn_blocking` (rusqlite
//!   blocks; WAL lets them read while the writer writes).
//! - `log`, `meta`, `state`: the three storage traits, as functions over a `Connection` plus thin
//!   async methods that send them to the writer or the readers.
//! - `schema`: opening connections and versioned migrations (`schema_version` table).
//! - `sql`: every statement, loaded from `sql/**/*.sql`. `sql/migrations/0001_initial.sql` is the
//!   schema: `topics` (name, UUID id, partition count), `topic_configs`, `partitions` (the
//!   watermarks), `batches` (one row per record batch: base and last offset, max timestamp and
//!   the bytes as a BLOB, never decoded on produce or fetch), `state` (key, value, version) and
//!   `sequences` (the state version counter).
//! - `error`: SQLite errors in `StorageError` terms (busy, locked and I/O are `Unavailable`).
//! - `examples/append_throughput.rs`: appends per second through the engine, for tuning.

mod error;
mod log;
mod meta;
mod offsets;
mod options;
mod readers;
mod schema;
mod sql;
mod state;
mod transaction;
mod writer;

#[cfg(test)]
mod tests;

use std::path::Path;
use std::sync::Arc;

use skiff_storage::{Result, Storage};

use crate::options::Options;
use crate::readers::Readers;
use crate::writer::Writer;

/// Opens (creating and migrating if needed) the SQLite database at `path`. `query` is the storage
/// URL's query string (see the crate docs for the options), possibly empty.
pub fn open(path: &Path, query: &str) -> Result<Storage> {
    SqliteEngine::open(path, query).map(Storage::from_engine)
}

/// One open database: the writer thread and the reader pool.
struct SqliteEngine {
    writer: Writer,
    readers: Arc<Readers>,
    /// Tests keep their temporary directory alive exactly as long as the engine (dropped last).
    #[cfg(test)]
    temp_dir: Option<tempfile::TempDir>,
}

impl SqliteEngine {
    fn open(path: &Path, query: &str) -> Result<Self> {
        let options = Options::parse(query)?;
        let mut conn = schema::open_writer(path, &options)?;
        schema::migrate(&mut conn)?;
        let readers = Arc::new(Readers::new(path.to_path_buf(), options.busy_timeout));
        Ok(Self {
            writer: Writer::spawn(conn)?,
            readers,
            #[cfg(test)]
            temp_dir: None,
        })
    }
}

#[cfg(test)]
mod conformance {
    skiff_storage::conformance_tests!(async { crate::tests::fresh_storage() });
}
