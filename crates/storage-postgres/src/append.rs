//! The produce transaction.
//!
//! One Postgres transaction per `append` call:
//!
//! 1. lock the partition's row in `skiff.partitions` (`SELECT ... FOR UPDATE`): appends to one
//!    partition from any number of brokers queue here, so offsets are unique and gap-free;
//! 2. read the stored state of the batches' producers and their open transactions, and plan with
//!    `skiff_storage::producers::plan_append` (offsets, duplicates, fencing, transactions);
//! 3. stream the records into `skiff.records` with binary `COPY ... FROM STDIN`;
//! 4. insert the batch rows, upsert producer states, record opened, ended and aborted
//!    transactions, each as one statement over arrays;
//! 5. advance the high watermark and commit. Acknowledged means committed.
//!
//! Batches are decoded before the lock is taken, so the lock is held only for database work.

use std::collections::{HashMap, VecDeque};

use deadpool_postgres::Transaction;
use skiff_storage::producers::{plan_append, AppendPlan, ProducerEntry};
use skiff_storage::{AppendResult, Batch, Result, StorageError, TopicPartition};
use tokio_postgres::types::Type;

use crate::codec::{self, BatchFields, Header, RowRecord};
use crate::db;
use crate::error::db_error;
use crate::meta::check_partition;
use crate::record_sink::RecordSink;
use crate::sql;
use crate::PostgresEngine;

/// A batch's decoded records, found again after planning by the address of the batch's bytes
/// (planning moves batches and drops duplicates, but never copies bytes).
type Decoded = VecDeque<(usize, Vec<RowRecord>)>;

pub(crate) async fn append(
    engine: &PostgresEngine,
    partition: &TopicPartition,
    batches: Vec<Batch>,
) -> Result<AppendResult> {
    let mut decoded = Decoded::with_capacity(batches.len());
    for batch in &batches {
        last_offset_delta(partition, batch)?;
        decoded.push_back((batch.bytes.as_ptr() as usize, codec::decode(batch)?));
    }
    check_partition(partition)?;
    let mut client = engine.client().await?;
    let columns = engine.record_columns()?.to_vec();
    let tx = client.transaction().await.map_err(db_error)?;
    let (topic, number) = (partition.topic.as_str(), partition.partition);
    let locked = db::query_opt(&tx, sql::LOG_PARTITION_LOCK, &[&topic, &number]).await?;
    let locked = locked.ok_or_else(|| StorageError::NotFound(format!("partition {partition}")))?;
    let log_start: i64 = locked.try_get(0).map_err(db_error)?;
    let high: i64 = locked.try_get(1).map_err(db_error)?;
    let entries = producer_entries(&tx, partition, &batches).await?;
    let open = open_transactions(&tx, partition, &batches).await?;
    let plan = plan_append(
        batches,
        high,
        |producer| Ok(entries.get(&producer).cloned()),
        |producer| Ok(open.get(&producer).copied()),
    )?;
    write_records(&tx, partition, &plan, &mut decoded, &columns).await?;
    write_states(&tx, partition, &plan).await?;
    if plan.high != high {
        db::execute(&tx, sql::LOG_PARTITION_SET_HIGH, &[&topic, &number, &plan.high]).await?;
    }
    tx.commit().await.map_err(db_error)?;
    Ok(AppendResult { base_offset: plan.base_offset, log_start, duplicate: plan.duplicate })
}

/// Refuses batches whose offsets cannot be assigned.
fn last_offset_delta(partition: &TopicPartition, batch: &Batch) -> Result<()> {
    let delta = batch.header.last_offset_delta;
    if delta < 0 {
        return Err(StorageError::InvalidArgument(format!(
            "batch for {partition} has negative last offset delta {delta}"
        )));
    }
    Ok(())
}

fn producer_ids(batches: &[Batch], wanted: impl Fn(&Batch) -> bool) -> Vec<i64> {
    let mut ids: Vec<i64> = batches
        .iter()
        .filter(|batch| batch.header.producer_id >= 0 && wanted(batch))
        .map(|batch| batch.header.producer_id)
        .collect();
    ids.sort_unstable();
    ids.dedup();
    ids
}

/// The stored entries of the batches' producers on this partition, in one statement.
async fn producer_entries(
    tx: &Transaction<'_>,
    partition: &TopicPartition,
    batches: &[Batch],
) -> Result<HashMap<i64, ProducerEntry>> {
    let ids = producer_ids(batches, |_| true);
    if ids.is_empty() {
        return Ok(HashMap::new());
    }
    let (topic, number) = (partition.topic.as_str(), partition.partition);
    let rows = db::query(tx, sql::LOG_PRODUCERS_GET, &[&topic, &number, &ids]).await?;
    let mut entries = HashMap::with_capacity(rows.len());
    for row in rows {
        let entry: &[u8] = row.try_get(1).map_err(db_error)?;
        entries.insert(row.try_get(0).map_err(db_error)?, ProducerEntry::decode(entry)?);
    }
    Ok(entries)
}

/// First offsets of the open transactions of the batches' transactional producers.
async fn open_transactions(
    tx: &Transaction<'_>,
    partition: &TopicPartition,
    batches: &[Batch],
) -> Result<HashMap<i64, i64>> {
    let ids =
        producer_ids(batches, |batch| batch.header.is_transactional() || batch.header.is_control());
    if ids.is_empty() {
        return Ok(HashMap::new());
    }
    let (topic, number) = (partition.topic.as_str(), partition.partition);
    let rows = db::query(tx, sql::LOG_OPEN_GET, &[&topic, &number, &ids]).await?;
    rows.iter()
        .map(|row| Ok((row.try_get(0).map_err(db_error)?, row.try_get(1).map_err(db_error)?)))
        .collect()
}

/// The batch rows of the plan, as the arrays `batches_insert.sql` unnests.
#[derive(Default)]
struct BatchColumns {
    base_offsets: Vec<i64>,
    last_offsets: Vec<i64>,
    attributes: Vec<i16>,
    producer_ids: Vec<i64>,
    producer_epochs: Vec<i16>,
    base_sequences: Vec<i32>,
    leader_epochs: Vec<i32>,
    base_timestamps: Vec<i64>,
    max_timestamps: Vec<i64>,
    record_counts: Vec<i32>,
    sizes: Vec<i32>,
    control_keys: Vec<Option<Vec<u8>>>,
    control_values: Vec<Option<Vec<u8>>>,
}

impl BatchColumns {
    fn push(&mut self, fields: &BatchFields, records: &[RowRecord], size: usize, control: bool) {
        self.base_offsets.push(fields.base_offset);
        self.last_offsets.push(fields.base_offset + i64::from(fields.last_offset_delta));
        self.attributes.push(fields.attributes);
        self.producer_ids.push(fields.producer_id);
        self.producer_epochs.push(fields.producer_epoch);
        self.base_sequences.push(fields.base_sequence);
        self.leader_epochs.push(fields.leader_epoch);
        self.base_timestamps.push(fields.base_timestamp);
        self.max_timestamps.push(fields.max_timestamp);
        self.record_counts.push(i32::try_from(records.len()).unwrap_or(i32::MAX));
        self.sizes.push(i32::try_from(size).unwrap_or(i32::MAX));
        let marker = records.first().filter(|_| control);
        self.control_keys.push(marker.and_then(|record| record.key.as_ref().map(|k| k.to_vec())));
        self.control_values
            .push(marker.and_then(|record| record.value.as_ref().map(|v| v.to_vec())));
    }
}

/// COPYs the planned batches' records and inserts their batch rows.
async fn write_records(
    tx: &Transaction<'_>,
    partition: &TopicPartition,
    plan: &AppendPlan,
    decoded: &mut Decoded,
    columns: &[Type],
) -> Result<()> {
    if plan.appends.is_empty() {
        return Ok(());
    }
    let (topic, number) = (partition.topic.as_str(), partition.partition);
    let mut sink = RecordSink::open(tx, columns).await?;
    let mut rows = BatchColumns::default();
    for (batch, base_offset) in &plan.appends {
        let records = take_decoded(decoded, batch)?;
        let fields = BatchFields::of(batch, *base_offset);
        let control = batch.header.is_control();
        rows.push(&fields, &records, batch.bytes.len(), control);
        if control {
            continue;
        }
        for record in &records {
            let offset = base_offset + i64::from(record.offset_delta);
            let key = record.key.as_deref();
            let value = record.value.as_deref();
            let headers: Vec<Header> = record.headers.iter().map(Header::from).collect();
            sink.write(&[&topic, &number, &offset, &record.timestamp, &key, &value, &headers])
                .await?;
        }
    }
    sink.finish().await?;
    let b = &rows; // short: one line per column below
    db::execute(
        tx,
        sql::LOG_BATCHES_INSERT,
        &[
            &topic,
            &number,
            &b.base_offsets,
            &b.last_offsets,
            &b.attributes,
            &b.producer_ids,
            &b.producer_epochs,
            &b.base_sequences,
            &b.leader_epochs,
            &b.base_timestamps,
            &b.max_timestamps,
            &b.record_counts,
            &b.sizes,
            &b.control_keys,
            &b.control_values,
        ],
    )
    .await?;
    Ok(())
}

fn take_decoded(decoded: &mut Decoded, batch: &Batch) -> Result<Vec<RowRecord>> {
    let address = batch.bytes.as_ptr() as usize;
    while let Some((found, records)) = decoded.pop_front() {
        if found == address {
            return Ok(records);
        }
    }
    Err(StorageError::Corrupt("planned batch not among the decoded ones".into()))
}

/// Producer states and transactions the plan changes.
async fn write_states(
    tx: &Transaction<'_>,
    partition: &TopicPartition,
    plan: &AppendPlan,
) -> Result<()> {
    let (topic, number) = (partition.topic.as_str(), partition.partition);
    if !plan.entries.is_empty() {
        let ids: Vec<i64> = plan.entries.iter().map(|(id, _)| *id).collect();
        let entries: Vec<Vec<u8>> = plan.entries.iter().map(|(_, entry)| entry.encode()).collect();
        db::execute(tx, sql::LOG_PRODUCERS_UPSERT, &[&topic, &number, &ids, &entries]).await?;
    }
    // Ended before opened: a call may end a producer's transaction and start its next one.
    end_transactions(tx, partition, plan).await?;
    if !plan.opened.is_empty() {
        let (ids, firsts): (Vec<i64>, Vec<i64>) = plan.opened.iter().copied().unzip();
        db::execute(tx, sql::LOG_OPEN_INSERT, &[&topic, &number, &ids, &firsts]).await?;
    }
    Ok(())
}

async fn end_transactions(
    tx: &Transaction<'_>,
    partition: &TopicPartition,
    plan: &AppendPlan,
) -> Result<()> {
    if plan.ended.is_empty() {
        return Ok(());
    }
    let (topic, number) = (partition.topic.as_str(), partition.partition);
    let ended: Vec<i64> = plan.ended.iter().map(|ended| ended.producer_id).collect();
    db::execute(tx, sql::LOG_OPEN_DELETE, &[&topic, &number, &ended]).await?;
    let aborted: Vec<_> = plan.ended.iter().filter(|ended| ended.aborted).collect();
    if !aborted.is_empty() {
        let ids: Vec<i64> = aborted.iter().map(|ended| ended.producer_id).collect();
        let firsts: Vec<i64> = aborted.iter().map(|ended| ended.first_offset).collect();
        let lasts: Vec<i64> = aborted.iter().map(|ended| ended.last_offset).collect();
        db::execute(tx, sql::LOG_ABORTED_INSERT, &[&topic, &number, &ids, &firsts, &lasts]).await?;
    }
    Ok(())
}
