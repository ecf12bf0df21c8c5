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

use std::collections::HashSet;
use std::sync::Weak;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use bytes::Bytes;
use skiff_storage::{MetaStore, Result, StateStore};
use tracing::{debug, info, warn};

use crate::S3Engine;

/// State key of the collector lease: "<holder> <expires at ms>".
const LEASE_KEY: &str = "s3/collector";

/// What a pass did.
#[derive(Debug, Default, PartialEq, Eq)]
pub(crate) struct Collected {
    pub(crate) old: usize,
    pub(crate) deleted: usize,
}

fn now_ms() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map(|since| since.as_millis() as u64).unwrap_or(0)
}

/// Creation time of a data object, from its name (`<hex ms>-<uuid>`).
fn created_ms(name: &str) -> Option<u64> {
    u64::from_str_radix(name.split('-').next()?, 16).ok()
}

impl S3Engine {
    /// Takes or renews the collector lease for `holder` until `now + ttl`.
    async fn take_collector_lease(&self, holder: &str, ttl: Duration) -> Result<bool> {
        let now = now_ms();
        let current = StateStore::get(self, LEASE_KEY).await?;
        if let Some(current) = &current {
            let text = String::from_utf8_lossy(&current.value);
            let (owner, expires) = text.split_once(' ').unwrap_or(("", "0"));
            if owner != holder && expires.parse::<u64>().unwrap_or(0) > now {
                return Ok(false);
            }
        }
        let value = Bytes::from(format!("{holder} {}", now + ttl.as_millis() as u64));
        match StateStore::put(self, LEASE_KEY, value, current.map(|c| c.version)).await {
            Ok(_) => Ok(true),
            Err(skiff_storage::StorageError::Conflict(_)) => Ok(false),
            Err(error) => Err(error),
        }
    }

    /// One pass: deletes data objects older than `grace` that nothing references.
    pub(crate) async fn collect(&self, grace: Duration) -> Result<Collected> {
        let cutoff = now_ms().saturating_sub(grace.as_millis() as u64);
        let old: Vec<String> = self
            .store
            .list(&self.store.path(&["data"]))
            .await?
            .iter()
            .filter_map(|path| path.filename().map(str::to_owned))
            .filter(|name| created_ms(name).is_some_and(|created| created < cutoff))
            .collect();
        let mut collected = Collected { old: old.len(), deleted: 0 };
        if old.is_empty() {
            return Ok(collected);
        }
        let referenced = self.referenced_objects().await?;
        for name in old.iter().filter(|name| !referenced.contains(*name)) {
            self.store.delete(&self.store.path(&["data", name])).await?;
            collected.deleted += 1;
        }
        Ok(collected)
    }

    /// Every data object a head or index segment of any partition names.
    async fn referenced_objects(&self) -> Result<HashSet<String>> {
        let mut referenced = HashSet::new();
        for topic in self.topics().await? {
            let topic_dir = self.topic_dir(topic.id);
            for partition in 0..topic.partitions {
                let dir = topic_dir.clone().join(partition.to_string());
                let head = self.heads.read(&dir).await?.head;
                for entry in self.heads.entries_from(&dir, &head, i64::MIN, u64::MAX).await? {
                    referenced.insert(entry.object);
                }
            }
        }
        Ok(referenced)
    }
}

/// Runs a collection pass every `interval` while the engine lives and this broker holds the
/// lease.
pub(crate) async fn run(engine: Weak<S3Engine>, interval: Duration, grace: Duration) {
    let holder = uuid::Uuid::new_v4().simple().to_string();
    loop {
        tokio::time::sleep(interval).await;
        let Some(engine) = engine.upgrade() else { break };
        match engine.take_collector_lease(&holder, interval * 2).await {
            Ok(true) => match engine.collect(grace).await {
                Ok(collected) if collected.deleted > 0 => {
                    info!(
                        old = collected.old,
                        deleted = collected.deleted,
                        "s3 data objects collected"
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
