//! `LogStore::remove_records` (compaction) on S3: data and index objects are immutable, so the
//! batches that lose records are rewritten into a new data object, index segments holding
//! them into new segment objects, and the head is switched to them by compare-and-set.
//!
//! Only the entries named are swapped, and only if the head still has them as they were read:
//! concurrent appends (which add entries at the end, or roll old ones into a segment) or a
//! concurrent DeleteRecords make the swap start over from a fresh head. Objects written for a
//! swap that lost are unreferenced garbage, like those of a crashed flush.

use std::collections::HashMap;

use bytes::BytesMut;
use object_store::path::Path;
use skiff_storage::compaction::{self, Rewrite};
use skiff_storage::{Result, StorageError};
use tracing::debug;

use crate::head::{Entry, Head, SegmentRef};
use crate::heads::Change;
use crate::store::WriteError;
use crate::S3Engine;

/// Fresh starts before giving up (each means the partition changed under the rewrite).
const ATTEMPTS: usize = 8;

/// Where an index entry lives.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
enum Home {
    Head,
    /// Index into `head.segments`.
    Segment(usize),
}

impl S3Engine {
    pub(crate) async fn remove(&self, dir: &Path, offsets: &[i64]) -> Result<u64> {
        for _ in 0..ATTEMPTS {
            if let Some(removed) = self.try_remove(dir, offsets).await? {
                return Ok(removed);
            }
            debug!(%dir, "partition changed during compaction; starting over");
        }
        Err(StorageError::Unavailable(format!("{dir}: kept changing during compaction")))
    }

    /// One attempt; `None` if the head changed in a way that needs a fresh start.
    async fn try_remove(&self, dir: &Path, offsets: &[i64]) -> Result<Option<u64>> {
        let head = self.heads.read(dir).await?.head;
        let offsets = compaction::removable(offsets, head.watermarks())?;
        let (Some(first), Some(last)) = (offsets.first().copied(), offsets.last().copied()) else {
            return Ok(Some(0));
        };
        let candidates = self.candidates(dir, &head, first, last).await?;

        // Rewrite the batches that lose records; their new bytes go into one new data object.
        let name = crate::flusher::object_name();
        let mut object = BytesMut::new();
        let mut replaced: HashMap<(Home, i64), Option<Entry>> = HashMap::new();
        let mut removed = 0;
        for (home, entry) in candidates {
            if compaction::offsets_within(offsets, entry.base, entry.last()).is_empty() {
                continue;
            }
            let stored = self.load(std::slice::from_ref(&entry)).await?;
            let Some(stored) = stored.first() else { continue };
            match compaction::rewrite_batch(stored, offsets)? {
                Rewrite::Unchanged => {}
                Rewrite::Emptied { removed: count } => {
                    removed += count;
                    replaced.insert((home, entry.base), None);
                }
                Rewrite::Replaced { bytes, removed: count } => {
                    removed += count;
                    let start = object.len() as u64;
                    object.extend_from_slice(&bytes);
                    let new = Entry {
                        object: name.clone(),
                        start,
                        len: bytes.len() as u64,
                        object_len: 0,
                        ..entry
                    };
                    replaced.insert((home, new.base), Some(new));
                }
            }
        }
        if replaced.is_empty() {
            return Ok(Some(0));
        }
        if !object.is_empty() {
            let object = object.freeze();
            let path = self.store.path(&["data", &name]);
            match self.store.create(&path, object.clone()).await {
                Ok(_) | Err(WriteError::Conflict) => self.recent.insert(&name, object),
                Err(WriteError::Failed(error)) => return Err(error),
            }
        }

        // New segment objects for the segments that changed.
        let mut segments: Vec<(String, SegmentRef)> = Vec::new();
        for (index, segment) in head.segments.iter().enumerate() {
            if !replaced.keys().any(|(home, _)| *home == Home::Segment(index)) {
                continue;
            }
            let entries = self.heads.segment(dir, segment).await?;
            let rewritten = apply(&entries, Home::Segment(index), &replaced);
            let fresh = self.heads.write_segment(dir, &rewritten).await?;
            segments
                .push((segment.object.clone(), SegmentRef { object: fresh, ..segment.clone() }));
        }

        let swapped = self
            .heads
            .update(dir, |current| {
                let mut changed = current.clone();
                for (old, new) in &segments {
                    let Some(at) = changed.segments.iter().position(|s| s.object == *old) else {
                        return Ok(Change::Keep(false));
                    };
                    changed.segments[at] = new.clone();
                }
                let wanted: Vec<&Entry> = head
                    .index
                    .iter()
                    .filter(|entry| replaced.contains_key(&(Home::Head, entry.base)))
                    .collect();
                for entry in wanted {
                    if !changed.index.contains(entry) {
                        return Ok(Change::Keep(false));
                    }
                }
                changed.index = apply(&changed.index, Home::Head, &replaced);
                *current = changed;
                Ok(Change::Write(true))
            })
            .await?;
        if !swapped {
            return Ok(None);
        }
        let old: Vec<SegmentRef> = head
            .segments
            .iter()
            .filter(|segment| segments.iter().any(|(name, _)| *name == segment.object))
            .cloned()
            .collect();
        self.heads.delete_segments(dir, &old).await;
        Ok(Some(removed))
    }

    /// Index entries (with where they live) that may hold offsets in `first..=last`.
    async fn candidates(
        &self,
        dir: &Path,
        head: &Head,
        first: i64,
        last: i64,
    ) -> Result<Vec<(Home, Entry)>> {
        let mut found = Vec::new();
        for (index, segment) in head.segments.iter().enumerate() {
            if segment.last < first || segment.first > last {
                continue;
            }
            for entry in self.heads.segment(dir, segment).await?.iter() {
                if entry.last() >= first && entry.base <= last {
                    found.push((Home::Segment(index), entry.clone()));
                }
            }
        }
        for entry in &head.index {
            if entry.last() >= first && entry.base <= last {
                found.push((Home::Head, entry.clone()));
            }
        }
        Ok(found)
    }
}

/// `entries` with the replacements for `home` applied (an emptied batch disappears).
fn apply(
    entries: &[Entry],
    home: Home,
    replaced: &HashMap<(Home, i64), Option<Entry>>,
) -> Vec<Entry> {
    entries
        .iter()
        .filter_map(|entry| match replaced.get(&(home, entry.base)) {
            None => Some(entry.clone()),
            Some(new) => new.clone(),
        })
        .collect()
}
