//! `LogStore`: partition logs as one row per record batch.
//!
//! Appends run on the writer thread: offsets are assigned from the `partitions.high` read inside
//! the group's `BEGIN IMMEDIATE` transaction, never from memory, so brokers sharing the file get
//! consecutive, non-overlapping offsets. Batches are stored as produced with only the base offset
//! rewritten (bytes 0..8, outside the CRC); nothing is decoded except for timestamp searches.

use async_trait::async_trait;
use bytes::Bytes;
use rusqlite::{params, Connection, OptionalExtension, Row};
use skiff_protocol::batch::set_base_offset;
use skiff_storage::compaction::{self, Rewrite};
use skiff_storage::producers::{plan_append, AppendPlan, ProducerEntry};
use skiff_storage::{
    timestamps, AbortedTransaction, AppendResult, Batch, LogStore, ProducerSnapshot, ReadResult,
    Result, StorageError, TimestampOffset, TopicPartition, Watermarks,
};
use tracing::debug;

use crate::error::db_error;
use crate::sql;
use crate::transaction::read_snapshot;
use crate::SqliteEngine;

/// A partition row: the topic's internal key and the watermarks.
struct StoredPartition {
    topic_key: i64,
    watermarks: Watermarks,
}

fn find_partition(conn: &Connection, partition: &TopicPartition) -> Result<StoredPartition> {
    let row = conn
        .prepare_cached(sql::PARTITION_BY_NAME)
        .and_then(|mut statement| {
            statement
                .query_row(params![partition.topic, partition.partition], |row| {
                    Ok(StoredPartition {
                        topic_key: row.get(0)?,
                        watermarks: {
                            let high: i64 = row.get(2)?;
                            let open: Option<i64> = row.get(3)?;
                            Watermarks {
                                log_start: row.get(1)?,
                                high,
                                last_stable: open.unwrap_or(high),
                            }
                        },
                    })
                })
                .optional()
        })
        .map_err(db_error)?;
    row.ok_or_else(|| StorageError::NotFound(format!("partition {partition}")))
}

fn blob(row: &Row<'_>, column: usize) -> Result<Bytes> {
    row.get::<_, Vec<u8>>(column).map(Bytes::from).map_err(db_error)
}

fn append(
    conn: &Connection,
    partition: &TopicPartition,
    batches: Vec<Batch>,
) -> Result<AppendResult> {
    let stored = find_partition(conn, partition)?;
    let key = (stored.topic_key, partition.partition);
    for batch in &batches {
        last_offset(partition, stored.watermarks.high, batch)?;
    }
    let plan = plan_append(
        batches,
        stored.watermarks.high,
        |producer| producer_entry(conn, key, producer),
        |producer| open_transaction(conn, key, producer),
    )?;
    let mut insert = conn.prepare_cached(sql::BATCH_INSERT).map_err(db_error)?;
    let mut bytes = Vec::new();
    for (batch, base_offset) in &plan.appends {
        let last = last_offset(partition, *base_offset, batch)?;
        bytes.clear();
        bytes.extend_from_slice(&batch.bytes);
        set_base_offset(&mut bytes, *base_offset);
        insert
            .execute(params![key.0, key.1, base_offset, last, batch.header.max_timestamp, bytes])
            .map_err(db_error)?;
    }
    let mut upsert = conn.prepare_cached(sql::PRODUCER_UPSERT).map_err(db_error)?;
    for (producer, entry) in &plan.entries {
        upsert.execute(params![key.0, key.1, producer, entry.encode()]).map_err(db_error)?;
    }
    record_transactions(conn, key, &plan)?;
    if plan.high != stored.watermarks.high {
        conn.prepare_cached(sql::PARTITION_SET_HIGH)
            .and_then(|mut update| update.execute(params![key.0, key.1, plan.high]))
            .map_err(db_error)?;
    }
    Ok(AppendResult {
        base_offset: plan.base_offset,
        log_start: stored.watermarks.log_start,
        duplicate: plan.duplicate,
    })
}

/// The first offset of a producer's open transaction on one partition.
fn open_transaction(
    conn: &Connection,
    (topic_key, partition): (i64, i32),
    producer: i64,
) -> Result<Option<i64>> {
    conn.prepare_cached(sql::OPEN_TRANSACTION_GET)
        .and_then(|mut statement| {
            statement
                .query_row(params![topic_key, partition, producer], |row| row.get(0))
                .optional()
        })
        .map_err(db_error)
}

/// Stores the transactions an append opened and ended.
fn record_transactions(conn: &Connection, key: (i64, i32), plan: &AppendPlan) -> Result<()> {
    for (producer, first) in &plan.opened {
        conn.prepare_cached(sql::OPEN_TRANSACTION_INSERT)
            .and_then(|mut statement| statement.execute(params![key.0, key.1, producer, first]))
            .map_err(db_error)?;
    }
    for ended in &plan.ended {
        conn.prepare_cached(sql::OPEN_TRANSACTION_DELETE)
            .and_then(|mut statement| statement.execute(params![key.0, key.1, ended.producer_id]))
            .map_err(db_error)?;
        if ended.aborted {
            conn.prepare_cached(sql::ABORTED_INSERT)
                .and_then(|mut statement| {
                    statement.execute(params![
                        key.0,
                        key.1,
                        ended.producer_id,
                        ended.first_offset,
                        ended.last_offset
                    ])
                })
                .map_err(db_error)?;
        }
    }
    Ok(())
}

fn aborted_between(
    conn: &Connection,
    partition: &TopicPartition,
    from: i64,
    to: i64,
) -> Result<Vec<AbortedTransaction>> {
    let stored = find_partition(conn, partition)?;
    let mut statement = conn.prepare_cached(sql::ABORTED_BETWEEN).map_err(db_error)?;
    let rows = statement
        .query_map(params![stored.topic_key, partition.partition, from, to], |row| {
            Ok(AbortedTransaction {
                producer_id: row.get(0)?,
                first_offset: row.get(1)?,
                last_offset: row.get(2)?,
            })
        })
        .map_err(db_error)?;
    rows.map(|row| row.map_err(db_error)).collect()
}

fn batch_sizes(conn: &Connection, partition: &TopicPartition) -> Result<Vec<(i64, u64)>> {
    let stored = find_partition(conn, partition)?;
    let mut statement = conn.prepare_cached(sql::BATCH_SIZES).map_err(db_error)?;
    let key = params![stored.topic_key, partition.partition, stored.watermarks.log_start];
    let rows = statement
        .query_map(key, |row| Ok((row.get::<_, i64>(0)?, row.get::<_, i64>(1)?)))
        .map_err(db_error)?;
    rows.map(|row| row.map(|(base, size)| (base, size.max(0) as u64)).map_err(db_error)).collect()
}

fn producers(conn: &Connection, partition: &TopicPartition) -> Result<Vec<ProducerSnapshot>> {
    let stored = find_partition(conn, partition)?;
    let mut statement = conn.prepare_cached(sql::PRODUCERS_OF_PARTITION).map_err(db_error)?;
    let rows = statement
        .query_map(params![stored.topic_key, partition.partition], |row| {
            Ok((row.get::<_, i64>(0)?, row.get::<_, Vec<u8>>(1)?, row.get::<_, Option<i64>>(2)?))
        })
        .map_err(db_error)?;
    let mut found = Vec::new();
    for row in rows {
        let (producer_id, entry, open_transaction) = row.map_err(db_error)?;
        let entry = ProducerEntry::decode(&entry)?;
        found.push(entry.snapshot(producer_id, open_transaction));
    }
    Ok(found)
}

/// The stored sequence state of one producer on one partition.
fn producer_entry(
    conn: &Connection,
    (topic_key, partition): (i64, i32),
    producer: i64,
) -> Result<Option<ProducerEntry>> {
    let entry: Option<Vec<u8>> = conn
        .prepare_cached(sql::PRODUCER_GET)
        .and_then(|mut statement| {
            statement
                .query_row(params![topic_key, partition, producer], |row| row.get(0))
                .optional()
        })
        .map_err(db_error)?;
    entry.map(|bytes| ProducerEntry::decode(&bytes)).transpose()
}

/// The offset of `batch`'s last record when it starts at `base`.
fn last_offset(partition: &TopicPartition, base: i64, batch: &Batch) -> Result<i64> {
    let delta = batch.header.last_offset_delta;
    if delta < 0 {
        return Err(StorageError::InvalidArgument(format!(
            "batch for {partition} has negative last offset delta {delta}"
        )));
    }
    base.checked_add(i64::from(delta))
        .filter(|last| *last < i64::MAX)
        .ok_or_else(|| StorageError::InvalidArgument(format!("offsets of {partition} exhausted")))
}

/// Whole batches from `offset` on, within `max_bytes` (the first always), in one statement.
fn read(
    conn: &Connection,
    partition: &TopicPartition,
    offset: i64,
    max_bytes: usize,
) -> Result<ReadResult> {
    let stored = find_partition(conn, partition)?;
    let marks = stored.watermarks;
    let mut result = ReadResult { watermarks: marks, batches: Vec::new() };
    if offset < marks.log_start || offset >= marks.high {
        return Ok(result);
    }
    let mut statement = conn.prepare_cached(sql::BATCHES_FROM).map_err(db_error)?;
    let mut rows = statement
        .query(params![stored.topic_key, partition.partition, offset])
        .map_err(db_error)?;
    let mut total = 0usize;
    while let Some(row) = rows.next().map_err(db_error)? {
        let length: i64 = row.get(0).map_err(db_error)?;
        let length = usize::try_from(length).unwrap_or(usize::MAX);
        if !result.batches.is_empty() && total.saturating_add(length) > max_bytes {
            break;
        }
        total = total.saturating_add(length);
        result.batches.push(blob(row, 1)?);
    }
    Ok(result)
}

/// Candidate batches come from SQL by `max_timestamp`; the record is found by decoding them.
fn offset_for_time(
    conn: &Connection,
    partition: &TopicPartition,
    timestamp: i64,
) -> Result<Option<TimestampOffset>> {
    let stored = find_partition(conn, partition)?;
    let log_start = stored.watermarks.log_start;
    let mut statement = conn.prepare_cached(sql::BATCHES_REACHING_TIME).map_err(db_error)?;
    let mut rows = statement
        .query(params![stored.topic_key, partition.partition, log_start, timestamp])
        .map_err(db_error)?;
    while let Some(row) = rows.next().map_err(db_error)? {
        let found = timestamps::first_at_or_after(&blob(row, 0)?, timestamp, log_start)?;
        if found.is_some() {
            return Ok(found);
        }
    }
    Ok(None)
}

/// Candidates arrive by header `max_timestamp`, largest first; decoding stops once no remaining
/// batch can beat what was found (a batch cut by the log start, or holding only control records,
/// may hold less than its header says). Usually one batch is loaded.
fn max_timestamp(conn: &Connection, partition: &TopicPartition) -> Result<Option<TimestampOffset>> {
    let stored = find_partition(conn, partition)?;
    let log_start = stored.watermarks.log_start;
    let mut statement = conn.prepare_cached(sql::BATCHES_BY_MAX_TIMESTAMP).map_err(db_error)?;
    let mut rows = statement
        .query(params![stored.topic_key, partition.partition, log_start])
        .map_err(db_error)?;
    let mut best: Option<TimestampOffset> = None;
    while let Some(row) = rows.next().map_err(db_error)? {
        let header_max: i64 = row.get(0).map_err(db_error)?;
        if best.is_some_and(|best| header_max < best.timestamp) {
            break;
        }
        let row_id: i64 = row.get(1).map_err(db_error)?;
        let bytes = batch_bytes(conn, row_id)?;
        let Some(found) = timestamps::max_in(&bytes, log_start)? else { continue };
        let better = best.is_none_or(|best| {
            found.timestamp > best.timestamp
                || (found.timestamp == best.timestamp && found.offset < best.offset)
        });
        if better {
            best = Some(found);
        }
    }
    Ok(best)
}

fn batch_bytes(conn: &Connection, row_id: i64) -> Result<Bytes> {
    conn.prepare_cached(sql::BATCH_BYTES)
        .and_then(|mut statement| {
            statement.query_row(params![row_id], |row| row.get::<_, Vec<u8>>(0))
        })
        .map(Bytes::from)
        .map_err(db_error)
}

fn delete_records(conn: &Connection, partition: &TopicPartition, before: i64) -> Result<i64> {
    let stored = find_partition(conn, partition)?;
    let Watermarks { log_start, high, .. } = stored.watermarks;
    if before > high {
        return Err(StorageError::OffsetOutOfRange { offset: before, log_start, high });
    }
    if before <= log_start {
        return Ok(log_start);
    }
    let key = params![stored.topic_key, partition.partition, before];
    for statement in
        [sql::PARTITION_SET_LOG_START, sql::BATCHES_DELETE_BEFORE, sql::ABORTED_DELETE_BEFORE]
    {
        conn.prepare_cached(statement)
            .and_then(|mut prepared| prepared.execute(key))
            .map_err(db_error)?;
    }
    Ok(before)
}

/// Compaction: rewrites (or deletes) the batches holding `offsets`, in the writer's transaction.
fn remove_records(conn: &Connection, partition: &TopicPartition, offsets: &[i64]) -> Result<u64> {
    let stored = find_partition(conn, partition)?;
    let offsets = compaction::removable(offsets, stored.watermarks)?;
    let (Some(first), Some(last)) = (offsets.first(), offsets.last()) else { return Ok(0) };
    let candidates: Vec<(i64, i64, i64)> = conn
        .prepare_cached(sql::BATCHES_BETWEEN)
        .and_then(|mut statement| {
            let key = params![stored.topic_key, partition.partition, first, last];
            let rows =
                statement.query_map(key, |row| Ok((row.get(0)?, row.get(1)?, row.get(2)?)))?;
            rows.collect()
        })
        .map_err(db_error)?;
    let mut removed = 0;
    for (row_id, base, last) in candidates {
        if compaction::offsets_within(offsets, base, last).is_empty() {
            continue;
        }
        let (statement, bytes) =
            match compaction::rewrite_batch(&batch_bytes(conn, row_id)?, offsets)? {
                Rewrite::Unchanged => continue,
                Rewrite::Replaced { bytes, removed: count } => {
                    removed += count;
                    (sql::BATCH_REPLACE_BYTES, Some(bytes))
                }
                Rewrite::Emptied { removed: count } => {
                    removed += count;
                    (sql::BATCH_DELETE, None)
                }
            };
        conn.prepare_cached(statement)
            .and_then(|mut prepared| match &bytes {
                Some(bytes) => prepared.execute(params![row_id, &bytes[..]]),
                None => prepared.execute(params![row_id]),
            })
            .map_err(db_error)?;
    }
    Ok(removed)
}

#[async_trait]
impl LogStore for SqliteEngine {
    async fn append(
        &self,
        partition: &TopicPartition,
        batches: Vec<Batch>,
    ) -> Result<AppendResult> {
        let target = partition.clone();
        let result = self.writer.write(move |conn| append(conn, &target, batches)).await?;
        debug!(
            topic = partition.topic,
            partition = partition.partition,
            offset = result.base_offset,
            "appended"
        );
        Ok(result)
    }

    async fn read(
        &self,
        partition: &TopicPartition,
        offset: i64,
        max_bytes: usize,
    ) -> Result<ReadResult> {
        let partition = partition.clone();
        let work = move |conn: &Connection| read(conn, &partition, offset, max_bytes);
        self.readers.read(move |conn| read_snapshot(conn, work)).await
    }

    async fn watermarks(&self, partition: &TopicPartition) -> Result<Watermarks> {
        let partition = partition.clone();
        let found = self.readers.read(move |conn| find_partition(conn, &partition)).await?;
        Ok(found.watermarks)
    }

    async fn offset_for_time(
        &self,
        partition: &TopicPartition,
        timestamp: i64,
    ) -> Result<Option<TimestampOffset>> {
        let partition = partition.clone();
        let work = move |conn: &Connection| offset_for_time(conn, &partition, timestamp);
        self.readers.read(move |conn| read_snapshot(conn, work)).await
    }

    async fn max_timestamp(&self, partition: &TopicPartition) -> Result<Option<TimestampOffset>> {
        let partition = partition.clone();
        let work = move |conn: &Connection| max_timestamp(conn, &partition);
        self.readers.read(move |conn| read_snapshot(conn, work)).await
    }

    async fn aborted_transactions(
        &self,
        partition: &TopicPartition,
        from: i64,
        to: i64,
    ) -> Result<Vec<AbortedTransaction>> {
        let target = partition.clone();
        self.readers.read(move |conn| aborted_between(conn, &target, from, to)).await
    }

    async fn batch_sizes(&self, partition: &TopicPartition) -> Result<Vec<(i64, u64)>> {
        let target = partition.clone();
        self.readers.read(move |conn| read_snapshot(conn, |conn| batch_sizes(conn, &target))).await
    }

    async fn producers(&self, partition: &TopicPartition) -> Result<Vec<ProducerSnapshot>> {
        let target = partition.clone();
        self.readers.read(move |conn| read_snapshot(conn, |conn| producers(conn, &target))).await
    }

    async fn delete_records(&self, partition: &TopicPartition, before: i64) -> Result<i64> {
        let partition = partition.clone();
        self.writer.write(move |conn| delete_records(conn, &partition, before)).await
    }

    async fn remove_records(&self, partition: &TopicPartition, offsets: &[i64]) -> Result<u64> {
        let partition = partition.clone();
        let offsets = offsets.to_vec();
        self.writer.write(move |conn| remove_records(conn, &partition, &offsets)).await
    }
}
