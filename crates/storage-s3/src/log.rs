//! `LogStore`: appends go through the [`crate::flusher`]; reads find batches through the
//! partition head's index (never by listing) and fetch their byte ranges, one ranged GET per run
//! of adjacent batches.

use std::ops::Range;

use async_trait::async_trait;
use bytes::{Bytes, BytesMut};
use futures::future::FutureExt;
use futures::stream::{self, StreamExt, TryStreamExt};
use object_store::path::Path;
use skiff_protocol::batch::set_base_offset;
use skiff_storage::{
    timestamps, AbortedTransaction, AppendResult, Batch, LogStore, ProducerSnapshot, QueuedAppend,
    ReadResult, Result, StorageError, TimestampOffset, TopicPartition, Watermarks,
};

use crate::head::{Entry, Head};

/// Ranges one read fetches at the same time.
const PARALLEL_FETCHES: usize = 16;
/// Data objects up to this size are fetched whole by readers (see `fetch_range`).
const WHOLE_OBJECT_BYTES: u64 = 1024 * 1024;
use crate::heads::Change;
use crate::S3Engine;

impl S3Engine {
    /// The stored bytes of `entries` (base offsets rewritten), in order: adjacent ranges of one
    /// object are read with one GET, up to [`PARALLEL_FETCHES`] GETs at a time.
    pub(crate) async fn load(&self, entries: &[Entry]) -> Result<Vec<Bytes>> {
        let mut runs: Vec<(String, u64, u64, Vec<&Entry>)> = Vec::new();
        for entry in entries {
            match runs.last_mut() {
                Some((object, _, end, members))
                    if *object == entry.object && *end == entry.start =>
                {
                    *end = entry.start + entry.len;
                    members.push(entry);
                }
                _ => runs.push((
                    entry.object.clone(),
                    entry.start,
                    entry.start + entry.len,
                    vec![entry],
                )),
            }
        }
        // In order, a bounded number at a time: a catching-up consumer may want hundreds.
        let wanted: Vec<(String, Range<u64>, u64)> = runs
            .iter()
            .map(|(object, start, end, members)| {
                let object_len = members.first().map_or(0, |entry| entry.object_len);
                (object.clone(), *start..*end, object_len)
            })
            .collect();
        let fetched: Vec<Bytes> = stream::iter(wanted)
            .map(|(object, range, object_len)| async move {
                self.fetch_range(&object, range, object_len).await
            })
            .buffered(PARALLEL_FETCHES)
            .try_collect()
            .await?;
        let mut batches = Vec::with_capacity(entries.len());
        for ((_, start, _, members), bytes) in runs.iter().zip(fetched) {
            for entry in members {
                let from = (entry.start - start) as usize;
                let stored = bytes.get(from..from + entry.len as usize).ok_or_else(|| {
                    StorageError::Corrupt(format!(
                        "data object {} is shorter than indexed",
                        entry.object
                    ))
                })?;
                let mut batch = BytesMut::from(stored);
                set_base_offset(&mut batch, entry.base);
                batches.push(batch.freeze());
            }
        }
        Ok(batches)
    }

    /// Bytes `range` of a data object: from memory if the object is there; by fetching the
    /// whole object (then kept in memory) if it is small, since its other batches belong to
    /// partitions a consumer is likely reading too; else by a ranged GET.
    async fn fetch_range(&self, object: &str, range: Range<u64>, object_len: u64) -> Result<Bytes> {
        let slice = |whole: &Bytes| {
            let start = usize::try_from(range.start).ok()?;
            let end = usize::try_from(range.end).ok()?;
            whole.get(start..end).map(|bytes| whole.slice_ref(bytes))
        };
        if let Some(found) = self.recent.get(object).as_ref().and_then(slice) {
            return Ok(found);
        }
        let path = self.store.path(&["data", object]);
        if object_len > 0 && object_len <= WHOLE_OBJECT_BYTES {
            let whole = self.fetch_whole(object, &path).await?;
            if let Some(found) = slice(&whole) {
                return Ok(found);
            }
        }
        self.store.get_range(&path, range).await
    }

    /// A whole data object, fetched once however many reads want it at the same time (a fetch
    /// reads its partitions concurrently, and one flush's object holds batches of many).
    async fn fetch_whole(&self, object: &str, path: &Path) -> Result<Bytes> {
        let fetch = {
            let mut fetching = crate::lock(&self.fetching);
            let fetch = fetching.entry(object.to_owned()).or_insert_with(|| {
                let (store, path) = (self.store.clone(), path.clone());
                async move {
                    match store.get(&path).await? {
                        Some(tagged) => Ok(tagged.bytes),
                        None => Err(StorageError::Corrupt(format!(
                            "object {path} is referenced but missing"
                        ))),
                    }
                }
                .boxed()
                .shared()
            });
            fetch.clone()
        };
        let fetched = fetch.await;
        crate::lock(&self.fetching).remove(object);
        let whole = fetched?;
        self.recent.insert(object, whole.clone());
        Ok(whole)
    }

    /// The latest head this engine knows (read now if it knows none).
    async fn latest(&self, dir: &Path) -> Result<std::sync::Arc<Head>> {
        match self.heads.cached(dir) {
            Some(head) => Ok(head),
            None => Ok(self.heads.read(dir).await?.head),
        }
    }

    /// Every live index entry of a partition (for timestamp searches and sizes).
    async fn live_entries(&self, dir: &Path, head: &Head) -> Result<Vec<Entry>> {
        self.heads.entries_from(dir, head, head.log_start, u64::MAX).await
    }
}

#[async_trait]
impl LogStore for S3Engine {
    async fn append(
        &self,
        partition: &TopicPartition,
        batches: Vec<Batch>,
    ) -> Result<AppendResult> {
        self.queue_append(partition, batches).await.await
    }

    async fn queue_append(&self, partition: &TopicPartition, batches: Vec<Batch>) -> QueuedAppend {
        match self.partition_dir(partition).await {
            Ok(dir) => self.flusher.queue(dir, batches),
            Err(error) => Box::pin(std::future::ready(Err(error))),
        }
    }

    async fn read(
        &self,
        partition: &TopicPartition,
        offset: i64,
        max_bytes: usize,
    ) -> Result<ReadResult> {
        let dir = self.partition_dir(partition).await?;
        let head = match self.heads.for_read(&dir, offset, self.options.tail_cache) {
            Some(head) => head,
            None => self.heads.read(&dir).await?.head,
        };
        let mut result = ReadResult { watermarks: head.watermarks(), batches: Vec::new() };
        if offset < head.log_start || offset >= head.high {
            return Ok(result);
        }
        let budget = u64::try_from(max_bytes).unwrap_or(u64::MAX);
        let mut chosen = Vec::new();
        let mut total = 0u64;
        for entry in self.heads.entries_from(&dir, &head, offset, budget).await? {
            if !chosen.is_empty() && total.saturating_add(entry.len) > budget {
                break;
            }
            total += entry.len;
            chosen.push(entry);
        }
        result.batches = self.load(&chosen).await?;
        Ok(result)
    }

    async fn watermarks(&self, partition: &TopicPartition) -> Result<Watermarks> {
        let dir = self.partition_dir(partition).await?;
        Ok(self.heads.read(&dir).await?.head.watermarks())
    }

    async fn offset_for_time(
        &self,
        partition: &TopicPartition,
        timestamp: i64,
    ) -> Result<Option<TimestampOffset>> {
        let dir = self.partition_dir(partition).await?;
        let head = self.heads.read(&dir).await?.head;
        let entries = self.live_entries(&dir, &head).await?;
        for entry in entries.into_iter().filter(|entry| entry.max_timestamp >= timestamp) {
            let batch = self.load(std::slice::from_ref(&entry)).await?;
            for bytes in &batch {
                if let Some(found) =
                    timestamps::first_at_or_after(bytes, timestamp, head.log_start)?
                {
                    return Ok(Some(found));
                }
            }
        }
        Ok(None)
    }

    async fn max_timestamp(&self, partition: &TopicPartition) -> Result<Option<TimestampOffset>> {
        let dir = self.partition_dir(partition).await?;
        let head = self.heads.read(&dir).await?.head;
        let entries = self.live_entries(&dir, &head).await?;
        // Index entries give each batch's maximum, except for a batch cut by the log start,
        // whose remaining records must be looked at; ties go to the earliest record.
        let mut best: Option<(TimestampOffset, &Entry)> = None;
        for entry in &entries {
            let candidate = if entry.base < head.log_start {
                let batch = self.load(std::slice::from_ref(entry)).await?;
                match batch.first().map(|bytes| timestamps::max_in(bytes, head.log_start)) {
                    Some(found) => match found? {
                        Some(found) => found,
                        None => continue,
                    },
                    None => continue,
                }
            } else {
                TimestampOffset { timestamp: entry.max_timestamp, offset: entry.base }
            };
            if best.as_ref().is_none_or(|(found, _)| candidate.timestamp > found.timestamp) {
                best = Some((candidate, entry));
            }
        }
        let Some((_, entry)) = best else { return Ok(None) };
        let batch = self.load(std::slice::from_ref(entry)).await?;
        match batch.first() {
            Some(bytes) => timestamps::max_in(bytes, head.log_start),
            None => Ok(None),
        }
    }

    async fn aborted_transactions(
        &self,
        partition: &TopicPartition,
        from: i64,
        to: i64,
    ) -> Result<Vec<AbortedTransaction>> {
        let dir = self.partition_dir(partition).await?;
        // The read this list goes with refreshed the cache (a fetch reads first).
        Ok(self.latest(&dir).await?.aborted_between(from, to))
    }

    async fn batch_sizes(&self, partition: &TopicPartition) -> Result<Vec<(i64, u64)>> {
        let dir = self.partition_dir(partition).await?;
        let head = self.heads.read(&dir).await?.head;
        let entries = self.live_entries(&dir, &head).await?;
        Ok(entries.iter().map(|entry| (entry.base, entry.len)).collect())
    }

    async fn producers(&self, partition: &TopicPartition) -> Result<Vec<ProducerSnapshot>> {
        let dir = self.partition_dir(partition).await?;
        let head = self.heads.read(&dir).await?.head;
        Ok(head
            .producer_ids()
            .filter_map(|(id, open)| head.producer(id).map(|entry| entry.snapshot(id, open)))
            .collect())
    }

    async fn delete_records(&self, partition: &TopicPartition, before: i64) -> Result<i64> {
        let dir = self.partition_dir(partition).await?;
        let (log_start, dropped) = self
            .heads
            .update(&dir, |head| {
                if before > head.high {
                    return Err(StorageError::OffsetOutOfRange {
                        offset: before,
                        log_start: head.log_start,
                        high: head.high,
                    });
                }
                if before <= head.log_start {
                    return Ok(Change::Keep((head.log_start, Vec::new())));
                }
                let dropped = head.truncate_before(before);
                Ok(Change::Write((before, dropped)))
            })
            .await?;
        self.heads.delete_segments(&dir, &dropped).await;
        Ok(log_start)
    }

    async fn remove_records(&self, partition: &TopicPartition, offsets: &[i64]) -> Result<u64> {
        let dir = self.partition_dir(partition).await?;
        self.remove(&dir, offsets).await
    }
}
