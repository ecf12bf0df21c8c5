//! `s3://bucket[/prefix]`: a broker with no disk. Every fact lives in objects of one bucket, and
//! brokers coordinate only through conditional writes (`If-None-Match: *` to create,
//! `If-Match: <etag>` to replace); a lost race re-reads and retries. The object layout and the
//! append protocol, and why a broker may die between any two requests, are in
//! `docs/storage/s3.md`.
//!
//! # Layout of this crate
//!
//! - `options`: the URL (`?flush_ms=&flush_bytes=&tail_cache_ms=&retry_timeout_ms=&...`) and
//!   the `object_store` client built from the `AWS_*` environment, with retries and backoff.
//! - `http`: the static build's HTTP client for `object_store` (host names via `skiff-resolve`).
//! - `store`: requests as this engine uses them (counted, errors in `StorageError` terms).
//! - `head`: a partition's head object: watermarks, producers, transactions, index.
//! - `heads`: the compare-and-set loop over heads, their cache, index segments.
//! - `flusher`: coalesces concurrent appends into one data object per flush.
//! - `collector`: deletes data objects nothing references any more (one broker at a time).
//! - `compact`: compaction's record removal (rewrites batches and index segments).
//! - `recent`: data objects written lately or fetched whole, served to readers from memory.
//! - `fuzzing`: the entry point of the fuzz target for head objects (not an API).
//! - `tests`: engine-specific tests and the conformance suite, against a real S3 server.
//! - `log`, `meta`, `state`, `offsets`: the storage traits.

mod collector;
mod compact;
mod flusher;
#[doc(hidden)]
pub mod fuzzing;
mod head;
mod heads;
mod http;
mod log;
mod meta;
mod offsets;
mod options;
mod recent;
mod state;
mod store;

#[cfg(test)]
mod tests;

use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use object_store::path::Path;
use skiff_storage::{Result, Storage, StorageError, TopicMeta};
use tokio::time::Instant;
use tracing::info;

use crate::flusher::Flusher;
use crate::heads::Heads;
use crate::options::Options;
use crate::recent::RecentObjects;
use crate::store::Store;

pub use crate::store::RequestTotals;

/// How often the engine logs how many requests it has made (when the count changed).
const REQUEST_LOG_INTERVAL: Duration = Duration::from_secs(10);

/// Opens the bucket a `s3://bucket[/prefix][?options]` URL names. Needs a tokio runtime (the
/// flush task runs on it). Nothing is read or written until the first request.
pub fn open(url: &str) -> Result<Storage> {
    open_counted(url).map(|(storage, _)| storage)
}

/// An `object_store` client for the bucket and prefix a `s3://bucket[/prefix][?endpoint=...]`
/// URL names, configured like the engine's (the `AWS_*` environment, retries, the static
/// build's resolver), for other writers of the same bucket: the table sinks.
pub fn object_store_client(
    url: &str,
) -> Result<(Arc<dyn object_store::ObjectStore>, object_store::path::Path)> {
    let options = Options::parse(url)?;
    let client = options.client()?;
    Ok((Arc::new(client), Path::from(options.prefix.as_str())))
}

/// The engine's own count of its object store requests, readable while the engine lives
/// (what the broker's metrics export): no second count on the request path.
#[derive(Clone)]
pub struct RequestCounter(std::sync::Weak<store::RequestCounts>);

impl RequestCounter {
    /// The totals so far (zeros once the engine is gone).
    pub fn totals(&self) -> RequestTotals {
        self.0.upgrade().map(|counts| counts.totals()).unwrap_or_default()
    }
}

/// [`open`], and the engine's request counter.
pub fn open_counted(url: &str) -> Result<(Storage, RequestCounter)> {
    let engine = Arc::new(S3Engine::open(url)?);
    let counter = RequestCounter(engine.store.watch());
    if !engine.options.collect_interval.is_zero() {
        tokio::spawn(collector::run(
            Arc::downgrade(&engine),
            engine.options.collect_interval,
            engine.options.collect_grace,
        ));
    }
    let storage = Storage {
        meta: engine.clone(),
        log: engine.clone(),
        state: engine.clone(),
        offsets: engine,
    };
    Ok((storage, counter))
}

/// The engine: one bucket prefix, one flush task.
pub(crate) struct S3Engine {
    store: Store,
    heads: Arc<Heads>,
    flusher: Flusher,
    recent: Arc<RecentObjects>,
    options: Options,
    /// Whole data objects being fetched, shared by every read that wants them meanwhile.
    fetching: Mutex<HashMap<String, Fetching>>,
    /// Topics recently read: name -> (topic, when read).
    topics: Mutex<HashMap<String, (TopicMeta, Instant)>>,
}

/// Compare-and-set attempts on one object before giving up: each lost attempt means another
/// writer progressed, so only a store that fails every conditional write ever gets here.
pub(crate) const MAX_CONFLICTS: usize = 500;

/// The error after [`MAX_CONFLICTS`] lost attempts.
pub(crate) fn too_many_conflicts(what: &str) -> StorageError {
    StorageError::Unavailable(format!(
        "{what}: gave up after {MAX_CONFLICTS} lost compare-and-set attempts"
    ))
}

/// A whole-object fetch in progress (see `log::fetch_whole`).
pub(crate) type Fetching =
    futures::future::Shared<futures::future::BoxFuture<'static, Result<bytes::Bytes>>>;

pub(crate) fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

impl S3Engine {
    fn open(url: &str) -> Result<Self> {
        let options = Options::parse(url)?;
        let client = options.client()?;
        let prefix = Path::from(options.prefix.as_str());
        let store = Store::new(Arc::new(client), prefix);
        let heads = Arc::new(Heads::new(store.clone(), options.retry_timeout));
        let recent = Arc::new(RecentObjects::default());
        let flusher = Flusher::spawn(
            store.clone(),
            Arc::clone(&heads),
            Arc::clone(&recent),
            options.flush_delay,
            options.flush_bytes,
        )?;
        spawn_request_log(&store, &options)?;
        Ok(Self {
            store,
            heads,
            flusher,
            recent,
            options,
            fetching: Mutex::default(),
            topics: Mutex::default(),
        })
    }
}

impl Drop for S3Engine {
    /// The final request count, for the log (a broker drops its storage on graceful shutdown).
    fn drop(&mut self) {
        if let Some(counts) = self.store.watch().upgrade() {
            let totals = counts.totals();
            info!(
                bucket = self.options.bucket,
                puts = totals.puts,
                gets = totals.gets,
                lists = totals.lists,
                deletes = totals.deletes,
                "s3 requests in all"
            );
        }
    }
}

/// Logs the request totals every [`REQUEST_LOG_INTERVAL`] while the engine lives: what a
/// deployment pays for, and what `docs/performance.md` counts.
fn spawn_request_log(store: &Store, options: &Options) -> Result<()> {
    let runtime = tokio::runtime::Handle::try_current().map_err(|error| {
        StorageError::Unavailable(format!("the s3 engine needs a tokio runtime: {error}"))
    })?;
    let counts = store.watch();
    let bucket = options.bucket.clone();
    runtime.spawn(async move {
        let mut logged = RequestTotals::default();
        loop {
            tokio::time::sleep(REQUEST_LOG_INTERVAL).await;
            let Some(totals) = counts.upgrade().map(|counts| counts.totals()) else { break };
            if totals != logged {
                info!(
                    bucket,
                    puts = totals.puts,
                    gets = totals.gets,
                    lists = totals.lists,
                    deletes = totals.deletes,
                    "s3 requests so far"
                );
                logged = totals;
            }
        }
    });
    Ok(())
}
