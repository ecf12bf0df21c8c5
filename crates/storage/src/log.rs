use std::future::Future;
use std::pin::Pin;

use async_trait::async_trait;
use bytes::Bytes;

use crate::{Batch, Result, TopicPartition};

/// The bounds of a partition log.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Watermarks {
    /// First offset a consumer may read (moved by DeleteRecords and retention).
    pub log_start: i64,
    /// Offset the next appended record will get.
    pub high: i64,
    /// First offset of the oldest open transaction, or `high` when none is open: what
    /// read_committed consumers may read up to.
    pub last_stable: i64,
}

/// Where an append landed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AppendResult {
    /// Offset of the first record appended (for a duplicate: where it was appended before).
    pub base_offset: i64,
    pub log_start: i64,
    /// True when every batch was a duplicate of one already appended (an idempotent retry).
    pub duplicate: bool,
}

/// Whole batches read from a partition, and the watermarks seen by the same read.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ReadResult {
    pub watermarks: Watermarks,
    /// Stored batches (base offsets already assigned) in offset order.
    pub batches: Vec<Bytes>,
}

impl ReadResult {
    pub fn byte_len(&self) -> usize {
        self.batches.iter().map(Bytes::len).sum()
    }
}

/// An aborted transaction on a partition: read_committed consumers drop this producer's
/// records from `first_offset` up to the abort marker at `last_offset`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AbortedTransaction {
    pub producer_id: i64,
    pub first_offset: i64,
    pub last_offset: i64,
}

/// What a partition knows of one producer (DescribeProducers).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProducerSnapshot {
    pub producer_id: i64,
    pub epoch: i16,
    /// Sequence of the producer's last record here (-1 if none is remembered).
    pub last_sequence: i32,
    /// First offset of its open transaction here, if any.
    pub open_transaction: Option<i64>,
}

/// An append queued by [`LogStore::queue_append`]: its order is fixed, its outcome to come.
pub type QueuedAppend = Pin<Box<dyn Future<Output = Result<AppendResult>> + Send + 'static>>;

/// A record found by timestamp.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TimestampOffset {
    pub timestamp: i64,
    pub offset: i64,
}

/// Partition logs.
#[async_trait]
pub trait LogStore: Send + Sync {
    /// Appends validated batches to one partition, atomically and in order: they get consecutive
    /// offsets starting at the high watermark, concurrent appends (from any broker) never
    /// overlap or leave gaps, and once this returns the batches survive a crash.
    /// `NotFound` if the partition does not exist.
    ///
    /// Transactional batches open a transaction on the partition and control batches (markers)
    /// end it, as [`crate::producers::plan_append`] plans; the open ones bound the last stable
    /// offset and the aborted ones are kept for [`LogStore::aborted_transactions`]. A marker's
    /// base offset, as handed in, is a bound: it ends only a transaction begun below it (or any,
    /// if its epoch is newer), so a late copy leaves the producer's next transaction open.
    ///
    /// Batches with a producer id are checked with [`crate::producers::check`] against the
    /// partition's stored entry for that producer, in the same atomic step as the append, and
    /// the entry is updated with [`crate::producers::record`]. A duplicate is not appended again
    /// (its original offset is returned); `Fenced` or `OutOfOrderSequence` append nothing of
    /// the call.
    async fn append(&self, partition: &TopicPartition, batches: Vec<Batch>)
        -> Result<AppendResult>;

    /// [`LogStore::append`] in two steps, for callers that pipeline appends: when this
    /// returns, the append's place in its partition's order is fixed (an append queued later
    /// lands after it), and the returned future resolves when the append is done, with what
    /// `append` would have returned. A connection queues its produce requests in the order
    /// they arrived and awaits them together, so an engine that coalesces concurrent appends
    /// into one write (the S3 engine's flushes) stores a pipelining client's requests in one
    /// write instead of one each. The default appends before it returns.
    async fn queue_append(&self, partition: &TopicPartition, batches: Vec<Batch>) -> QueuedAppend {
        let result = self.append(partition, batches).await;
        Box::pin(std::future::ready(result))
    }

    /// Reads whole batches that contain offsets at or after `offset`: the first batch is always
    /// returned if there is one (even when larger than `max_bytes`), later ones only while the
    /// total stays within `max_bytes`. An offset outside the watermarks reads nothing; callers
    /// compare it with the returned watermarks.
    async fn read(
        &self,
        partition: &TopicPartition,
        offset: i64,
        max_bytes: usize,
    ) -> Result<ReadResult>;

    /// The partition's watermarks.
    async fn watermarks(&self, partition: &TopicPartition) -> Result<Watermarks>;

    /// The earliest record with a timestamp at or after `timestamp`, if any.
    async fn offset_for_time(
        &self,
        partition: &TopicPartition,
        timestamp: i64,
    ) -> Result<Option<TimestampOffset>>;

    /// The record with the largest timestamp (the earliest such record on ties), if any.
    async fn max_timestamp(&self, partition: &TopicPartition) -> Result<Option<TimestampOffset>>;

    /// Aborted transactions that overlap `from..to` (their marker at or after `from`, their
    /// first record before `to`), ordered by first offset: the list a read_committed fetch of
    /// that range returns.
    async fn aborted_transactions(
        &self,
        partition: &TopicPartition,
        from: i64,
        to: i64,
    ) -> Result<Vec<AbortedTransaction>>;

    /// `(base offset, size in bytes)` of every batch holding offsets at or after the log start,
    /// in offset order: what `retention.bytes` is enforced from.
    async fn batch_sizes(&self, partition: &TopicPartition) -> Result<Vec<(i64, u64)>>;

    /// Producers this partition keeps state for, ordered by producer id.
    async fn producers(&self, partition: &TopicPartition) -> Result<Vec<ProducerSnapshot>>;

    /// Moves the log start to `before` (records below it become unreadable) and returns the
    /// new log start. A `before` below the current start is a no-op; above the high watermark
    /// is `OffsetOutOfRange`.
    async fn delete_records(&self, partition: &TopicPartition, before: i64) -> Result<i64>;

    /// Removes the records at `offsets` (ascending) for compaction: the other records of
    /// their batches keep their offsets, timestamps, keys, values and headers, and each batch
    /// keeps its base offset, last offset delta and codec; a batch left without records
    /// disappears. Watermarks do not change. Offsets below the log start or already removed
    /// are skipped; an offset at or above the last stable offset is `InvalidArgument` and
    /// removes nothing. Returns how many records were removed.
    async fn remove_records(&self, partition: &TopicPartition, offsets: &[i64]) -> Result<u64>;
}
