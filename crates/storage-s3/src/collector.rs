//! The garbage collector of data objects: those no head or index segment references any more
//! (all their batches went by retention, DeleteRecords or compaction, or their flush died before
//! any head took them, or their topic was deleted).
//!
//! A data object is shared by every partition of its flush, so it may go only when no partition
//! references it. A pass (by one broker at a time: it holds the `s3/collector` lease, taken by
//! compare-and-set in the state store) lists `data/`, keeps the objects older than the grace
//! period, reads every partition's head and segments, and deletes the old objects none of them
//! names. Objects younger than the grace period may belong to a flush or compaction whose head
//! write is still to come. An old object unreferenced in the heads read stays unreferenced:
//! appends and compaction only ever add references to objects they just wrote, and rolling
//! index entries into a segment keeps them referenced by one version of the head or the other.
//!
//! The same pass collects index segments no head references: those a roll wrote before its
//! head write lost a race (the roll is redone with a new segment), and those a broker meant to
//! delete a minute after the head dropped them but died first. A head only ever references a
//! segment it wrote in the same step, so an unreferenced segment stays unreferenced; it is
//! deleted once two passes of this collector, the grace period apart at least, have seen it
//! unreferenced (a reader that read an older head may still be reading it for a moment, and a
//! roll's head write may still be on its way).

use std::collections::{HashMap, HashSet};
use std::sync::Weak;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use object_store::path::Path;
use skiff_storage::{MetaStore, Result};
use tracing::{debug, info, warn};

use crate::S3Engine;

/// State key of the collector lease: "<holder> <expires at ms>".
const LEASE_KEY: &str = "s3/collector";

/// What a pass did.
#[derive(Debug, Default, PartialEq, Eq)]
pub(crate) struct Collected {
    /// Data objects older than the grace period.
    pub(crate) old: usize,
    /// Data objects deleted.
    pub(crate) deleted: usize,
    /// Index segments no head references.
    pub(crate) unreferenced_segments: usize,
    /// Index segments deleted.
    pub(crate) deleted_segments: usize,
}

/// Index segments a collector saw unreferenced, and since when: what it carries from one pass
/// to the next.
#[derive(Debug, Default)]
pub(crate) struct Suspects(HashMap<Path, Instant>);

/// What the heads of every partition reference.
#[derive(Default)]
struct References {
    /// Data objects (only gathered when some data object is old enough to go).
    objects: HashSet<String>,
    /// Index segment objects under some partition's `index/` that its head does not name.
    unreferenced_segments: Vec<Path>,
}

fn now_ms() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map(|since| since.as_millis() as u64).unwrap_or(0)
}

/// Creation time of a data object, from its name (`<hex ms>-<uuid>`).
fn created_ms(name: &str) -> Option<u64> {
    u64::from_str_radix(name.split('-').next()?, 16).ok()
}

impl S3Engine {
    /// One pass: deletes data objects older than `grace` that nothing references, and index
    /// segments `suspects` has held unreferenced for `grace`.
    pub(crate) async fn collect(
        &self,
        grace: Duration,
        suspects: &mut Suspects,
    ) -> Result<Collected> {
        let cutoff = now_ms().saturating_sub(grace.as_millis() as u64);
        let old: Vec<String> = self
            .store
            .list(&self.store.path(&["data"]))
            .await?
            .iter()
            .filter_map(|path| path.filename().map(str::to_owned))
            .filter(|name| created_ms(name).is_some_and(|created| created < cutoff))
            .collect();
        let references = self.references(!old.is_empty()).await?;
        let mut collected = Collected {
            old: old.len(),
            unreferenced_segments: references.unreferenced_segments.len(),
            ..Collected::default()
        };
        for name in old.iter().filter(|name| !references.objects.contains(*name)) {
            self.store.delete(&self.store.path(&["data", name])).await?;
            collected.deleted += 1;
        }
        let now = Instant::now();
        let mut still = HashMap::new();
        for path in references.unreferenced_segments {
            // Seen by an earlier pass at least: never the segment of a roll still in flight.
            match suspects.0.get(&path).copied() {
                Some(since) if now.duration_since(since) >= grace => {
                    self.store.delete(&path).await?;
                    collected.deleted_segments += 1;
                }
                since => {
                    still.insert(path, since.unwrap_or(now));
                }
            }
        }
        suspects.0 = still;
        Ok(collected)
    }

    /// What every partition's head references: its index segments always (one LIST of the
    /// partition's `index/`), and the data objects of its entries if `objects` is asked for.
    async fn references(&self, objects: bool) -> Result<References> {
        let mut references = References::default();
        for topic in self.topics().await? {
            let topic_dir = self.topic_dir(topic.id);
            for partition in 0..topic.partitions {
                let dir = topic_dir.clone().join(partition.to_string());
                let head = self.heads.read(&dir).await?.head;
                if objects {
                    for entry in self.heads.entries_from(&dir, &head, i64::MIN, u64::MAX).await? {
                        references.objects.insert(entry.object);
                    }
                }
                let named: HashSet<&str> =
                    head.segments.iter().map(|segment| segment.object.as_str()).collect();
                for path in self.store.list(&dir.clone().join("index")).await? {
                    if !path.filename().is_some_and(|name| named.contains(name)) {
                        references.unreferenced_segments.push(path);
                    }
                }
            }
        }
        Ok(references)
    }
}

/// Runs a collection pass every `interval` while the engine lives and this broker holds the
/// lease.
pub(crate) async fn run(engine: Weak<S3Engine>, interval: Duration, grace: Duration) {
    let holder = uuid::Uuid::new_v4().simple().to_string();
    let mut suspects = Suspects::default();
    loop {
        tokio::time::sleep(interval).await;
        let Some(engine) = engine.upgrade() else { break };
        let now = i64::try_from(now_ms()).unwrap_or(i64::MAX);
        match skiff_storage::lease::take(engine.as_ref(), LEASE_KEY, &holder, now, interval * 2)
            .await
        {
            Ok(true) => match engine.collect(grace, &mut suspects).await {
                Ok(collected) if collected.deleted + collected.deleted_segments > 0 => {
                    info!(
                        old = collected.old,
                        deleted = collected.deleted,
                        unreferenced_segments = collected.unreferenced_segments,
                        deleted_segments = collected.deleted_segments,
                        "s3 objects collected"
                    )
                }
                Ok(_) => debug!("no s3 data object to collect"),
                Err(error) => warn!(%error, "s3 collection pass failed"),
            },
            Ok(false) => debug!("another broker holds the s3 collector lease"),
            Err(error) => warn!(%error, "s3 collector lease unavailable"),
        }
    }
}
