//! The writer thread: sole owner of the read-write connection, committing in groups.
//!
//! SQLite allows one writer at a time, and with `synchronous=FULL` each commit waits for the
//! disk. So callers do not write themselves: they queue a command (a closure over the connection)
//! and await its answer. The thread takes every command already queued, runs them all in one
//! `BEGIN IMMEDIATE` transaction, each inside its own savepoint (one command's failure undoes only
//! that command), commits once, and only then answers each caller. One disk sync thus serves a
//! whole group of produce requests; a failed commit fails every command of the group.
//!
//! `BEGIN IMMEDIATE` takes SQLite's write lock before anything is read, so the watermarks a
//! command reads are the latest committed by any process: several brokers may share one file.

use std::sync::mpsc;
use std::thread::{self, JoinHandle};

use rusqlite::Connection;
use skiff_storage::{Result, StorageError};
use tokio::sync::oneshot;
use tracing::{debug, trace, warn};

use crate::error::writer_closed;
use crate::sql;
use crate::transaction::{execute, in_savepoint};

/// Most commands committed by one transaction; bounds the latency of the first in a long queue.
const MAX_GROUP: usize = 1024;

/// A queued command, type-erased so that one queue carries every kind of write.
trait Job: Send {
    /// Runs the command inside the open transaction, keeping its outcome for `finish`.
    fn run(&mut self, conn: &Connection);
    /// Answers the caller once the transaction's fate (`committed`) is known.
    fn finish(self: Box<Self>, committed: &Result<()>);
}

struct Pending<T, F> {
    work: Option<F>,
    outcome: Option<Result<T>>,
    reply: oneshot::Sender<Result<T>>,
}

impl<T, F> Job for Pending<T, F>
where
    T: Send,
    F: FnOnce(&Connection) -> Result<T> + Send,
{
    fn run(&mut self, conn: &Connection) {
        if let Some(work) = self.work.take() {
            self.outcome = Some(in_savepoint(conn, work));
        }
    }

    fn finish(self: Box<Self>, committed: &Result<()>) {
        let answer = match (self.outcome, committed) {
            (Some(Err(error)), _) => Err(error),
            (Some(Ok(value)), Ok(())) => Ok(value),
            (_, Err(error)) => Err(error.clone()),
            (None, Ok(())) => Err(StorageError::Unavailable("sqlite write was not run".into())),
        };
        // The caller may have stopped waiting (a cancelled request); the write still stands.
        let _ = self.reply.send(answer);
    }
}

/// Handle to the writer thread. Dropping it lets the thread finish the queue, close the
/// connection and exit, and waits for that.
pub(crate) struct Writer {
    jobs: Option<mpsc::Sender<Box<dyn Job>>>,
    thread: Option<JoinHandle<()>>,
}

impl Writer {
    /// Starts the thread that owns `conn`.
    pub(crate) fn spawn(conn: Connection) -> Result<Self> {
        let (jobs, queue) = mpsc::channel();
        let thread = thread::Builder::new()
            .name("skiff-sqlite-writer".into())
            .spawn(move || run(conn, queue))
            .map_err(|error| {
                StorageError::Unavailable(format!("cannot start sqlite writer thread: {error}"))
            })?;
        Ok(Self { jobs: Some(jobs), thread: Some(thread) })
    }

    /// Runs `work` in the next group transaction and returns its result once committed.
    pub(crate) async fn write<T, F>(&self, work: F) -> Result<T>
    where
        T: Send + 'static,
        F: FnOnce(&Connection) -> Result<T> + Send + 'static,
    {
        let (reply, answer) = oneshot::channel();
        let job: Box<dyn Job> = Box::new(Pending { work: Some(work), outcome: None, reply });
        let jobs = self.jobs.as_ref().ok_or_else(writer_closed)?;
        jobs.send(job).map_err(|_| writer_closed())?;
        answer.await.map_err(|_| writer_closed())?
    }
}

impl Drop for Writer {
    fn drop(&mut self) {
        drop(self.jobs.take());
        let Some(thread) = self.thread.take() else { return };
        if thread.thread().id() == thread::current().id() {
            return;
        }
        if thread.join().is_err() {
            warn!("sqlite writer thread panicked");
        }
    }
}

/// The thread's loop: block for one command, take whatever else is queued, commit them together.
fn run(conn: Connection, queue: mpsc::Receiver<Box<dyn Job>>) {
    let mut group: Vec<Box<dyn Job>> = Vec::new();
    while let Ok(first) = queue.recv() {
        group.push(first);
        while group.len() < MAX_GROUP {
            match queue.try_recv() {
                Ok(job) => group.push(job),
                Err(_) => break,
            }
        }
        let committed = run_group(&conn, &mut group);
        match &committed {
            Ok(()) => trace!(commands = group.len(), "sqlite group committed"),
            Err(error) => warn!(commands = group.len(), %error, "sqlite group transaction failed"),
        }
        for job in group.drain(..) {
            job.finish(&committed);
        }
    }
    debug!("sqlite writer thread stopping");
}

/// Runs every command of `group` in one transaction and commits it.
fn run_group(conn: &Connection, group: &mut [Box<dyn Job>]) -> Result<()> {
    if !conn.is_autocommit() {
        // Defensive: never let a leftover transaction swallow this group.
        execute(conn, sql::ROLLBACK)?;
    }
    execute(conn, sql::BEGIN_IMMEDIATE)?;
    for job in group.iter_mut() {
        job.run(conn);
        if conn.is_autocommit() {
            // SQLite rolled the whole transaction back (disk full, I/O error): stop here, the
            // remaining commands must not run outside a transaction.
            return Err(StorageError::Unavailable(
                "sqlite rolled the group transaction back".into(),
            ));
        }
    }
    if let Err(error) = execute(conn, sql::COMMIT) {
        if !conn.is_autocommit() {
            let _ = execute(conn, sql::ROLLBACK);
        }
        return Err(error);
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;
    use std::time::Duration;

    use rusqlite::params;

    use super::*;
    use crate::error::db_error;

    fn writer(dir: &tempfile::TempDir) -> (Writer, std::path::PathBuf) {
        let path = dir.path().join("writer.db");
        let conn = Connection::open(&path).expect("open");
        conn.execute_batch("CREATE TABLE t (id INTEGER PRIMARY KEY)").expect("schema");
        (Writer::spawn(conn).expect("spawn"), path)
    }

    fn insert(id: i64, fail: bool) -> impl FnOnce(&Connection) -> Result<i64> + Send {
        move |conn| {
            conn.execute("INSERT INTO t (id) VALUES (?1)", params![id]).map_err(db_error)?;
            if fail {
                return Err(StorageError::InvalidArgument(format!("refusing {id}")));
            }
            Ok(id)
        }
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_failed_command_undoes_only_itself() {
        let dir = tempfile::tempdir().expect("tempdir");
        let (writer, path) = writer(&dir);
        let writer = Arc::new(writer);
        // Hold the thread busy so that the next commands queue up and commit as one group.
        let blocker = tokio::spawn({
            let writer = Arc::clone(&writer);
            async move {
                writer
                    .write(|_| {
                        thread::sleep(Duration::from_millis(100));
                        Ok(())
                    })
                    .await
            }
        });
        tokio::time::sleep(Duration::from_millis(20)).await;
        let mut tasks = Vec::new();
        for id in 0..10 {
            let writer = Arc::clone(&writer);
            tasks.push(tokio::spawn(async move { writer.write(insert(id, id % 3 == 0)).await }));
        }
        blocker.await.expect("task").expect("blocker");
        for (id, task) in tasks.into_iter().enumerate() {
            let outcome = task.await.expect("task");
            assert_eq!(outcome.is_ok(), id % 3 != 0, "{id}: {outcome:?}");
        }
        let conn = Connection::open(&path).expect("open");
        let ids: Vec<i64> = conn
            .prepare("SELECT id FROM t ORDER BY id")
            .expect("prepare")
            .query_map([], |row| row.get(0))
            .expect("query")
            .collect::<rusqlite::Result<_>>()
            .expect("rows");
        assert_eq!(ids, [1, 2, 4, 5, 7, 8]);
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_dead_writer_answers_unavailable() {
        let dir = tempfile::tempdir().expect("tempdir");
        let (writer, _path) = writer(&dir);
        let died = writer.write(|_| -> Result<()> { panic!("simulated writer crash") }).await;
        assert!(matches!(died, Err(StorageError::Unavailable(_))), "{died:?}");
        let after = writer.write(insert(1, false)).await;
        assert!(matches!(after, Err(StorageError::Unavailable(_))), "{after:?}");
    }
}
