//! The produce path: concurrent appends (any partitions, any connections) are coalesced into
//! one data object per flush, so a busy broker pays one PUT for many record batches.
//!
//! A flush (1) writes every pending batch, as produced, into one new object `data/<unique>`
//! with `If-None-Match: *`, then (2) for each partition, compare-and-sets its head to assign
//! offsets (planned by [`plan_append`] against the head just read) and to index the batches'
//! byte ranges in that object. A caller is answered only after step 2 stored its partition's
//! head: an acknowledged batch is always both durable and reachable. A crash between the two
//! steps leaves an unreferenced data object and acknowledges nothing.
//!
//! Flushes run one at a time, so one producer's requests reach the heads in the order they
//! arrived; the requests that queue up while a flush runs form the next one.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use bytes::{Bytes, BytesMut};
use futures::future::join_all;
use object_store::path::Path;
use skiff_storage::producers::plan_append;
use skiff_storage::{AppendResult, Batch, QueuedAppend, Result, StorageError};
use tokio::sync::{mpsc, oneshot};
use tokio::time::Instant;
use tracing::{debug, error, trace, warn};

use crate::heads::{Change, Heads};
use crate::recent::RecentObjects;
use crate::store::{Store, WriteError};

/// One `LogStore::append` call waiting for a flush.
pub(crate) struct Pending {
    /// The partition's directory (`log/<topic id>/<partition>`).
    pub(crate) dir: Path,
    pub(crate) batches: Vec<Batch>,
    pub(crate) reply: oneshot::Sender<Result<AppendResult>>,
    pub(crate) queued_at: Instant,
}

impl Pending {
    fn bytes(&self) -> usize {
        self.batches.iter().map(|batch| batch.bytes.len()).sum()
    }
}

/// Handle to the flush task; dropping it lets the task finish its queue and stop.
pub(crate) struct Flusher {
    queue: mpsc::UnboundedSender<Pending>,
}

impl Flusher {
    pub(crate) fn spawn(
        store: Store,
        heads: Arc<Heads>,
        recent: Arc<RecentObjects>,
        delay: Duration,
        max_bytes: usize,
    ) -> Result<Self> {
        let runtime = tokio::runtime::Handle::try_current().map_err(|error| {
            StorageError::Unavailable(format!("the s3 engine needs a tokio runtime: {error}"))
        })?;
        let (queue, receiver) = mpsc::unbounded_channel();
        runtime.spawn(run(store, heads, recent, receiver, delay, max_bytes));
        Ok(Self { queue })
    }

    /// Queues an append at once (appends queued later go to the same or a later flush, and
    /// after it in that flush) and returns the wait for the flush that stores it.
    pub(crate) fn queue(&self, dir: Path, batches: Vec<Batch>) -> QueuedAppend {
        let (reply, answer) = oneshot::channel();
        let pending = Pending { dir, batches, reply, queued_at: Instant::now() };
        let queued = self.queue.send(pending);
        Box::pin(async move {
            queued.map_err(|_| StorageError::Unavailable("s3 flush task has stopped".into()))?;
            answer
                .await
                .map_err(|_| StorageError::Unavailable("s3 flush task dropped an append".into()))?
        })
    }
}

async fn run(
    store: Store,
    heads: Arc<Heads>,
    recent: Arc<RecentObjects>,
    mut receiver: mpsc::UnboundedReceiver<Pending>,
    delay: Duration,
    max_bytes: usize,
) {
    let mut crash = CrashPoint::from_env();
    while let Some(first) = receiver.recv().await {
        // The first request waits at most `delay` from when it was queued (not from now: one
        // that queued behind a running flush has waited already).
        let deadline = first.queued_at + delay;
        let mut bytes = first.bytes();
        let mut group = vec![first];
        while bytes < max_bytes {
            let next = match receiver.try_recv() {
                Ok(next) => Some(next),
                Err(_) => tokio::time::timeout_at(deadline, receiver.recv()).await.ok().flatten(),
            };
            let Some(next) = next else { break };
            bytes += next.bytes();
            group.push(next);
        }
        flush(&store, &heads, &recent, group, bytes, &mut crash).await;
    }
    debug!("s3 flush task stopping");
}

/// Crash testing: with `SKIFF_S3_CRASH_AFTER_DATA_OBJECTS=N` in its environment, the process
/// aborts right after writing its N-th data object and before any head references it: the
/// worst moment for a broker to die in a flush, made reproducible for the end-to-end tests.
struct CrashPoint {
    remaining: Option<u64>,
}

impl CrashPoint {
    fn from_env() -> Self {
        let remaining = std::env::var("SKIFF_S3_CRASH_AFTER_DATA_OBJECTS")
            .ok()
            .and_then(|value| value.parse::<u64>().ok());
        Self { remaining }
    }

    fn after_data_object(&mut self, path: &Path) {
        let Some(remaining) = self.remaining.as_mut() else { return };
        *remaining = remaining.saturating_sub(1);
        if *remaining == 0 {
            error!(%path, "SKIFF_S3_CRASH_AFTER_DATA_OBJECTS: aborting before any head is written");
            std::process::abort();
        }
    }
}

/// A new data object's name: its creation time (hex milliseconds, so names sort by age and a
/// collector can tell old garbage from a flush in progress) and a random part.
pub(crate) fn object_name() -> String {
    let millis = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|since| since.as_millis() as u64)
        .unwrap_or_default();
    format!("{millis:016x}-{}", uuid::Uuid::new_v4().simple())
}

/// Writes one group: its data object, then every partition's head.
async fn flush(
    store: &Store,
    heads: &Heads,
    recent: &RecentObjects,
    group: Vec<Pending>,
    bytes: usize,
    crash: &mut CrashPoint,
) {
    let name = object_name();
    let mut object = BytesMut::with_capacity(bytes);
    for pending in &group {
        for batch in &pending.batches {
            object.extend_from_slice(&batch.bytes);
        }
    }
    let object = object.freeze();
    let path = store.path(&["data", &name]);
    match store.create(&path, object.clone()).await {
        // A unique name that "already exists" can only be our own retried write.
        Ok(_) | Err(WriteError::Conflict) => {}
        Err(WriteError::Failed(error)) => {
            warn!(%path, %error, appends = group.len(), "data object not written");
            for pending in group {
                let _ = pending.reply.send(Err(error.clone()));
            }
            return;
        }
    }
    trace!(%path, bytes, appends = group.len(), "data object written");
    crash.after_data_object(&path);
    recent.insert(&name, object.clone());

    // Re-point every batch at its bytes inside the object, remembering where it lies.
    let mut by_partition: HashMap<Path, Vec<Placed>> = HashMap::new();
    let mut order: Vec<Path> = Vec::new();
    let mut at = 0usize;
    for pending in group {
        let mut batches = Vec::with_capacity(pending.batches.len());
        for batch in pending.batches {
            let len = batch.bytes.len();
            batches.push(Batch { header: batch.header, bytes: object.slice(at..at + len) });
            at += len;
        }
        let placed = Placed { batches, reply: pending.reply };
        by_partition
            .entry(pending.dir.clone())
            .or_insert_with(|| {
                order.push(pending.dir.clone());
                Vec::new()
            })
            .push(placed);
    }
    let commits = order.into_iter().filter_map(|dir| {
        let appends = by_partition.remove(&dir)?;
        Some(commit(heads, dir, &name, &object, appends))
    });
    join_all(commits).await;
}

/// An append whose batches now point into the data object.
struct Placed {
    batches: Vec<Batch>,
    reply: oneshot::Sender<Result<AppendResult>>,
}

/// Stores one partition's share of a flush in its head and answers its callers.
async fn commit(heads: &Heads, dir: Path, name: &str, object: &Bytes, appends: Vec<Placed>) {
    let now_ms = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|since| since.as_millis() as i64)
        .unwrap_or_default();
    let outcome = heads
        .update(&dir, |head| {
            let mut answers = Vec::with_capacity(appends.len());
            let mut changed = false;
            for append in &appends {
                let plan = plan_append(
                    append.batches.clone(),
                    head.high,
                    |producer| Ok(head.producer(producer)),
                    |producer| Ok(head.open_since(producer)),
                );
                let plan = match plan {
                    Ok(plan) => plan,
                    Err(error) => {
                        answers.push(Err(error));
                        continue;
                    }
                };
                let placed: Vec<(String, u64, u64, u64)> = plan
                    .appends
                    .iter()
                    .map(|(batch, _)| {
                        let start = (batch.bytes.as_ptr() as usize)
                            .saturating_sub(object.as_ptr() as usize);
                        let len = batch.bytes.len() as u64;
                        (name.to_owned(), start as u64, len, object.len() as u64)
                    })
                    .collect();
                let answer = AppendResult {
                    base_offset: plan.base_offset,
                    log_start: head.log_start,
                    duplicate: plan.duplicate,
                };
                changed |= !plan.appends.is_empty() || !plan.entries.is_empty();
                head.apply(plan, &placed, now_ms);
                answers.push(Ok(answer));
            }
            if changed {
                Ok(Change::Write(answers))
            } else {
                Ok(Change::Keep(answers))
            }
        })
        .await;
    match outcome {
        Ok(answers) => {
            for (append, answer) in appends.into_iter().zip(answers) {
                let _ = append.reply.send(answer);
            }
        }
        Err(error) => {
            warn!(%dir, %error, "head not updated; appends fail");
            for append in appends {
                let _ = append.reply.send(Err(error.clone()));
            }
        }
    }
}
