//! The object store as this engine uses it: whole small objects read with their ETag,
//! conditional writes (create-only, or replace-if-ETag-matches), ranged reads of data objects,
//! and a count of every request made (the cost a deployment pays per request).
//!
//! `object_store` itself retries 5xx answers, throttling and connection errors with exponential
//! backoff (configured in [`crate::options`]); what still fails after that becomes
//! `StorageError::Unavailable`, which the broker answers with a retriable Kafka error.

use std::ops::Range;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use bytes::Bytes;
use futures::TryStreamExt;
use object_store::path::Path;
use object_store::{ObjectStore, ObjectStoreExt, PutMode, PutOptions, PutPayload, UpdateVersion};
use skiff_storage::{Result, StorageError};

/// Requests made since the engine was opened, by kind.
#[derive(Debug, Default)]
pub(crate) struct RequestCounts {
    pub(crate) puts: AtomicU64,
    pub(crate) gets: AtomicU64,
    pub(crate) lists: AtomicU64,
    pub(crate) deletes: AtomicU64,
}

impl RequestCounts {
    pub(crate) fn totals(&self) -> RequestTotals {
        RequestTotals {
            puts: self.puts.load(Ordering::Relaxed),
            gets: self.gets.load(Ordering::Relaxed),
            lists: self.lists.load(Ordering::Relaxed),
            deletes: self.deletes.load(Ordering::Relaxed),
        }
    }
}

/// A snapshot of [`RequestCounts`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct RequestTotals {
    pub puts: u64,
    pub gets: u64,
    pub lists: u64,
    pub deletes: u64,
}

/// A small object as read, with the ETag a conditional replace must name.
#[derive(Debug, Clone)]
pub(crate) struct Tagged {
    pub(crate) bytes: Bytes,
    pub(crate) e_tag: Option<String>,
}

/// How a conditional write ended when it did not succeed.
#[derive(Debug)]
pub(crate) enum WriteError {
    /// Another writer created or changed the object first.
    Conflict,
    /// The store failed (after its own retries); the write may or may not have happened.
    Failed(StorageError),
}

/// The bucket (and key prefix) every object of one storage URL lives under.
#[derive(Clone)]
pub(crate) struct Store {
    inner: Arc<dyn ObjectStore>,
    prefix: Path,
    counts: Arc<RequestCounts>,
}

/// Maps an `object_store` error that is not an expected outcome of the call.
pub(crate) fn unavailable(error: object_store::Error) -> StorageError {
    StorageError::Unavailable(format!("object store: {error}"))
}

impl Store {
    pub(crate) fn new(inner: Arc<dyn ObjectStore>, prefix: Path) -> Self {
        Self { inner, prefix, counts: Arc::default() }
    }

    /// The full path of `key` (a `/`-separated key whose parts are already safe).
    pub(crate) fn path(&self, parts: &[&str]) -> Path {
        let mut path = self.prefix.clone();
        for part in parts {
            path = path.join(*part);
        }
        path
    }

    /// The counts, held weakly: a watcher stops when the engine is gone.
    pub(crate) fn watch(&self) -> std::sync::Weak<RequestCounts> {
        Arc::downgrade(&self.counts)
    }

    #[cfg(test)]
    pub(crate) fn totals(&self) -> RequestTotals {
        self.counts.totals()
    }

    /// Reads a whole object; `None` if it does not exist.
    pub(crate) async fn get(&self, path: &Path) -> Result<Option<Tagged>> {
        self.counts.gets.fetch_add(1, Ordering::Relaxed);
        let result = match self.inner.get(path).await {
            Ok(result) => result,
            Err(object_store::Error::NotFound { .. }) => return Ok(None),
            Err(error) => return Err(unavailable(error)),
        };
        let e_tag = result.meta.e_tag.clone();
        let bytes = result.bytes().await.map_err(unavailable)?;
        Ok(Some(Tagged { bytes, e_tag }))
    }

    /// Reads `range` of an object that must exist (data and index objects are immutable).
    pub(crate) async fn get_range(&self, path: &Path, range: Range<u64>) -> Result<Bytes> {
        self.counts.gets.fetch_add(1, Ordering::Relaxed);
        self.inner.get_range(path, range).await.map_err(|error| match error {
            object_store::Error::NotFound { .. } => {
                StorageError::Corrupt(format!("object {path} is referenced but missing"))
            }
            other => unavailable(other),
        })
    }

    /// Writes an object that must not exist yet (`If-None-Match: *`). Returns its ETag.
    pub(crate) async fn create(
        &self,
        path: &Path,
        bytes: Bytes,
    ) -> std::result::Result<Option<String>, WriteError> {
        self.put(path, bytes, PutMode::Create).await
    }

    /// Replaces an object if it still has `e_tag` (`If-Match`). Returns the new ETag.
    pub(crate) async fn replace(
        &self,
        path: &Path,
        bytes: Bytes,
        e_tag: Option<String>,
    ) -> std::result::Result<Option<String>, WriteError> {
        self.put(path, bytes, PutMode::Update(UpdateVersion { e_tag, version: None })).await
    }

    /// Creates (`expected: None`) or replaces (`Some(etag)`) an object.
    pub(crate) async fn write(
        &self,
        path: &Path,
        bytes: Bytes,
        expected: Option<Option<String>>,
    ) -> std::result::Result<Option<String>, WriteError> {
        match expected {
            None => self.create(path, bytes).await,
            Some(e_tag) => self.replace(path, bytes, e_tag).await,
        }
    }

    async fn put(
        &self,
        path: &Path,
        bytes: Bytes,
        mode: PutMode,
    ) -> std::result::Result<Option<String>, WriteError> {
        self.counts.puts.fetch_add(1, Ordering::Relaxed);
        let options = PutOptions { mode, ..PutOptions::default() };
        match self.inner.put_opts(path, PutPayload::from(bytes), options).await {
            Ok(result) => Ok(result.e_tag),
            Err(object_store::Error::AlreadyExists { .. })
            | Err(object_store::Error::Precondition { .. }) => Err(WriteError::Conflict),
            // Some servers answer a conditional write on a missing object with 404.
            Err(object_store::Error::NotFound { .. }) => Err(WriteError::Conflict),
            Err(error) => Err(WriteError::Failed(unavailable(error))),
        }
    }

    /// Deletes an object; deleting a missing one is not an error.
    pub(crate) async fn delete(&self, path: &Path) -> Result<()> {
        self.counts.deletes.fetch_add(1, Ordering::Relaxed);
        match self.inner.delete(path).await {
            Ok(()) | Err(object_store::Error::NotFound { .. }) => Ok(()),
            Err(error) => Err(unavailable(error)),
        }
    }

    /// Every object under `prefix` (a directory-like prefix: whole path segments).
    pub(crate) async fn list(&self, prefix: &Path) -> Result<Vec<Path>> {
        self.counts.lists.fetch_add(1, Ordering::Relaxed);
        let found: Vec<_> =
            self.inner.list(Some(prefix)).try_collect().await.map_err(unavailable)?;
        Ok(found.into_iter().map(|meta| meta.location).collect())
    }

    /// Deletes every object under `prefix`.
    pub(crate) async fn delete_all(&self, prefix: &Path) -> Result<()> {
        for path in self.list(prefix).await? {
            self.delete(&path).await?;
        }
        Ok(())
    }
}

impl WriteError {
    /// The error a caller that cannot retry sees.
    pub(crate) fn into_storage(self, what: &str) -> StorageError {
        match self {
            Self::Conflict => StorageError::Conflict(format!("{what} was changed concurrently")),
            Self::Failed(error) => error,
        }
    }
}
