//! A broker's copy of a cluster-wide document (the ACLs, the quotas): read from storage on
//! first use, then served from memory; once older than its refresh period, the next use starts
//! one read in the background and keeps serving the old copy until it lands (a request never
//! waits for a refresh, and an idle broker reads nothing). A refresh period of zero reads the
//! document at every use instead.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, RwLock};
use std::time::{Duration, Instant};

use futures::future::BoxFuture;
use skiff_storage::StorageError;

/// How a document is read from storage.
pub(crate) type Loader<T> =
    Box<dyn Fn() -> BoxFuture<'static, Result<T, StorageError>> + Send + Sync>;

pub(crate) struct Cached<T> {
    load: Loader<T>,
    refresh: Duration,
    current: RwLock<Option<(Arc<T>, Instant)>>,
    /// Whether a background read is under way (at most one at a time).
    refreshing: AtomicBool,
    /// Named in the log when a refresh fails.
    what: &'static str,
}

impl<T: Send + Sync + 'static> Cached<T> {
    pub(crate) fn new(what: &'static str, refresh: Duration, load: Loader<T>) -> Self {
        Self { load, refresh, current: RwLock::new(None), refreshing: AtomicBool::new(false), what }
    }

    /// The copy to use now: the current one (refreshed in the background when stale), or a
    /// fresh read when there is none yet or the refresh period is zero.
    pub(crate) async fn get(self: &Arc<Self>) -> Result<Arc<T>, StorageError> {
        if self.refresh.is_zero() {
            return self.reload().await;
        }
        let current = self.current.read().map(|guard| guard.clone()).unwrap_or_default();
        match current {
            Some((value, read_at)) => {
                if read_at.elapsed() >= self.refresh {
                    self.refresh_in_background();
                }
                Ok(value)
            }
            None => self.reload().await,
        }
    }

    /// Reads the document now and makes it the copy (after this broker changed it).
    pub(crate) async fn reload(&self) -> Result<Arc<T>, StorageError> {
        let value = Arc::new((self.load)().await?);
        if let Ok(mut current) = self.current.write() {
            *current = Some((value.clone(), Instant::now()));
        }
        Ok(value)
    }

    fn refresh_in_background(self: &Arc<Self>) {
        if self.refreshing.swap(true, Ordering::AcqRel) {
            return;
        }
        let this = self.clone();
        tokio::spawn(async move {
            if let Err(error) = this.reload().await {
                // The old copy stays in use for another period, then a read is tried again
                // (not at every request while storage is down).
                tracing::warn!(%error, what = this.what, "refreshing failed: using the last copy read");
                if let Ok(mut current) = this.current.write() {
                    if let Some((_, read_at)) = current.as_mut() {
                        *read_at = Instant::now();
                    }
                }
            }
            this.refreshing.store(false, Ordering::Release);
        });
    }
}
