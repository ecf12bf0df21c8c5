//! [`DeltaLakeTable`]: the [`Table`] trait over a Delta table, exactly once through `txn`
//! actions (one app id per Kafka partition).

use std::collections::HashMap;

use async_trait::async_trait;
use bytes::Bytes;
use deltalake::kernel::transaction::{
    CommitBuilder, CommitConflictError, CommitProperties, TransactionError,
};
use deltalake::kernel::{Action, Add, StructType, Transaction};
use deltalake::logstore::LogStoreRef;
use deltalake::protocol::{DeltaOperation, SaveMode};
use deltalake::table::state::DeltaTableState;
use deltalake::{DeltaTable, DeltaTableError};
use object_store::path::Path;
use object_store::{ObjectStoreExt, PutPayload};
use serde_json::Value;
use skiff_sink::table::{metadata, Commit, CommitOutcome, Committed, Location, PartitionBy, Table};
use skiff_sink::SinkError;

use crate::evolve::missing_fields;
use crate::file::{summarize, FileSummary};
use crate::partitions::Partitioning;
use crate::store::log_store;

/// How many times a commit is tried again after a concurrent commit that does not concern its
/// partition (a schema change, or a lost race to create the table). Appends of other
/// partitions never get here: deltalake retries those itself.
const ATTEMPTS: usize = 5;

/// One topic's Delta table at `<location>/<topic>/`.
#[derive(Debug, Clone)]
pub struct DeltaLakeTable {
    topic: String,
    log_store: LogStoreRef,
    /// `skiff.table.partition.by`; checked when a commit needs it.
    partition_by: PartitionBy,
}

/// The Delta application id that records how far `partition` of `topic` is committed.
pub fn app_id(topic: &str, partition: i32) -> String {
    format!("skiff-{topic}-{partition}")
}

/// A committed file's path relative to the table root: `<partition>/<from, 20 digits>-<uuid>`,
/// under its partition values' directory in a partitioned table (`_timestamp_day=2026-12-06/`).
/// The uuid keeps two writers racing from the same offset from overwriting each other's
/// upload; the log, not the name, says which one is in the table.
pub fn file_path(directory: &str, partition: i32, from: i64) -> String {
    let name = format!("{partition}/{from:020}-{}.parquet", uuid::Uuid::new_v4());
    match directory {
        "" => name,
        directory => format!("{directory}/{name}"),
    }
}

impl DeltaLakeTable {
    /// The table of `topic` under `location`. Nothing is read yet; a `file://` table's
    /// directory is created (deltalake refuses a missing local table root).
    pub fn new(location: &Location, topic: &str) -> Result<DeltaLakeTable, SinkError> {
        Ok(DeltaLakeTable {
            topic: topic.to_owned(),
            log_store: log_store(location, topic)?,
            partition_by: PartitionBy::default(),
        })
    }

    /// The table partitioned by `partition_by` (module `partitions`): a new table is created
    /// with those partition columns. Delta cannot change an existing table's partition columns,
    /// so a table created otherwise refuses commits with a message saying so.
    pub fn partitioned_by(self, partition_by: PartitionBy) -> DeltaLakeTable {
        DeltaLakeTable { partition_by, ..self }
    }

    /// The table at its latest version as deltalake loads it, or `None` if it has no commit
    /// yet: for tools and tests that look at the log itself.
    pub async fn delta_table(&self) -> Result<Option<DeltaTable>, SinkError> {
        let mut table = DeltaTable::new(self.log_store.clone());
        match table.load().await {
            Ok(()) => Ok(Some(table)),
            Err(DeltaTableError::NotATable(_)) => Ok(None),
            Err(error) => Err(delta_error(error)),
        }
    }

    /// The table, created with `file`'s columns if it does not exist yet. Creating is its own
    /// version 0, never retried on top of another writer's: two writers creating at once both
    /// find the table afterwards, whoever made it.
    async fn load_or_create(
        &self,
        columns: &StructType,
        partitioning: &Partitioning,
    ) -> Result<DeltaTable, SinkError> {
        if let Some(table) = self.delta_table().await? {
            return Ok(table);
        }
        let created = DeltaTable::new(self.log_store.clone())
            .create()
            .with_table_name(self.topic.clone())
            .with_columns(columns.fields().cloned())
            .with_partition_columns(partitioning.names())
            .with_save_mode(SaveMode::Ignore)
            .with_commit_properties(CommitProperties::default().with_max_retries(0))
            .await;
        match created {
            Ok(table) => Ok(table),
            Err(error) => match self.delta_table().await? {
                Some(table) => Ok(table),
                None => Err(delta_error(error)),
            },
        }
    }

    /// Merges the commit's new columns into the table schema, in a version of its own.
    async fn evolve(&self, table: DeltaTable, columns: &StructType) -> Result<DeltaTable, Retry> {
        let state = table.snapshot().map_err(|e| Retry::Fail(delta_error(e)))?;
        let fields = missing_fields(&state.schema(), columns);
        if fields.is_empty() {
            return Ok(table);
        }
        let names: Vec<&str> = fields.iter().map(|field| field.name().as_str()).collect();
        tracing::info!(topic = %self.topic, columns = ?names, "Delta table: adding columns");
        let properties = CommitProperties::default().with_max_retries(0);
        table.add_columns().with_fields(fields).with_commit_properties(properties).await.map_err(
            |error| match error {
                DeltaTableError::Transaction { .. } | DeltaTableError::VersionAlreadyExists(_) => {
                    Retry::Again
                }
                // A column whose type changed (not merely gained fields): no writer can fix it.
                other => Retry::Fail(SinkError::UnsupportedSchema {
                    path: String::new(),
                    reason: format!("the Delta table's columns cannot take this file's: {other}"),
                }),
            },
        )
    }

    /// The partition's transaction version in `state`: where its next commit starts.
    async fn next_offset(
        &self,
        state: &DeltaTableState,
        partition: i32,
    ) -> Result<Option<i64>, SinkError> {
        let app = app_id(&self.topic, partition);
        state.transaction_version(self.log_store.as_ref(), app).await.map_err(delta_error)
    }

    /// One attempt at committing the uploaded files on the table's current version.
    async fn try_commit(
        &self,
        table: DeltaTable,
        prepared: &Prepared<'_, '_>,
        uploaded: &mut Option<Vec<Add>>,
    ) -> Result<CommitOutcome, Retry> {
        let state = table.snapshot().map_err(|e| Retry::Fail(delta_error(e)))?;
        let names = prepared.partitioning.names();
        let existing = state.metadata().partition_columns().to_vec();
        if existing != names {
            return Err(Retry::Fail(SinkError::UnsupportedSchema {
                path: String::new(),
                reason: format!(
                    "the Delta table is partitioned by {existing:?} and skiff.table.partition.by \
                     asks for {names:?}: a Delta table keeps the partition columns it was \
                     created with (set the config back, or write the topic to a new table)"
                ),
            }));
        }
        let commit = prepared.commit;
        let found = self.next_offset(state, commit.partition).await.map_err(Retry::Fail)?;
        if found.unwrap_or(0) != commit.from {
            return Ok(CommitOutcome::Conflict);
        }
        let table = self.evolve(table, &prepared.columns).await?;
        let adds = match uploaded {
            Some(adds) => adds.clone(),
            None => uploaded.insert(self.upload(prepared).await.map_err(Retry::Fail)?).clone(),
        };
        let state = table.snapshot().map_err(|e| Retry::Fail(delta_error(e)))?;
        let properties = commit_properties(&self.topic, commit, &prepared.file);
        let partition_by = (!names.is_empty()).then_some(names);
        let operation =
            DeltaOperation::Write { mode: SaveMode::Append, partition_by, predicate: None };
        let done = CommitBuilder::from(properties)
            .with_actions(adds.into_iter().map(Action::Add).collect())
            .build(Some(state), self.log_store.clone(), operation)
            .await;
        match done {
            Ok(_) => Ok(CommitOutcome::Committed),
            Err(DeltaTableError::Transaction {
                source: TransactionError::CommitConflict(CommitConflictError::ConcurrentTransaction),
            }) => Ok(CommitOutcome::Conflict),
            Err(DeltaTableError::Transaction {
                source: TransactionError::CommitConflict(conflict),
            }) => {
                tracing::debug!(topic = %self.topic, %conflict, "Delta commit: trying again");
                Err(Retry::Again)
            }
            Err(error) => Err(Retry::Fail(delta_error(error))),
        }
    }

    /// Writes the commit's files under the table root (one per partition value in a
    /// partitioned table); invisible to readers until a version adds them.
    async fn upload(&self, prepared: &Prepared<'_, '_>) -> Result<Vec<Add>, SinkError> {
        if prepared.partitioning.is_empty() {
            let (bytes, stats) = (prepared.bytes.clone(), prepared.file.stats.clone());
            return Ok(vec![self.put(prepared, "", bytes, HashMap::new(), stats).await?]);
        }
        let mut adds = Vec::new();
        for part in prepared.partitioning.split(&prepared.bytes)? {
            let stats = summarize(&part.bytes)?.stats;
            adds.push(self.put(prepared, &part.directory, part.bytes, part.values, stats).await?);
        }
        Ok(adds)
    }

    /// Writes one data file and makes its Add action.
    async fn put(
        &self,
        prepared: &Prepared<'_, '_>,
        directory: &str,
        bytes: Bytes,
        partition_values: HashMap<String, Option<String>>,
        stats: String,
    ) -> Result<Add, SinkError> {
        let path = file_path(directory, prepared.commit.partition, prepared.commit.from);
        let size = i64::try_from(bytes.len()).unwrap_or(i64::MAX);
        let store = self.log_store.object_store(None);
        store
            .put(&Path::from(path.as_str()), PutPayload::from(bytes))
            .await
            .map_err(|e| SinkError::Store(e.to_string()))?;
        Ok(Add {
            path,
            partition_values,
            size,
            modification_time: committed_at_ms(&prepared.file),
            data_change: true,
            stats: Some(stats),
            ..Add::default()
        })
    }

    /// The newest file of `partition` in `state`: its path and time. Files of a partition are
    /// in a directory named by it (under partition values' directories in a partitioned table)
    /// and their names sort by offset.
    fn newest_file(state: &DeltaTableState, partition: i32) -> Option<(String, i64)> {
        let partition = partition.to_string();
        let files = state.log_data();
        let newest = files.iter().filter_map(|file| {
            let path = file.path().into_owned();
            let mut segments = path.rsplit('/');
            let name = segments.next()?.to_owned();
            (segments.next()? == partition).then(|| (name, path, file.modification_time()))
        });
        newest.max().map(|(_, path, time)| (path, time))
    }

    /// The topic id in a committed file's own metadata.
    async fn topic_id(&self, path: &str) -> Result<String, SinkError> {
        let store = self.log_store.object_store(None);
        let found =
            store.get(&Path::from(path)).await.map_err(|e| SinkError::Store(e.to_string()))?;
        let bytes = found.bytes().await.map_err(|e| SinkError::Store(e.to_string()))?;
        Ok(summarize(&bytes)?.facts.get(metadata::TOPIC_ID).cloned().unwrap_or_default())
    }
}

/// A commit as the table takes it: the file's summary, the table columns it needs (the file's,
/// then the derived partition columns) and the partitioning.
struct Prepared<'c, 'f> {
    commit: &'c Commit<'f>,
    /// The commit's Parquet file, copied out of the commit once.
    bytes: Bytes,
    file: FileSummary,
    columns: StructType,
    partitioning: Partitioning,
}

impl<'c, 'f> Prepared<'c, 'f> {
    fn new(commit: &'c Commit<'f>, partition_by: &PartitionBy) -> Result<Self, SinkError> {
        let bytes = Bytes::from(commit.file.bytes.clone());
        let file = summarize(&bytes)?;
        let partitioning = Partitioning::new(partition_by)?;
        let fields = file.schema.fields().cloned().chain(partitioning.derived_fields());
        let columns = StructType::try_new(fields).map_err(|e| SinkError::UnsupportedSchema {
            path: String::new(),
            reason: format!("the partition columns do not fit the table's: {e}"),
        })?;
        Ok(Prepared { commit, bytes, file, columns, partitioning })
    }
}

/// Why one commit attempt did not end the commit.
#[derive(Debug)]
enum Retry {
    /// Another version changed the table in a way that does not concern this partition.
    Again,
    /// A failure to report (the writer retries it with backoff).
    Fail(SinkError),
}

#[async_trait]
impl Table for DeltaLakeTable {
    async fn committed(&self, partition: i32) -> Result<Option<Committed>, SinkError> {
        let Some(table) = self.delta_table().await? else { return Ok(None) };
        let state = table.snapshot().map_err(delta_error)?;
        let Some(next_offset) = self.next_offset(state, partition).await? else {
            return Ok(None);
        };
        let (committed_at_ms, topic_id) = match Self::newest_file(state, partition) {
            Some((path, time)) => (time, self.topic_id(&path).await?),
            None => (0, String::new()),
        };
        Ok(Some(Committed { next_offset, committed_at_ms, topic_id }))
    }

    async fn commit(&self, commit: Commit<'_>) -> Result<CommitOutcome, SinkError> {
        let prepared = Prepared::new(&commit, &self.partition_by)?;
        let mut uploaded = None;
        for _ in 0..ATTEMPTS {
            let table = self.load_or_create(&prepared.columns, &prepared.partitioning).await?;
            match self.try_commit(table, &prepared, &mut uploaded).await {
                Ok(outcome) => return Ok(outcome),
                Err(Retry::Again) => continue,
                Err(Retry::Fail(error)) => return Err(error),
            }
        }
        Err(SinkError::Store(format!(
            "Delta table {}: the table kept changing under {ATTEMPTS} commit attempts",
            self.topic
        )))
    }
}

/// The commit's `txn` action (app id `skiff-<topic>-<partition>`, version = the offset after
/// the commit) and its facts in the version's commit info.
fn commit_properties(topic: &str, commit: &Commit<'_>, file: &FileSummary) -> CommitProperties {
    let txn = Transaction::new_with_last_update(
        app_id(topic, commit.partition),
        commit.next,
        Some(committed_at_ms(file)),
    );
    let facts = [
        (metadata::TOPIC, Value::from(topic)),
        (metadata::TOPIC_ID, Value::from(file_fact(file, metadata::TOPIC_ID))),
        (metadata::PARTITION, Value::from(commit.partition)),
        (metadata::FROM_OFFSET, Value::from(commit.from)),
        (metadata::NEXT_OFFSET, Value::from(commit.next)),
    ];
    CommitProperties::default()
        .with_application_transaction(txn)
        .with_metadata(facts.into_iter().map(|(key, value)| (key.to_owned(), value)))
}

fn file_fact(file: &FileSummary, key: &str) -> String {
    file.facts.get(key).cloned().unwrap_or_default()
}

/// When the commit was made: the writer's time in the file, else now.
fn committed_at_ms(file: &FileSummary) -> i64 {
    file.facts
        .get(metadata::COMMITTED_AT_MS)
        .and_then(|value| value.parse().ok())
        .unwrap_or_else(now_ms)
}

fn now_ms() -> i64 {
    let since = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH);
    since.map_or(0, |elapsed| i64::try_from(elapsed.as_millis()).unwrap_or(i64::MAX))
}

/// A deltalake failure as a sink error (retried by the writer).
fn delta_error(error: DeltaTableError) -> SinkError {
    SinkError::Store(format!("delta: {error}"))
}
