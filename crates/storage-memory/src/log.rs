use std::collections::{BTreeMap, HashMap, VecDeque};
use std::sync::{Arc, Mutex};

use async_trait::async_trait;
use bytes::{Bytes, BytesMut};
use skiff_protocol::batch::set_base_offset;
use skiff_storage::compaction::{self, Rewrite};
use skiff_storage::producers::{plan_append, ProducerEntry};
use skiff_storage::{
    timestamps, AbortedTransaction, AppendResult, Batch, LogStore, ProducerSnapshot, ReadResult,
    Result, StorageError, TimestampOffset, TopicPartition, Watermarks,
};

use crate::{lock, MemoryEngine};

/// One partition: its batches in offset order and its watermarks.
#[derive(Default)]
pub(crate) struct PartitionLog {
    batches: VecDeque<StoredBatch>,
    log_start: i64,
    high: i64,
    /// Idempotent producers' sequence state, by producer id.
    producers: HashMap<i64, ProducerEntry>,
    /// Open transactions: producer id -> first offset.
    open_transactions: BTreeMap<i64, i64>,
    /// Aborted transactions in marker order (so also ordered by last offset).
    aborted: Vec<AbortedTransaction>,
}

struct StoredBatch {
    last_offset: i64,
    max_timestamp: i64,
    bytes: Bytes,
}

impl PartitionLog {
    fn watermarks(&self) -> Watermarks {
        let last_stable = self.open_transactions.values().copied().min().unwrap_or(self.high);
        Watermarks { log_start: self.log_start, high: self.high, last_stable }
    }

    /// Index of the first batch holding an offset `>= offset`.
    fn first_batch_from(&self, offset: i64) -> usize {
        self.batches.partition_point(|batch| batch.last_offset < offset)
    }

    fn append(&mut self, batches: Vec<Batch>) -> Result<AppendResult> {
        let plan = plan_append(
            batches,
            self.high,
            |producer| Ok(self.producers.get(&producer).cloned()),
            |producer| Ok(self.open_transactions.get(&producer).copied()),
        )?;
        for (batch, base_offset) in plan.appends {
            // One copy per batch: the request buffer is shared and the offset must change.
            let mut bytes = BytesMut::from(&batch.bytes[..]);
            set_base_offset(&mut bytes, base_offset);
            self.batches.push_back(StoredBatch {
                last_offset: base_offset + i64::from(batch.header.last_offset_delta),
                max_timestamp: batch.header.max_timestamp,
                bytes: bytes.freeze(),
            });
        }
        self.producers.extend(plan.entries);
        self.open_transactions.extend(plan.opened);
        for ended in plan.ended {
            self.open_transactions.remove(&ended.producer_id);
            if ended.aborted {
                self.aborted.push(AbortedTransaction {
                    producer_id: ended.producer_id,
                    first_offset: ended.first_offset,
                    last_offset: ended.last_offset,
                });
            }
        }
        self.high = plan.high;
        Ok(AppendResult {
            base_offset: plan.base_offset,
            log_start: self.log_start,
            duplicate: plan.duplicate,
        })
    }

    fn read(&self, offset: i64, max_bytes: usize) -> ReadResult {
        let mut result = ReadResult { watermarks: self.watermarks(), batches: Vec::new() };
        if offset < self.log_start || offset >= self.high {
            return result;
        }
        let mut total = 0;
        for batch in self.batches.range(self.first_batch_from(offset)..) {
            if !result.batches.is_empty() && total + batch.bytes.len() > max_bytes {
                break;
            }
            total += batch.bytes.len();
            result.batches.push(batch.bytes.clone());
        }
        result
    }

    fn delete_before(&mut self, before: i64) -> Result<i64> {
        if before > self.high {
            return Err(StorageError::OffsetOutOfRange {
                offset: before,
                log_start: self.log_start,
                high: self.high,
            });
        }
        if before > self.log_start {
            self.log_start = before;
            while self.batches.front().is_some_and(|batch| batch.last_offset < before) {
                self.batches.pop_front();
            }
            self.aborted.retain(|aborted| aborted.last_offset >= before);
        }
        Ok(self.log_start)
    }
}

impl PartitionLog {
    /// Compaction: rewrites the batches holding `offsets`, dropping those left empty.
    fn remove(&mut self, offsets: &[i64]) -> Result<u64> {
        let offsets = compaction::removable(offsets, self.watermarks())?;
        let mut removed = 0;
        let mut kept = VecDeque::with_capacity(self.batches.len());
        for batch in self.batches.drain(..) {
            match compaction::rewrite_batch(&batch.bytes, offsets)? {
                Rewrite::Unchanged => kept.push_back(batch),
                Rewrite::Replaced { bytes, removed: count } => {
                    removed += count;
                    kept.push_back(StoredBatch { bytes, ..batch });
                }
                Rewrite::Emptied { removed: count } => removed += count,
            }
        }
        self.batches = kept;
        Ok(removed)
    }
}

impl MemoryEngine {
    fn partition(&self, partition: &TopicPartition) -> Result<Arc<Mutex<PartitionLog>>> {
        let topics = self.read_topics();
        usize::try_from(partition.partition)
            .ok()
            .and_then(|index| topics.get(&partition.topic)?.partitions.get(index).cloned())
            .ok_or_else(|| StorageError::NotFound(format!("partition {partition}")))
    }
}

#[async_trait]
impl LogStore for MemoryEngine {
    async fn append(
        &self,
        partition: &TopicPartition,
        batches: Vec<Batch>,
    ) -> Result<AppendResult> {
        let log = self.partition(partition)?;
        let result = lock(&log).append(batches);
        result
    }

    async fn read(
        &self,
        partition: &TopicPartition,
        offset: i64,
        max_bytes: usize,
    ) -> Result<ReadResult> {
        let log = self.partition(partition)?;
        let result = lock(&log).read(offset, max_bytes);
        Ok(result)
    }

    async fn watermarks(&self, partition: &TopicPartition) -> Result<Watermarks> {
        let log = self.partition(partition)?;
        let marks = lock(&log).watermarks();
        Ok(marks)
    }

    async fn offset_for_time(
        &self,
        partition: &TopicPartition,
        timestamp: i64,
    ) -> Result<Option<TimestampOffset>> {
        let log = self.partition(partition)?;
        let (candidates, log_start): (Vec<Bytes>, i64) = {
            let log = lock(&log);
            let candidates = log
                .batches
                .iter()
                .filter(|batch| {
                    batch.max_timestamp >= timestamp && batch.last_offset >= log.log_start
                })
                .map(|batch| batch.bytes.clone())
                .collect();
            (candidates, log.log_start)
        };
        for batch in candidates {
            if let Some(found) = timestamps::first_at_or_after(&batch, timestamp, log_start)? {
                return Ok(Some(found));
            }
        }
        Ok(None)
    }

    async fn max_timestamp(&self, partition: &TopicPartition) -> Result<Option<TimestampOffset>> {
        let log = self.partition(partition)?;
        let (live, log_start): (Vec<(i64, Bytes)>, i64) = {
            let log = lock(&log);
            let first = log.first_batch_from(log.log_start);
            let live = log
                .batches
                .range(first..)
                .map(|batch| (batch.max_timestamp, batch.bytes.clone()))
                .collect();
            (live, log.log_start)
        };
        // Headers give each batch's maximum, except for a batch cut by the log start, whose
        // remaining records must be looked at; ties go to the earliest record.
        let mut best: Option<(TimestampOffset, Bytes)> = None;
        for (index, (max_timestamp, bytes)) in live.into_iter().enumerate() {
            let candidate = if index == 0 {
                match timestamps::max_in(&bytes, log_start)? {
                    Some(found) => found,
                    None => continue,
                }
            } else {
                let offset = skiff_protocol::batch::base_offset(&bytes).unwrap_or(i64::MAX);
                TimestampOffset { timestamp: max_timestamp, offset }
            };
            if best.as_ref().is_none_or(|(found, _)| candidate.timestamp > found.timestamp) {
                best = Some((candidate, bytes));
            }
        }
        match best {
            Some((_, bytes)) => timestamps::max_in(&bytes, log_start),
            None => Ok(None),
        }
    }

    async fn aborted_transactions(
        &self,
        partition: &TopicPartition,
        from: i64,
        to: i64,
    ) -> Result<Vec<AbortedTransaction>> {
        let log = self.partition(partition)?;
        let log = lock(&log);
        let mut found: Vec<AbortedTransaction> = log
            .aborted
            .iter()
            .filter(|aborted| aborted.last_offset >= from && aborted.first_offset < to)
            .copied()
            .collect();
        found.sort_by_key(|aborted| aborted.first_offset);
        Ok(found)
    }

    async fn batch_sizes(&self, partition: &TopicPartition) -> Result<Vec<(i64, u64)>> {
        let log = self.partition(partition)?;
        let log = lock(&log);
        let first = log.first_batch_from(log.log_start);
        Ok(log
            .batches
            .range(first..)
            .map(|batch| {
                let base =
                    skiff_protocol::batch::base_offset(&batch.bytes).unwrap_or(batch.last_offset);
                (base, batch.bytes.len() as u64)
            })
            .collect())
    }

    async fn producers(&self, partition: &TopicPartition) -> Result<Vec<ProducerSnapshot>> {
        let log = self.partition(partition)?;
        let log = lock(&log);
        let mut found: Vec<ProducerSnapshot> = log
            .producers
            .iter()
            .map(|(id, entry)| entry.snapshot(*id, log.open_transactions.get(id).copied()))
            .collect();
        found.sort_by_key(|snapshot| snapshot.producer_id);
        Ok(found)
    }

    async fn delete_records(&self, partition: &TopicPartition, before: i64) -> Result<i64> {
        let log = self.partition(partition)?;
        let result = lock(&log).delete_before(before);
        result
    }

    async fn remove_records(&self, partition: &TopicPartition, offsets: &[i64]) -> Result<u64> {
        let log = self.partition(partition)?;
        let result = lock(&log).remove(offsets);
        result
    }
}
