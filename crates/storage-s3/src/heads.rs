//! Reading and replacing partition heads: the compare-and-set loop every change of a partition
//! goes through, a small cache, and the index segments heads roll their old entries into.
//!
//! The cache never decides a write: a change starts from the cached head only to save a GET,
//! and a stale ETag simply loses the compare-and-set and re-reads. Reads use it only for a fetch
//! waiting at the end of the log (see [`Heads::tail`]).

use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use object_store::path::Path;
use skiff_storage::{Result, StorageError};
use tokio::time::Instant;
use tracing::{debug, warn};

use crate::head::{Entry, Head, SegmentRef};
use crate::store::{Store, WriteError};

/// A head with more index entries than this rolls its oldest [`ROLL_COUNT`] into a segment.
const ROLL_AT: usize = 1024;
const ROLL_COUNT: usize = 512;
/// Segments kept in memory (they are immutable, so a cached one is always right).
const CACHED_SEGMENTS: usize = 512;
/// How long an index segment outlives the head that stopped referencing it.
const SEGMENT_GRACE: Duration = Duration::from_secs(60);

/// What a change of a head decided.
pub(crate) enum Change<T> {
    /// Store the changed head, then answer `T`.
    Write(T),
    /// Nothing to store; answer `T`.
    Keep(T),
}

/// A head as read: its content, whether the object exists, and its ETag.
#[derive(Clone)]
pub(crate) struct Snapshot {
    pub(crate) head: Arc<Head>,
    exists: bool,
    e_tag: Option<String>,
    read_at: Instant,
}

pub(crate) struct Heads {
    store: Store,
    cache: Mutex<HashMap<Path, Snapshot>>,
    segments: Mutex<HashMap<Path, Arc<Vec<Entry>>>>,
    retry_timeout: Duration,
}

fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

fn head_path(dir: &Path) -> Path {
    dir.clone().join("head")
}

impl Heads {
    pub(crate) fn new(store: Store, retry_timeout: Duration) -> Self {
        Self { store, cache: Mutex::default(), segments: Mutex::default(), retry_timeout }
    }

    /// Caches a head unless a newer one (a higher high watermark or log start) is cached: a slow
    /// read finishing after a faster, later one must not move the cache back in time, because
    /// read_committed fetches take their aborted transactions from it.
    fn remember(&self, path: Path, snapshot: Snapshot) {
        let mut cache = lock(&self.cache);
        match cache.get(&path) {
            Some(cached)
                if (cached.head.high, cached.head.log_start)
                    > (snapshot.head.high, snapshot.head.log_start) => {}
            _ => {
                cache.insert(path, snapshot);
            }
        }
    }

    /// Reads the head of the partition stored under `dir` (an absent head is an empty partition).
    pub(crate) async fn read(&self, dir: &Path) -> Result<Snapshot> {
        let path = head_path(dir);
        let snapshot = match self.store.get(&path).await? {
            Some(tagged) => Snapshot {
                head: Arc::new(Head::decode(&tagged.bytes)?),
                exists: true,
                e_tag: tagged.e_tag,
                read_at: Instant::now(),
            },
            None => Snapshot {
                head: Arc::default(),
                exists: false,
                e_tag: None,
                read_at: Instant::now(),
            },
        };
        self.remember(path, snapshot.clone());
        Ok(snapshot)
    }

    /// The cached head if it is younger than `max_age` and `offset` is at most its high
    /// watermark: what a fetch may use instead of a GET. At the end of the log, "nothing new
    /// yet" is a right answer (appends through this engine refresh the cache, so they are seen
    /// at once; other brokers' within `max_age`); below it, the batches the cached head indexes
    /// are still stored (data objects outlive their last reference by the collector's grace
    /// period, segments by a minute), so a catching-up consumer costs no head GET per fetch. An
    /// offset beyond the cached high watermark proves the cache stale (a client learnt it from
    /// a newer head): that read goes to the store, or the fetch would wrongly answer
    /// OFFSET_OUT_OF_RANGE.
    pub(crate) fn for_read(&self, dir: &Path, offset: i64, max_age: Duration) -> Option<Arc<Head>> {
        let cache = lock(&self.cache);
        let cached = cache.get(&head_path(dir))?;
        (cached.read_at.elapsed() < max_age && offset <= cached.head.high)
            .then(|| Arc::clone(&cached.head))
    }

    /// The last head this engine read or wrote, however old.
    pub(crate) fn cached(&self, dir: &Path) -> Option<Arc<Head>> {
        lock(&self.cache).get(&head_path(dir)).map(|cached| Arc::clone(&cached.head))
    }

    /// Forgets cached heads under `dir` (a deleted topic).
    pub(crate) fn forget(&self, dir: &Path) {
        let prefix = dir.as_ref();
        lock(&self.cache).retain(|path, _| !path.as_ref().starts_with(prefix));
    }

    /// Changes a head by compare-and-set: `change` is applied to the latest head (re-run on
    /// every conflict, so it must be a pure function of the head), the result is written with
    /// `If-Match` (or `If-None-Match` for a new head), and a lost race re-reads and retries.
    ///
    /// Each attempt carries a unique token stored in the head; after a conflict or an error whose
    /// outcome is unknown (a timeout), finding the token in the re-read head proves that attempt
    /// landed, so its answer is returned instead of applying the change twice. A change that
    /// writes nothing (`Change::Keep`) is answered only from a head read from the store: on the
    /// cached head it is planned again after a GET.
    pub(crate) async fn update<T>(
        &self,
        dir: &Path,
        mut change: impl FnMut(&mut Head) -> Result<Change<T>>,
    ) -> Result<T> {
        let path = head_path(dir);
        let deadline = Instant::now() + self.retry_timeout;
        let cached = lock(&self.cache).get(&path).cloned();
        // A decision to write nothing is checked by no If-Match, so it is only trusted when
        // made on the head as stored: the cached copy may be stale (another broker appended
        // since), and a refusal planned on it (an "out of order" sequence) would be wrong.
        let mut from_cache = cached.is_some();
        let mut current = match cached {
            Some(snapshot) => snapshot,
            None => self.read(dir).await?,
        };
        let mut sent: Vec<(String, T)> = Vec::new();
        let mut pause = Duration::from_millis(5);
        for _ in 0..crate::MAX_CONFLICTS {
            let mut head = Head::clone(&current.head);
            let value = match change(&mut head)? {
                Change::Keep(value) if !from_cache => return Ok(value),
                Change::Keep(_) => {
                    debug!(%path, "nothing to write on the cached head; deciding on the stored one");
                    current = self.read(dir).await?;
                    from_cache = false;
                    continue;
                }
                Change::Write(value) => value,
            };
            self.roll(dir, &mut head).await;
            let token = uuid::Uuid::new_v4().simple().to_string();
            head.remember_write(&token);
            let bytes = head.encode()?;
            let expected = current.exists.then(|| current.e_tag.clone());
            let outcome = self.store.write(&path, bytes, expected).await;
            sent.push((token, value));
            let failure = match outcome {
                Ok(e_tag) => {
                    let snapshot = Snapshot {
                        head: Arc::new(head),
                        exists: true,
                        e_tag,
                        read_at: Instant::now(),
                    };
                    self.remember(path, snapshot);
                    let (_, value) = sent.pop().ok_or_else(lost_attempt)?;
                    return Ok(value);
                }
                Err(WriteError::Conflict) => None,
                Err(WriteError::Failed(error)) => Some(error),
            };
            if let Some(error) = &failure {
                warn!(%path, %error, "head write failed; checking whether it landed");
                if Instant::now() >= deadline {
                    return Err(error.clone());
                }
                tokio::time::sleep(pause).await;
                pause = (pause * 2).min(Duration::from_secs(1));
            }
            current = match self.read(dir).await {
                Ok(snapshot) => snapshot,
                Err(error) if Instant::now() < deadline => {
                    warn!(%path, %error, "head read failed; retrying");
                    tokio::time::sleep(pause).await;
                    pause = (pause * 2).min(Duration::from_secs(1));
                    self.read(dir).await?
                }
                Err(error) => return Err(error),
            };
            if let Some(index) = sent.iter().position(|(token, _)| current.head.has_write(token)) {
                debug!(%path, "an earlier attempt landed");
                return Ok(sent.swap_remove(index).1);
            }
            if failure.is_none() {
                debug!(%path, "head changed concurrently; re-planning");
            }
        }
        Err(crate::too_many_conflicts(path.as_ref()))
    }

    /// Moves the oldest entries of a long index into a new immutable segment object. Best
    /// effort: if the segment cannot be written the entries simply stay in the head.
    async fn roll(&self, dir: &Path, head: &mut Head) {
        if head.index.len() <= ROLL_AT {
            return;
        }
        let rolled: Vec<Entry> = head.index[..ROLL_COUNT].to_vec();
        let (Some(first), Some(last)) =
            (rolled.first().map(|e| e.base), rolled.last().map(Entry::last))
        else {
            return;
        };
        match self.write_segment(dir, &rolled).await {
            Ok(object) => {
                head.take_oldest(ROLL_COUNT);
                head.segments.push(SegmentRef { first, last, object });
            }
            Err(error) => warn!(%dir, %error, "index segment not rolled"),
        }
    }

    /// Stores `entries` as a new segment object; returns its name.
    pub(crate) async fn write_segment(&self, dir: &Path, entries: &[Entry]) -> Result<String> {
        let bytes = serde_json::to_vec(entries).map_err(|error| {
            StorageError::Corrupt(format!("index segment does not encode: {error}"))
        })?;
        let object = uuid::Uuid::new_v4().simple().to_string();
        let path = dir.clone().join("index").join(object.as_str());
        self.store
            .create(&path, bytes.into())
            .await
            .map_err(|error| error.into_storage("index segment"))?;
        lock(&self.segments).insert(path, Arc::new(entries.to_vec()));
        Ok(object)
    }

    pub(crate) async fn segment(
        &self,
        dir: &Path,
        segment: &SegmentRef,
    ) -> Result<Arc<Vec<Entry>>> {
        let path = dir.clone().join("index").join(segment.object.as_str());
        if let Some(found) = lock(&self.segments).get(&path) {
            return Ok(Arc::clone(found));
        }
        let tagged = self.store.get(&path).await?.ok_or_else(|| {
            StorageError::Corrupt(format!("index segment {path} is referenced but missing"))
        })?;
        let entries: Vec<Entry> = serde_json::from_slice(&tagged.bytes).map_err(|error| {
            StorageError::Corrupt(format!("index segment {path} does not decode: {error}"))
        })?;
        entries.iter().try_for_each(Entry::check)?;
        let entries = Arc::new(entries);
        let mut segments = lock(&self.segments);
        if segments.len() >= CACHED_SEGMENTS {
            segments.clear();
        }
        segments.insert(path, Arc::clone(&entries));
        Ok(entries)
    }

    /// Index entries holding offsets at or after `from`, in offset order, from segments and the
    /// head; stops once the entries found hold more than `byte_budget` bytes.
    pub(crate) async fn entries_from(
        &self,
        dir: &Path,
        head: &Head,
        from: i64,
        byte_budget: u64,
    ) -> Result<Vec<Entry>> {
        let mut found = Vec::new();
        let mut bytes = 0u64;
        for segment in head.segments.iter().filter(|segment| segment.last >= from) {
            for entry in self.segment(dir, segment).await?.iter() {
                if entry.last() >= from {
                    bytes += entry.len;
                    found.push(entry.clone());
                }
            }
            if bytes > byte_budget {
                return Ok(found);
            }
        }
        let start = head.index.partition_point(|entry| entry.last() < from);
        for entry in &head.index[start..] {
            if bytes > byte_budget {
                break;
            }
            bytes += entry.len;
            found.push(entry.clone());
        }
        Ok(found)
    }

    /// Deletes segment objects a stored head no longer references, a while later: a reader
    /// that read the previous head may still be about to fetch them.
    pub(crate) async fn delete_segments(&self, dir: &Path, segments: &[SegmentRef]) {
        if segments.is_empty() {
            return;
        }
        let paths: Vec<Path> = segments
            .iter()
            .map(|segment| dir.clone().join("index").join(segment.object.as_str()))
            .collect();
        let store = self.store.clone();
        tokio::spawn(async move {
            tokio::time::sleep(SEGMENT_GRACE).await;
            for path in paths {
                if let Err(error) = store.delete(&path).await {
                    warn!(%path, %error, "unreferenced index segment not deleted");
                }
            }
        });
    }
}

fn lost_attempt() -> StorageError {
    StorageError::Unavailable("head write attempt lost track of its answer".into())
}
