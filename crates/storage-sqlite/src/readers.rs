//! A small pool of read-only connections used from `spawn_blocking`.
//!
//! rusqlite blocks, so reads must not run on the async workers. WAL lets these connections read
//! committed data while the writer thread writes. A semaphore bounds how many reads run at once,
//! which bounds both blocking threads and open connections.

use std::path::PathBuf;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use rusqlite::Connection;
use skiff_storage::{Result, StorageError};
use tokio::sync::Semaphore;

use crate::schema;

/// Reads running at once (and connections kept open) per engine.
fn pool_size() -> usize {
    std::thread::available_parallelism().map_or(4, |cores| (cores.get() * 2).clamp(4, 16))
}

pub(crate) struct Readers {
    path: PathBuf,
    busy_timeout: Duration,
    idle: Mutex<Vec<Connection>>,
    permits: Arc<Semaphore>,
}

impl Readers {
    pub(crate) fn new(path: PathBuf, busy_timeout: Duration) -> Self {
        Self {
            path,
            busy_timeout,
            idle: Mutex::new(Vec::new()),
            permits: Arc::new(Semaphore::new(pool_size())),
        }
    }

    /// Runs `work` on a pooled read-only connection, off the async runtime.
    pub(crate) async fn read<T, F>(self: &Arc<Self>, work: F) -> Result<T>
    where
        T: Send + 'static,
        F: FnOnce(&Connection) -> Result<T> + Send + 'static,
    {
        let permit = Arc::clone(&self.permits)
            .acquire_owned()
            .await
            .map_err(|_| StorageError::Unavailable("sqlite reader pool closed".into()))?;
        let readers = Arc::clone(self);
        tokio::task::spawn_blocking(move || {
            let _permit = permit;
            readers.with_connection(work)
        })
        .await
        .map_err(|error| StorageError::Unavailable(format!("sqlite read task failed: {error}")))?
    }

    fn with_connection<T>(&self, work: impl FnOnce(&Connection) -> Result<T>) -> Result<T> {
        let conn = match self.lock_idle().pop() {
            Some(conn) => conn,
            None => schema::open_reader(&self.path, self.busy_timeout)?,
        };
        let outcome = work(&conn);
        // A connection left inside a transaction (a failed rollback) is not reused.
        if conn.is_autocommit() {
            self.lock_idle().push(conn);
        }
        outcome
    }

    /// The idle list is plain data, consistent at every step, so a poisoned lock means nothing.
    fn lock_idle(&self) -> MutexGuard<'_, Vec<Connection>> {
        self.idle.lock().unwrap_or_else(PoisonError::into_inner)
    }
}
