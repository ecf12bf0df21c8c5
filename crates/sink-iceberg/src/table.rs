//! [`IcebergTable`]: the [`Table`] trait over an Iceberg table in a SQL catalog, exactly once
//! through table properties that a commit's snapshot changes atomically.

use std::collections::HashMap;
use std::time::Duration;

use async_trait::async_trait;
use bytes::Bytes;
use iceberg::spec::{DataContentType, DataFile, Snapshot};
use iceberg::table::Table as Iceberg;
use iceberg::transaction::{ApplyTransactionAction, Transaction};
use iceberg::writer::file_writer::{FileWriter, FileWriterBuilder, ParquetWriterBuilder};
use iceberg::{Catalog, ErrorKind, NamespaceIdent, TableCreation, TableIdent};
use skiff_sink::table::{metadata, Commit, CommitOutcome, Committed, Location, PartitionBy, Table};
use skiff_sink::SinkError;

use crate::catalog::{CatalogConfig, SqlCatalog};
use crate::columns::{self, iceberg_error, FileRows};
use crate::partitions;
use crate::storage::ObjectStorage;

/// How many times a commit is tried on a fresher table after another writer's commit (of
/// another partition, or a schema change) moved the table under it.
const ATTEMPTS: u32 = 20;

/// The table property that holds where `partition`'s next commit starts.
pub fn next_offset_property(partition: i32) -> String {
    format!("skiff.partition.{partition}.next-offset")
}

/// The table property with the time of `partition`'s last commit (ms since the epoch).
fn committed_at_property(partition: i32) -> String {
    format!("skiff.partition.{partition}.committed-at-ms")
}

/// The table property with the topic id of `partition`'s last commit.
fn topic_id_property(partition: i32) -> String {
    format!("skiff.partition.{partition}.topic-id")
}

/// One topic's Iceberg table: `<namespace>.<topic>` in the catalog, its files under
/// `<location>/<topic>/`.
#[derive(Debug, Clone)]
pub struct IcebergTable {
    ident: TableIdent,
    /// The table's root URL (`s3://bucket/prefix/topic`, `file:///dir/topic`).
    url: String,
    catalog: SqlCatalog,
    /// `skiff.table.partition.by`: the partition spec the table is created or evolved with.
    partition_by: PartitionBy,
}

impl IcebergTable {
    /// The table of `topic` under `location`, registered in `catalog`. Nothing is read yet.
    pub fn new(
        location: &Location,
        catalog: &CatalogConfig,
        topic: &str,
    ) -> Result<IcebergTable, SinkError> {
        let (storage, url) = ObjectStorage::for_table(location, topic)?;
        let namespace = NamespaceIdent::new(catalog.namespace().to_owned());
        Ok(IcebergTable {
            ident: TableIdent::new(namespace, topic.to_owned()),
            url,
            catalog: SqlCatalog::new(catalog.clone(), storage.file_io()),
            partition_by: PartitionBy::default(),
        })
    }

    /// The table partitioned by `partition_by`: a new table is created with that spec, an
    /// existing one with another default spec gets it as its new default before the next
    /// append (Iceberg's partition evolution: older files keep their spec).
    pub fn partitioned_by(self, partition_by: PartitionBy) -> IcebergTable {
        IcebergTable { partition_by, ..self }
    }

    /// The table as iceberg loads it, or `None` before its first commit: for tools and tests.
    pub async fn iceberg_table(&self) -> Result<Option<Iceberg>, SinkError> {
        match self.catalog.load_table(&self.ident).await {
            Ok(table) => Ok(Some(table)),
            Err(error) if error.kind() == ErrorKind::TableNotFound => Ok(None),
            Err(error) => Err(iceberg_error(error)),
        }
    }

    /// The table, created with the file's columns (and its namespace) if it does not exist.
    /// Two writers creating at once both end up with the one the catalog kept.
    async fn load_or_create(&self, rows: &FileRows) -> Result<Iceberg, SinkError> {
        if let Some(table) = self.iceberg_table().await? {
            return Ok(table);
        }
        let namespace = self.ident.namespace();
        if !self.catalog.namespace_exists(namespace).await.map_err(iceberg_error)? {
            self.catalog
                .create_namespace(namespace, HashMap::new())
                .await
                .map_err(iceberg_error)?;
        }
        let schema = columns::table_schema(&rows.schema)?;
        let spec = partitions::unbound_spec(&self.partition_by, &schema)?;
        let creation = TableCreation::builder()
            .name(self.ident.name().to_owned())
            .location(self.url.clone())
            .schema(schema)
            .partition_spec(spec)
            .properties([
                // Commits are retried here, where the exactly-once check is (catalog docs).
                ("commit.retry.num-retries".to_owned(), "0".to_owned()),
                ("write.parquet.compression-codec".to_owned(), "zstd".to_owned()),
            ])
            .build();
        match self.catalog.create_table(namespace, creation).await {
            Ok(table) => {
                tracing::info!(table = %self.ident, url = %self.url, "Iceberg table created");
                Ok(table)
            }
            Err(error) if error.kind() == ErrorKind::TableAlreadyExists => self
                .iceberg_table()
                .await?
                .ok_or_else(|| SinkError::Store(format!("{} vanished after creation", self.ident))),
            Err(error) => Err(iceberg_error(error)),
        }
    }

    /// Adds the file's new columns to the table, in a commit of their own: the table to append
    /// on (`table` itself when nothing was missing), or `None` if another writer moved the table
    /// first.
    async fn evolve(&self, table: Iceberg, rows: &FileRows) -> Result<Option<Iceberg>, SinkError> {
        let additions = columns::missing_columns(table.metadata().current_schema(), &rows.schema)?;
        if additions.is_empty() {
            return Ok(Some(table));
        }
        tracing::info!(table = %self.ident, columns = additions.len(), "Iceberg table: adding columns");
        let mut update = Transaction::new(&table).update_schema();
        for addition in additions {
            update = update.add_column(addition);
        }
        let transaction = update.apply(Transaction::new(&table)).map_err(iceberg_error)?;
        self.commit_on(&table, transaction).await
    }

    /// Makes the table's default partition spec the one `skiff.table.partition.by` asks for,
    /// in a version of its own: the table to append on, or `None` if another writer moved the
    /// table first.
    async fn repartition(&self, table: Iceberg) -> Result<Option<Iceberg>, SinkError> {
        let metadata = table.metadata();
        let wanted = partitions::unbound_spec(&self.partition_by, metadata.current_schema())?;
        if partitions::same_spec(metadata.default_partition_spec(), &wanted) {
            return Ok(Some(table));
        }
        tracing::info!(table = %self.ident, partition_by = %self.partition_by, "Iceberg table: new partition spec");
        self.catalog
            .edit(&table, |builder| builder.add_default_partition_spec(wanted))
            .await
            .map_err(iceberg_error)
    }

    /// Commits `transaction` if the table is still `base`: the table it made, or `None` on a
    /// conflict.
    async fn commit_on(
        &self,
        base: &Iceberg,
        transaction: Transaction,
    ) -> Result<Option<Iceberg>, SinkError> {
        let location = base.metadata_location_result().map_err(iceberg_error)?;
        match transaction.commit(&self.catalog.pinned_to(location)).await {
            Ok(table) => Ok(Some(table)),
            Err(error) if error.kind() == ErrorKind::CatalogCommitConflicts => Ok(None),
            Err(error) => Err(iceberg_error(error)),
        }
    }

    /// Writes the rows as data files of the table as it is (its columns and partition spec),
    /// one per partition value, under `data/`; invisible until a snapshot adds them. iceberg's
    /// own Parquet writer writes them, so each data file carries the column statistics
    /// (value and null counts, lower and upper bounds) that readers prune with.
    async fn upload(
        &self,
        commit: &Commit<'_>,
        rows: &FileRows,
        table: &Iceberg,
    ) -> Result<Uploaded, SinkError> {
        let metadata = table.metadata();
        let schema = metadata.current_schema();
        let spec = metadata.default_partition_spec();
        let batches = columns::to_table(rows, schema)?;
        let writer = ParquetWriterBuilder::new(columns::writer_properties(rows), schema.clone());
        let mut files = Vec::new();
        for part in partitions::split(batches, schema, spec)? {
            let name = file_name(commit.partition, commit.from);
            let url = match part.path.as_str() {
                "" => format!("{}/data/{name}", self.url),
                path => format!("{}/data/{path}/{name}", self.url),
            };
            let output = self.catalog.file_io().new_output(&url).map_err(iceberg_error)?;
            let mut file = writer.build(output).await.map_err(iceberg_error)?;
            for batch in &part.batches {
                file.write(batch).await.map_err(iceberg_error)?;
            }
            for mut built in file.close().await.map_err(iceberg_error)? {
                let data_file = built
                    .content(DataContentType::Data)
                    .partition(part.value.clone())
                    .partition_spec_id(spec.spec_id())
                    .build()
                    .map_err(|e| SinkError::Store(format!("iceberg data file: {e}")))?;
                files.push(data_file);
            }
        }
        Ok(Uploaded { spec_id: spec.spec_id(), files })
    }

    /// One attempt on the table as it is now.
    async fn try_commit(
        &self,
        commit: &Commit<'_>,
        rows: &FileRows,
        facts: &Facts,
        uploaded: &mut Option<Uploaded>,
    ) -> Result<Attempt, SinkError> {
        let table = self.load_or_create(rows).await?;
        if next_offset(&table, commit.partition)?.unwrap_or(0) != commit.from {
            return Ok(Attempt::Done(CommitOutcome::Conflict));
        }
        // A schema update pinned to `table` leaves the offsets as they were checked.
        let Some(table) = self.evolve(table, rows).await? else {
            return Ok(Attempt::Again);
        };
        let Some(table) = self.repartition(table).await? else {
            return Ok(Attempt::Again);
        };
        // Files uploaded by an earlier attempt stay good while the spec they were split by is
        // the default (added columns read as null in them).
        let spec_id = table.metadata().default_partition_spec_id();
        if uploaded.as_ref().is_none_or(|done| done.spec_id != spec_id) {
            *uploaded = Some(self.upload(commit, rows, &table).await?);
        }
        let data_files = uploaded.as_ref().map(|done| done.files.clone()).unwrap_or_default();
        let append = Transaction::new(&table)
            .fast_append()
            .add_data_files(data_files)
            .set_snapshot_properties(summary(commit, facts));
        let transaction = append.apply(Transaction::new(&table)).map_err(iceberg_error)?;
        let properties = transaction
            .update_table_properties()
            .set(next_offset_property(commit.partition), commit.next.to_string())
            .set(committed_at_property(commit.partition), facts.committed_at_ms.clone())
            .set(topic_id_property(commit.partition), facts.topic_id.clone());
        let transaction = properties.apply(transaction).map_err(iceberg_error)?;
        Ok(match self.commit_on(&table, transaction).await? {
            Some(_) => Attempt::Done(CommitOutcome::Committed),
            None => Attempt::Again,
        })
    }
}

/// A commit's data files, written for one partition spec.
struct Uploaded {
    spec_id: i32,
    files: Vec<DataFile>,
}

/// What one attempt came to.
enum Attempt {
    Done(CommitOutcome),
    /// The table moved under the attempt: try again on the new one.
    Again,
}

/// A data file's name under `data/`: `<partition>/<from, 20 digits>-<uuid>.parquet`; the uuid
/// keeps two writers racing from one offset from overwriting each other's upload.
pub fn file_name(partition: i32, from: i64) -> String {
    format!("{partition}/{from:020}-{}.parquet", uuid::Uuid::new_v4())
}

/// Where `partition`'s next commit starts, by the table's properties.
fn next_offset(table: &Iceberg, partition: i32) -> Result<Option<i64>, SinkError> {
    let Some(value) = table.metadata().properties().get(&next_offset_property(partition)) else {
        return Ok(None);
    };
    value.parse().map(Some).map_err(|_| {
        SinkError::Store(format!(
            "table property {} is not an offset: {value:?}",
            next_offset_property(partition)
        ))
    })
}

/// The commit facts skiff-sink wrote into the file's key-value metadata.
struct Facts {
    topic_id: String,
    committed_at_ms: String,
    schema_id: String,
}

fn facts(rows: &FileRows) -> Facts {
    let find = |key: &str| {
        rows.metadata
            .iter()
            .find(|kv| kv.key == key)
            .and_then(|kv| kv.value.clone())
            .unwrap_or_default()
    };
    Facts {
        topic_id: find(metadata::TOPIC_ID),
        committed_at_ms: find(metadata::COMMITTED_AT_MS),
        schema_id: find(metadata::SCHEMA_ID),
    }
}

/// The snapshot summary of a commit: what it covers, for people and tools reading the
/// table's history (`table.history()`, `snapshots` metadata tables).
fn summary(commit: &Commit<'_>, facts: &Facts) -> HashMap<String, String> {
    HashMap::from([
        (metadata::PARTITION.to_owned(), commit.partition.to_string()),
        (metadata::FROM_OFFSET.to_owned(), commit.from.to_string()),
        (metadata::NEXT_OFFSET.to_owned(), commit.next.to_string()),
        (metadata::TOPIC_ID.to_owned(), facts.topic_id.clone()),
        (metadata::SCHEMA_ID.to_owned(), facts.schema_id.clone()),
        (metadata::COMMITTED_AT_MS.to_owned(), facts.committed_at_ms.clone()),
    ])
}

/// The summary property `key` of a snapshot, for tests and tools.
pub fn summary_property<'a>(snapshot: &'a Snapshot, key: &str) -> Option<&'a str> {
    snapshot.summary().additional_properties.get(key).map(String::as_str)
}

#[async_trait]
impl Table for IcebergTable {
    async fn committed(&self, partition: i32) -> Result<Option<Committed>, SinkError> {
        let Some(table) = self.iceberg_table().await? else {
            return Ok(None);
        };
        let Some(next_offset) = next_offset(&table, partition)? else {
            return Ok(None);
        };
        let properties = table.metadata().properties();
        let committed_at_ms = properties
            .get(&committed_at_property(partition))
            .and_then(|value| value.parse().ok())
            .unwrap_or_default();
        let topic_id = properties.get(&topic_id_property(partition)).cloned().unwrap_or_default();
        Ok(Some(Committed { next_offset, committed_at_ms, topic_id }))
    }

    async fn commit(&self, commit: Commit<'_>) -> Result<CommitOutcome, SinkError> {
        let rows = columns::read(&Bytes::from(commit.file.bytes.clone()))?;
        let facts = facts(&rows);
        let mut uploaded = None;
        for attempt in 0..ATTEMPTS {
            match self.try_commit(&commit, &rows, &facts, &mut uploaded).await? {
                Attempt::Done(outcome) => return Ok(outcome),
                Attempt::Again => {
                    tracing::debug!(table = %self.ident, attempt, "Iceberg commit: trying again");
                    // Spread writers of other partitions that collided with this one.
                    let jitter = u64::from(uuid::Uuid::new_v4().as_u128() as u8 % 20);
                    tokio::time::sleep(Duration::from_millis(5 * u64::from(attempt) + jitter))
                        .await;
                }
            }
        }
        Err(SinkError::Store(format!(
            "{}: {ATTEMPTS} commits in a row lost to other writers; trying again later",
            self.ident
        )))
    }
}
