//! `LogStore`: reads rebuild record batches from rows; appends are in `append`.
//!
//! A fetch is two statements per partition whatever its size: the watermarks (with the topic's
//! `compression.type`), then one `fetch.sql` returning the chosen batches with their records in
//! offset order. Batches are budgeted by their stored size in SQL, then by their re-encoded size
//! here, so `max_bytes` holds exactly (the first batch always comes).

use async_trait::async_trait;
use bytes::Bytes;
use deadpool_postgres::Object;
use skiff_protocol::records::RecordHeader;
use skiff_storage::compaction;
use skiff_storage::producers::ProducerEntry;
use skiff_storage::{
    AbortedTransaction, AppendResult, Batch, LogStore, ProducerSnapshot, ReadResult, Result,
    StorageError, TimestampOffset, TopicPartition, Watermarks,
};
use tokio_postgres::Row;
use tracing::debug;

use crate::codec::{self, BatchFields, Header, RowRecord};
use crate::db;
use crate::error::db_error;
use crate::meta::check_partition;
use crate::sql;
use crate::PostgresEngine;

/// Most batches one fetch statement returns; a read wanting more runs it again from there.
const BATCHES_PER_STATEMENT: i64 = 1000;

/// A partition's watermarks and its topic's `compression.type` override.
struct PartitionRow {
    watermarks: Watermarks,
    compression_type: Option<String>,
}

async fn partition_row(client: &Object, partition: &TopicPartition) -> Result<PartitionRow> {
    check_partition(partition)?;
    let (topic, number) = (partition.topic.as_str(), partition.partition);
    let row = db::query_opt(client, sql::LOG_PARTITION_GET, &[&topic, &number]).await?;
    let row = row.ok_or_else(|| StorageError::NotFound(format!("partition {partition}")))?;
    let high: i64 = row.try_get(1).map_err(db_error)?;
    let open: Option<i64> = row.try_get(2).map_err(db_error)?;
    Ok(PartitionRow {
        watermarks: Watermarks {
            log_start: row.try_get(0).map_err(db_error)?,
            high,
            last_stable: open.unwrap_or(high),
        },
        compression_type: row.try_get(3).map_err(db_error)?,
    })
}

/// The batch-level columns of a fetch row (0..=10).
fn batch_fields(row: &Row) -> Result<BatchFields> {
    let base_offset: i64 = row.try_get(0).map_err(db_error)?;
    let last_offset: i64 = row.try_get(1).map_err(db_error)?;
    let last_offset_delta = i32::try_from(last_offset - base_offset)
        .map_err(|_| StorageError::Corrupt(format!("batch at {base_offset} spans too much")))?;
    Ok(BatchFields {
        base_offset,
        last_offset_delta,
        attributes: row.try_get(2).map_err(db_error)?,
        producer_id: row.try_get(3).map_err(db_error)?,
        producer_epoch: row.try_get(4).map_err(db_error)?,
        base_sequence: row.try_get(5).map_err(db_error)?,
        leader_epoch: row.try_get(6).map_err(db_error)?,
        base_timestamp: row.try_get(7).map_err(db_error)?,
        max_timestamp: row.try_get(8).map_err(db_error)?,
    })
}

fn bytes(row: &Row, column: usize) -> Result<Option<Bytes>> {
    let value: Option<Vec<u8>> = row.try_get(column).map_err(db_error)?;
    Ok(value.map(Bytes::from))
}

/// The record of a fetch row (columns 11..=15): a stored record, or a control batch's one.
fn row_record(row: &Row, fields: &BatchFields) -> Result<Option<RowRecord>> {
    let offset: Option<i64> = row.try_get(11).map_err(db_error)?;
    let Some(offset) = offset else {
        let key = bytes(row, 9)?;
        let value = bytes(row, 10)?;
        if key.is_none() && value.is_none() {
            return Ok(None);
        }
        let timestamp = fields.base_timestamp;
        return Ok(Some(RowRecord { offset_delta: 0, timestamp, key, value, headers: Vec::new() }));
    };
    let offset_delta = i32::try_from(offset - fields.base_offset)
        .map_err(|_| StorageError::Corrupt(format!("record {offset} outside its batch")))?;
    let headers: Option<Vec<Header>> = row.try_get(15).map_err(db_error)?;
    Ok(Some(RowRecord {
        offset_delta,
        timestamp: row.try_get(12).map_err(db_error)?,
        key: bytes(row, 13)?,
        value: bytes(row, 14)?,
        headers: headers
            .unwrap_or_default()
            .into_iter()
            .map(RecordHeader::try_from)
            .collect::<Result<_>>()?,
    }))
}

/// Groups fetch rows into batches (rows come ordered by batch, then offset).
fn group_rows(rows: &[Row]) -> Result<Vec<(BatchFields, Vec<RowRecord>)>> {
    let mut batches: Vec<(BatchFields, Vec<RowRecord>)> = Vec::new();
    for row in rows {
        let fields = batch_fields(row)?;
        if batches.last().is_none_or(|(last, _)| last.base_offset != fields.base_offset) {
            batches.push((fields, Vec::new()));
        }
        let record = row_record(row, &fields)?;
        if let (Some(record), Some((_, records))) = (record, batches.last_mut()) {
            records.push(record);
        }
    }
    Ok(batches)
}

async fn read(
    client: &Object,
    partition: &TopicPartition,
    offset: i64,
    max_bytes: usize,
) -> Result<ReadResult> {
    let stored = partition_row(client, partition).await?;
    let marks = stored.watermarks;
    let mut result = ReadResult { watermarks: marks, batches: Vec::new() };
    if offset < marks.log_start || offset >= marks.high {
        return Ok(result);
    }
    let (topic, number) = (partition.topic.as_str(), partition.partition);
    let compression = stored.compression_type.as_deref();
    let mut from = offset;
    let mut total = 0usize;
    loop {
        let budget = i64::try_from(max_bytes.saturating_sub(total)).unwrap_or(i64::MAX).max(1);
        let rows = db::query(
            client,
            sql::LOG_FETCH,
            &[&topic, &number, &from, &marks.high, &budget, &BATCHES_PER_STATEMENT],
        )
        .await?;
        let batches = group_rows(&rows)?;
        let complete = batches.len() < BATCHES_PER_STATEMENT as usize;
        for (fields, records) in &batches {
            let codec = codec::codec_for(compression, fields.attributes);
            let encoded = codec::encode(fields, records, codec)?;
            if !result.batches.is_empty() && total.saturating_add(encoded.len()) > max_bytes {
                return Ok(result);
            }
            total = total.saturating_add(encoded.len());
            from = fields.base_offset + i64::from(fields.last_offset_delta) + 1;
            result.batches.push(encoded);
        }
        if complete || batches.is_empty() || total >= max_bytes {
            return Ok(result);
        }
    }
}

fn timestamp_offset(row: Option<Row>) -> Result<Option<TimestampOffset>> {
    row.map(|row| {
        Ok(TimestampOffset {
            offset: row.try_get(0).map_err(db_error)?,
            timestamp: row.try_get(1).map_err(db_error)?,
        })
    })
    .transpose()
}

async fn producers(client: &Object, partition: &TopicPartition) -> Result<Vec<ProducerSnapshot>> {
    partition_row(client, partition).await?;
    let (topic, number) = (partition.topic.as_str(), partition.partition);
    let rows = db::query(client, sql::LOG_PRODUCERS_OF_PARTITION, &[&topic, &number]).await?;
    let mut found = Vec::with_capacity(rows.len());
    for row in rows {
        let entry: &[u8] = row.try_get(1).map_err(db_error)?;
        let entry = ProducerEntry::decode(entry)?;
        let producer_id = row.try_get(0).map_err(db_error)?;
        found.push(entry.snapshot(producer_id, row.try_get(2).map_err(db_error)?));
    }
    Ok(found)
}

async fn delete_records(
    client: &mut Object,
    partition: &TopicPartition,
    before: i64,
) -> Result<i64> {
    check_partition(partition)?;
    let tx = client.transaction().await.map_err(db_error)?;
    let (topic, number) = (partition.topic.as_str(), partition.partition);
    let locked = db::query_opt(&tx, sql::LOG_PARTITION_LOCK, &[&topic, &number]).await?;
    let locked = locked.ok_or_else(|| StorageError::NotFound(format!("partition {partition}")))?;
    let log_start: i64 = locked.try_get(0).map_err(db_error)?;
    let high: i64 = locked.try_get(1).map_err(db_error)?;
    if before > high {
        return Err(StorageError::OffsetOutOfRange { offset: before, log_start, high });
    }
    if before <= log_start {
        return Ok(log_start);
    }
    db::execute(&tx, sql::LOG_DELETE_BEFORE, &[&topic, &number, &before]).await?;
    tx.commit().await.map_err(db_error)?;
    Ok(before)
}

#[async_trait]
impl LogStore for PostgresEngine {
    async fn append(
        &self,
        partition: &TopicPartition,
        batches: Vec<Batch>,
    ) -> Result<AppendResult> {
        self.limited("append", async {
            let result = crate::append::append(self, partition, batches).await?;
            debug!(
                topic = partition.topic,
                partition = partition.partition,
                offset = result.base_offset,
                "appended"
            );
            Ok(result)
        })
        .await
    }

    async fn read(
        &self,
        partition: &TopicPartition,
        offset: i64,
        max_bytes: usize,
    ) -> Result<ReadResult> {
        self.limited("read", async {
            let client = self.client().await?;
            read(&client, partition, offset, max_bytes).await
        })
        .await
    }

    async fn watermarks(&self, partition: &TopicPartition) -> Result<Watermarks> {
        self.limited("watermarks", async {
            let client = self.client().await?;
            Ok(partition_row(&client, partition).await?.watermarks)
        })
        .await
    }

    async fn offset_for_time(
        &self,
        partition: &TopicPartition,
        timestamp: i64,
    ) -> Result<Option<TimestampOffset>> {
        self.limited("offset_for_time", async {
            let client = self.client().await?;
            let log_start = partition_row(&client, partition).await?.watermarks.log_start;
            let (topic, number) = (partition.topic.as_str(), partition.partition);
            let params: db::Params<'_> = &[&topic, &number, &log_start, &timestamp];
            timestamp_offset(db::query_opt(&client, sql::LOG_OFFSET_FOR_TIME, params).await?)
        })
        .await
    }

    async fn max_timestamp(&self, partition: &TopicPartition) -> Result<Option<TimestampOffset>> {
        self.limited("max_timestamp", async {
            let client = self.client().await?;
            let log_start = partition_row(&client, partition).await?.watermarks.log_start;
            let (topic, number) = (partition.topic.as_str(), partition.partition);
            let params: db::Params<'_> = &[&topic, &number, &log_start];
            timestamp_offset(db::query_opt(&client, sql::LOG_MAX_TIMESTAMP, params).await?)
        })
        .await
    }

    async fn batch_sizes(&self, partition: &TopicPartition) -> Result<Vec<(i64, u64)>> {
        let client = self.client().await?;
        let log_start = partition_row(&client, partition).await?.watermarks.log_start;
        let (topic, number) = (partition.topic.as_str(), partition.partition);
        let params: db::Params<'_> = &[&topic, &number, &log_start];
        let mut sizes = Vec::new();
        for row in db::query(&client, sql::LOG_BATCH_SIZES, params).await? {
            let base: i64 = row.try_get(0).map_err(db_error)?;
            let size: i32 = row.try_get(1).map_err(db_error)?;
            sizes.push((base, u64::try_from(size).unwrap_or(0)));
        }
        Ok(sizes)
    }

    async fn aborted_transactions(
        &self,
        partition: &TopicPartition,
        from: i64,
        to: i64,
    ) -> Result<Vec<AbortedTransaction>> {
        self.limited("aborted_transactions", async {
            let client = self.client().await?;
            partition_row(&client, partition).await?;
            let (topic, number) = (partition.topic.as_str(), partition.partition);
            let params: db::Params<'_> = &[&topic, &number, &from, &to];
            let rows = db::query(&client, sql::LOG_ABORTED_BETWEEN, params).await?;
            rows.iter()
                .map(|row| {
                    Ok(AbortedTransaction {
                        producer_id: row.try_get(0).map_err(db_error)?,
                        first_offset: row.try_get(1).map_err(db_error)?,
                        last_offset: row.try_get(2).map_err(db_error)?,
                    })
                })
                .collect()
        })
        .await
    }

    async fn producers(&self, partition: &TopicPartition) -> Result<Vec<ProducerSnapshot>> {
        self.limited("producers", async {
            let client = self.client().await?;
            producers(&client, partition).await
        })
        .await
    }

    async fn delete_records(&self, partition: &TopicPartition, before: i64) -> Result<i64> {
        let mut client = self.client().await?;
        delete_records(&mut client, partition, before).await
    }

    async fn remove_records(&self, partition: &TopicPartition, offsets: &[i64]) -> Result<u64> {
        // The log start and the last stable offset only grow, so checking them first is safe.
        let marks = self.watermarks(partition).await?;
        let offsets = compaction::removable(offsets, marks)?;
        if offsets.is_empty() {
            return Ok(0);
        }
        let client = self.client().await?;
        let (topic, number) = (partition.topic.as_str(), partition.partition);
        let row =
            db::query_opt(&client, sql::LOG_REMOVE_RECORDS, &[&topic, &number, &offsets]).await?;
        let removed: i64 = match row {
            Some(row) => row.try_get(0).map_err(db_error)?,
            None => 0,
        };
        Ok(u64::try_from(removed).unwrap_or(0))
    }
}
