//! One partition's table writer, run by the broker that holds the partition's lease.
//!
//! Each step reads the records appended since the last step (committed data only: below the
//! last stable offset, aborted transactions and markers left out, tombstones too) into Arrow
//! rows in memory, and commits them as one file once `skiff.table.flush.bytes` of records wait
//! or the oldest has waited `skiff.table.flush.ms`, or when the next record has another schema
//! (a file has one schema). A commit covers the offsets `from..next`, where `from` is where the
//! table's previous commit ended: the table refuses it if another writer committed from there
//! first. On any failure, or a lost race, the writer forgets its rows and asks the table again
//! where to resume, after a backoff: nothing is lost (the log still has every record) and
//! nothing is written twice (a commit from an offset happens once).

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use skiff_protocol::records::RecordHeader;
use skiff_schema::{Schema, SchemaType};
use skiff_sink::parquet::ParquetFile;
use skiff_sink::table::{Commit, CommitFacts, CommitOutcome, Table};
use skiff_sink::{Rows, SinkError, TableSchema};
use skiff_storage::{StorageError, TopicPartition};
use tokio::time::Instant;
use tracing::{info, warn};

use super::config::{value_subject, TableConfig};
use super::status::StoredStatus;
use crate::log_scan::scan;
use crate::transactions::now_ms;
use crate::Broker;

/// Record bytes one step reads at most (a step runs again at the next tick).
const STEP_BYTES: usize = 4 << 20;
/// The first and the longest wait after a failure.
const MIN_BACKOFF: Duration = Duration::from_millis(500);
const MAX_BACKOFF: Duration = Duration::from_secs(30);

/// Why a step failed.
#[derive(Debug, thiserror::Error)]
pub(crate) enum WriterError {
    #[error("storage: {0}")]
    Storage(#[from] StorageError),
    #[error("{0}")]
    Sink(#[from] SinkError),
    #[error("schema registry: {0}")]
    Registry(String),
    #[error("{0}")]
    Table(String),
}

/// A record read from the log, waiting to become a row.
struct Pending {
    offset: i64,
    timestamp: i64,
    key: Option<Bytes>,
    value: Bytes,
    headers: Vec<RecordHeader>,
}

/// Rows of one schema waiting for a commit.
struct Buffer {
    schema_id: i32,
    message_indexes: Vec<i32>,
    rows: Rows,
    table: TableSchema,
    bytes: usize,
    since: Instant,
}

/// A partition's writer while this broker holds its lease.
pub(crate) struct PartitionWriter {
    partition: TopicPartition,
    topic_id: String,
    pub(crate) config: TableConfig,
    table: Arc<dyn Table>,
    /// Where the table's last commit ended; `None` until asked (and after any failure).
    committed: Option<i64>,
    /// The next offset to read; rows of `committed..position` are in `buffer`.
    position: i64,
    buffer: Option<Buffer>,
    /// Columns per (schema id, Protobuf message indexes).
    columns: HashMap<(i32, Vec<i32>), TableSchema>,
    retry_at: Option<Instant>,
    backoff: Duration,
    status: Option<StoredStatus>,
    /// Records left out since the status was last stored.
    skipped: u64,
}

impl PartitionWriter {
    pub(crate) fn new(
        partition: TopicPartition,
        topic_id: String,
        config: TableConfig,
        table: Arc<dyn Table>,
    ) -> Self {
        Self {
            partition,
            topic_id,
            config,
            table,
            committed: None,
            position: 0,
            buffer: None,
            columns: HashMap::new(),
            retry_at: None,
            backoff: MIN_BACKOFF,
            status: None,
            skipped: 0,
        }
    }

    /// One step, unless waiting after a failure; a failure is logged, shown in the status,
    /// and retried with backoff from what the table says.
    pub(crate) async fn step(&mut self, broker: &Broker) {
        if self.retry_at.is_some_and(|at| Instant::now() < at) {
            return;
        }
        match self.try_step(broker).await {
            Ok(()) => {
                self.retry_at = None;
                self.backoff = MIN_BACKOFF;
            }
            Err(error) => {
                let message = error.to_string();
                warn!(partition = %self.partition, error = %message, retry_ms = self.backoff.as_millis() as u64, "table writer failed");
                self.forget();
                if let Some(metrics) = broker.metrics() {
                    metrics.table_failed(&self.partition.topic);
                }
                self.retry_at = Some(Instant::now() + self.backoff);
                self.backoff = (self.backoff * 2).min(MAX_BACKOFF);
                self.report(broker, |status| status.failed(message)).await;
            }
        }
    }

    /// Drops what is only in memory: the next step asks the table where to resume.
    fn forget(&mut self) {
        self.committed = None;
        self.buffer = None;
    }

    /// Reads what was appended since the last step, in chunks, committing whenever a commit is
    /// due, until the writer has caught up with the log (a backlog is worked off in one step).
    async fn try_step(&mut self, broker: &Broker) -> Result<(), WriterError> {
        if self.committed.is_none() {
            self.resume(broker).await?;
        }
        loop {
            let caught_up = self.read_chunk(broker).await?;
            if self.committed.is_none() {
                return Ok(()); // another writer committed first: resume at the next step
            }
            let due = self.buffer.as_ref().is_some_and(|buffer| {
                buffer.bytes >= self.config.flush_bytes
                    || buffer.since.elapsed() >= self.config.flush
            });
            if let (true, Some(from)) = (due, self.committed) {
                let next = self.position;
                if !self.flush(broker, from, next).await? {
                    return Ok(());
                }
            }
            if caught_up {
                return Ok(());
            }
        }
    }

    /// Reads one chunk of committed records into the rows; true when it reached the log's
    /// last stable offset.
    async fn read_chunk(&mut self, broker: &Broker) -> Result<bool, WriterError> {
        let marks = broker.storage.log.watermarks(&self.partition).await?;
        if self.position < marks.log_start {
            warn!(partition = %self.partition, from = self.position, to = marks.log_start, "records were deleted from the log before reaching the table");
            self.position = marks.log_start;
        }
        let limit = marks.last_stable;
        if self.position >= limit {
            return Ok(true);
        }
        let before = self.position;
        let pending = self.read(broker, limit).await?;
        if self.position == before {
            return Ok(true); // nothing readable below the limit (yet): try again next step
        }
        let raw_schema = match self.config.raw_values {
            true => self.latest_schema(broker).await?,
            false => None,
        };
        for record in pending {
            if !self.add(broker, record, raw_schema.as_ref()).await? {
                return Ok(true); // another writer committed first: resume from the table
            }
        }
        Ok(self.position >= limit)
    }

    /// Asks the table where the last commit ended, and brings the status up to it: a writer
    /// killed between its commit and its status update left the status behind the table.
    async fn resume(&mut self, broker: &Broker) -> Result<i64, WriterError> {
        let committed = self.table.committed(self.partition.partition).await?;
        if let Some(found) = &committed {
            if !found.topic_id.is_empty() && found.topic_id != self.topic_id {
                return Err(WriterError::Table(format!(
                    "the table at {} holds commits of an earlier topic {} (id {}): move them \
                     away or choose another skiff.table.location",
                    self.config.location, self.partition.topic, found.topic_id
                )));
            }
        }
        let next = committed.as_ref().map_or(0, |found| found.next_offset);
        info!(partition = %self.partition, offset = next, "table writer resumes");
        self.committed = Some(next);
        self.position = next;
        self.buffer = None;
        if let Some(found) = committed {
            self.report(broker, |status| {
                if status.committed_offset != Some(next) {
                    status.committed_offset = Some(next);
                    status.committed_at_ms = Some(found.committed_at_ms);
                }
            })
            .await;
        }
        Ok(next)
    }

    /// Reads committed data records from `position` below `limit`, as many as fit this
    /// step's budget, and moves `position` past what was read.
    async fn read(&mut self, broker: &Broker, limit: i64) -> Result<Vec<Pending>, WriterError> {
        let log = broker.storage.log.as_ref();
        let aborted = log.aborted_transactions(&self.partition, self.position, limit).await?;
        let buffered = self.buffer.as_ref().map_or(0, |buffer| buffer.bytes);
        let budget = STEP_BYTES.min(self.config.flush_bytes.saturating_sub(buffered)).max(1);
        let mut pending = Vec::new();
        let mut bytes = 0;
        let stopped = scan(log, &self.partition, self.position, limit, &aborted, |record| {
            if bytes >= budget {
                return false;
            }
            let Some(value) = record.value.filter(|_| !record.aborted) else {
                return true; // aborted, or a tombstone: not a row
            };
            bytes += value.len() + record.key.map_or(0, <[u8]>::len);
            pending.push(Pending {
                offset: record.offset,
                timestamp: record.timestamp,
                key: record.key.map(Bytes::copy_from_slice),
                value: Bytes::copy_from_slice(value),
                headers: record.headers.to_vec(),
            });
            true
        })
        .await?;
        self.position = stopped;
        Ok(pending)
    }

    /// Adds a record to the rows, committing first when its schema differs from theirs.
    /// False if that commit lost to another writer (the writer has forgotten everything).
    async fn add(
        &mut self,
        broker: &Broker,
        record: Pending,
        raw_schema: Option<&(i32, Arc<Schema>)>,
    ) -> Result<bool, WriterError> {
        let Some((schema_id, schema, message_indexes, payload_at)) =
            self.schema_of(broker, &record, raw_schema).await?
        else {
            self.skip(&record, "its schema id is not in the registry");
            return Ok(true);
        };
        let same = self.buffer.as_ref().is_some_and(|buffer| {
            buffer.schema_id == schema_id && buffer.message_indexes == message_indexes
        });
        if !same {
            if let (Some(committed), true) = (self.committed, self.buffer.is_some()) {
                if !self.flush(broker, committed, record.offset).await? {
                    return Ok(false);
                }
            }
            let table = self.columns_for(schema_id, schema, &message_indexes)?;
            let rows = Rows::new(&table)?;
            self.buffer = Some(Buffer {
                schema_id,
                message_indexes,
                rows,
                table,
                bytes: 0,
                since: Instant::now(),
            });
        }
        let Some(buffer) = self.buffer.as_mut() else { return Ok(true) };
        let headers: Vec<skiff_sink::RecordHeader<'_>> = record
            .headers
            .iter()
            .map(|header| skiff_sink::RecordHeader {
                key: &header.key,
                value: header.value.as_deref(),
            })
            .collect();
        let payload = record.value.get(payload_at..).unwrap_or_default();
        let pushed = buffer.rows.push(
            self.partition.partition,
            record.offset,
            record.timestamp,
            record.key.as_deref(),
            &headers,
            payload,
        );
        match pushed {
            Ok(()) => {
                if buffer.rows.len() == 1 {
                    buffer.since = Instant::now();
                }
                buffer.bytes += record.value.len() + record.key.as_ref().map_or(0, Bytes::len);
            }
            Err(error) => self.skip(&record, &error.to_string()),
        }
        Ok(true)
    }

    fn skip(&mut self, record: &Pending, reason: &str) {
        warn!(partition = %self.partition, offset = record.offset, reason, "record left out of the table");
        self.skipped += 1;
    }

    /// The schema of a record's value: its id, the schema, the Protobuf message indexes and
    /// where the payload starts; `None` if the record names no schema the registry has.
    async fn schema_of(
        &self,
        broker: &Broker,
        record: &Pending,
        raw_schema: Option<&(i32, Arc<Schema>)>,
    ) -> Result<Option<(i32, Arc<Schema>, Vec<i32>, usize)>, WriterError> {
        if let Some((id, schema)) = raw_schema {
            return Ok(Some((*id, schema.clone(), Vec::new(), 0)));
        }
        let value = &record.value;
        let Some(id) = value.get(1..5).filter(|_| value.first() == Some(&0)) else {
            return Ok(None);
        };
        let id = i32::from_be_bytes([id[0], id[1], id[2], id[3]]);
        let found = broker
            .registry()
            .schema_by_id(id)
            .await
            .map_err(|error| WriterError::Registry(error.to_string()))?;
        let Some(registered) = found else { return Ok(None) };
        let Ok(framed) = skiff_schema::wire::parse(value, registered.schema_type) else {
            return Ok(None);
        };
        let indexes = match registered.schema_type {
            SchemaType::Protobuf => framed.message_indexes.clone(),
            SchemaType::Avro | SchemaType::Json => Vec::new(),
        };
        let payload_at = value.len() - framed.payload.len();
        Ok(Some((id, registered.schema.clone(), indexes, payload_at)))
    }

    /// The latest schema of the topic's value subject (bare payloads: `framing=raw`).
    async fn latest_schema(
        &self,
        broker: &Broker,
    ) -> Result<Option<(i32, Arc<Schema>)>, WriterError> {
        let subject = value_subject(&self.partition.topic);
        let latest = broker
            .registry()
            .latest(&subject)
            .await
            .map_err(|error| WriterError::Registry(error.to_string()))?;
        match latest {
            Some(version) => Ok(Some((version.id, version.schema.schema.clone()))),
            None => Err(WriterError::Table(format!("subject {subject} has no schema"))),
        }
    }

    fn columns_for(
        &mut self,
        schema_id: i32,
        schema: Arc<Schema>,
        message_indexes: &[i32],
    ) -> Result<TableSchema, WriterError> {
        let key = (schema_id, message_indexes.to_vec());
        if let Some(found) = self.columns.get(&key) {
            return Ok(found.clone());
        }
        let table = TableSchema::new(schema, message_indexes).map_err(|error| {
            WriterError::Table(format!("schema {schema_id} has no table columns: {error}"))
        })?;
        self.columns.insert(key, table.clone());
        Ok(table)
    }

    /// Commits the buffered rows as covering `from..next`. False if another writer committed
    /// from `from` first (everything in memory is then forgotten).
    async fn flush(&mut self, broker: &Broker, from: i64, next: i64) -> Result<bool, WriterError> {
        let Some(buffer) = self.buffer.take() else { return Ok(true) };
        if buffer.rows.is_empty() {
            return Ok(true);
        }
        let committed_at_ms = now_ms();
        let facts = CommitFacts {
            topic: self.partition.topic.clone(),
            topic_id: self.topic_id.clone(),
            partition: self.partition.partition,
            from,
            next,
            schema_id: buffer.schema_id,
            committed_at_ms,
        };
        let file = encode(buffer, facts).await?;
        let commit = Commit { partition: self.partition.partition, from, next, file: &file };
        match self.table.commit(commit).await? {
            CommitOutcome::Conflict => {
                info!(partition = %self.partition, from, "another writer committed first: resuming from the table");
                self.forget();
                return Ok(false);
            }
            CommitOutcome::Committed => {}
        }
        info!(partition = %self.partition, from, next, rows = file.rows, bytes = file.bytes.len(), "table commit");
        self.committed = Some(next);
        let rows = file.rows as u64;
        if let Some(metrics) = broker.metrics() {
            metrics.table_committed(&self.partition.topic, rows);
        }
        self.report(broker, |status| {
            status.committed_offset = Some(next);
            status.committed_at_ms = Some(committed_at_ms);
            status.commits += 1;
            status.rows += rows;
            status.last_error = None;
            status.last_error_at_ms = None;
        })
        .await;
        if self.config.sink_only {
            match broker.storage.log.delete_records(&self.partition, next).await {
                Ok(_) | Err(StorageError::OffsetOutOfRange { .. }) => {}
                Err(error) => {
                    warn!(partition = %self.partition, %error, "sink topic: committed records not deleted from the log yet")
                }
            }
        }
        Ok(true)
    }

    /// Updates the stored status (loaded on first use); a failure to store it is only logged.
    async fn report(&mut self, broker: &Broker, change: impl FnOnce(&mut super::PartitionStatus)) {
        let state = broker.storage.state.as_ref();
        if self.status.is_none() {
            match StoredStatus::load(state, &self.partition).await {
                Ok(loaded) => self.status = Some(loaded),
                Err(error) => {
                    warn!(partition = %self.partition, %error, "table status not readable");
                    return;
                }
            }
        }
        let Some(stored) = self.status.as_mut() else { return };
        change(&mut stored.status);
        stored.status.skipped_rows += std::mem::take(&mut self.skipped);
        if let Err(error) = stored.save(state, &self.partition).await {
            warn!(partition = %self.partition, %error, "table status not stored");
        }
    }
}

/// The buffered rows as a Parquet file carrying `facts`: encoding up to `flush.bytes` of rows
/// is CPU work of tens of milliseconds, so it runs on the blocking pool, not on a worker that
/// serves requests.
async fn encode(mut buffer: Buffer, facts: CommitFacts) -> Result<ParquetFile, WriterError> {
    let encoded = tokio::task::spawn_blocking(move || {
        let batch = buffer.rows.finish()?;
        let schema = buffer.table.arrow_schema();
        skiff_sink::parquet::write_with_metadata(&schema, &[batch], &facts.to_metadata())
    })
    .await
    .map_err(|error| WriterError::Table(format!("the Parquet encoder stopped: {error}")))?;
    Ok(encoded?)
}

#[cfg(test)]
mod tests {
    use bytes::{BufMut, BytesMut};
    use kafka_protocol::records::Compression;
    use skiff_registry::NewSchema;
    use skiff_sink::table::parquet_table::{file_facts, file_name};
    use skiff_sink::table::{metadata, Location, ParquetTable};
    use skiff_storage::testsuite::keyed_batch;

    use super::*;
    use crate::cleaner::tests::{broker, one_partition};
    use crate::tables::config::Format;

    /// Appends `count` JSON records `{"n": ...}` framed with schema `id`.
    async fn append(broker: &Broker, partition: &TopicPartition, id: i32, count: usize) {
        let records: Vec<(Option<&str>, Bytes)> = (0..count)
            .map(|n| {
                let mut value = BytesMut::new();
                value.put_u8(0);
                value.put_i32(id);
                value.put_slice(format!("{{\"n\": {n}}}").as_bytes());
                (None, value.freeze())
            })
            .collect();
        let batch = keyed_batch(&records, Compression::None);
        broker.storage.log.append(partition, vec![batch]).await.expect("appended");
    }

    #[tokio::test]
    async fn two_writers_racing_on_one_partition_commit_every_offset_once() {
        let broker = broker();
        let partition = one_partition(&broker).await;
        let schema = r#"{"type": "object", "properties": {"n": {"type": "integer"}}}"#;
        let new = NewSchema {
            schema_type: SchemaType::Json,
            text: schema.to_owned(),
            references: Vec::new(),
            id: None,
            version: None,
        };
        let id = broker.registry().register("t-value", new).await.expect("registered").id;
        let topic = broker.storage.meta.topic("t").await.expect("read").expect("topic");

        let dir =
            std::env::temp_dir().join(format!("skiff-race-{}", uuid::Uuid::new_v4().simple()));
        let url = format!("file://{}", dir.display());
        let config = TableConfig {
            format: Format::Parquet,
            location: url.clone(),
            flush: Duration::ZERO,
            flush_bytes: 64, // a few records per commit: many commits to race for
            sink_only: false,
            partition_by: Default::default(),
            raw_values: false,
        };
        let table: Arc<dyn Table> =
            Arc::new(ParquetTable::new(Location::open(&url).expect("location"), "t"));
        let writer = || {
            PartitionWriter::new(
                partition.clone(),
                topic.id.to_string(),
                config.clone(),
                table.clone(),
            )
        };
        let (mut first, mut second) = (writer(), writer());
        for round in 0..12 {
            append(&broker, &partition, id, 7).await;
            if round % 2 == 0 {
                first.step(&broker).await;
                second.step(&broker).await;
            } else {
                second.step(&broker).await;
                first.step(&broker).await;
            }
        }
        for _ in 0..20 {
            first.step(&broker).await;
            second.step(&broker).await;
        }

        let high = broker.storage.log.watermarks(&partition).await.expect("marks").high;
        assert_eq!(high, 84);
        let mut ranges = Vec::new();
        for entry in std::fs::read_dir(dir.join("t").join("0")).expect("files") {
            let bytes = Bytes::from(std::fs::read(entry.expect("entry").path()).expect("read"));
            let facts = file_facts(&bytes).expect("footer");
            let number = |key: &str| facts[key].parse::<i64>().expect("a number");
            ranges.push((number(metadata::FROM_OFFSET), number(metadata::NEXT_OFFSET)));
        }
        ranges.sort_unstable();
        assert!(ranges.len() > 2, "several commits: {ranges:?}");
        assert_eq!(ranges.first().map(|r| r.0), Some(0));
        assert!(ranges.windows(2).all(|w| w[0].1 == w[1].0), "no gap, no overlap: {ranges:?}");
        assert_eq!(ranges.last().map(|r| r.1), Some(high));
        assert!(dir.join("t").join("0").join(file_name(0)).exists());
        std::fs::remove_dir_all(&dir).expect("cleaned up");
    }
}
