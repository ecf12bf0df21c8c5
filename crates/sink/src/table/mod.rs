//! Tables: where a topic's rows are committed, and what a table says was committed.
//!
//! A table writer (in the broker) reads a partition's log under a lease and commits the rows
//! of offsets `from..next` as one Parquet file. Exactly once comes from the table, not from
//! the writer's memory: every commit records the offsets it covers, a commit only succeeds if
//! nothing was committed from `from` before (a conditional write), and a writer that starts
//! (or takes over) asks the table where the last commit ended. So a writer killed at any moment,
//! or two writers racing, never lose nor duplicate a row.
//!
//! - [`location`]: a table location URL (`file:///...`, `s3://bucket/prefix`) as an object store.
//! - [`parquet_table`]: the `parquet` format, plain Parquet files with their commit facts in
//!   the files' own metadata.
//! - [`partition_by`]: `skiff.table.partition.by`, the partitioning of the formats that have it.

pub mod location;
pub mod parquet_table;
pub mod partition_by;

use async_trait::async_trait;

use crate::parquet::ParquetFile;
use crate::SinkError;

pub use location::Location;
pub use parquet_table::ParquetTable;
pub use partition_by::PartitionBy;

/// Key-value metadata every committed Parquet file carries (also in other formats' files).
pub mod metadata {
    /// The topic the rows come from.
    pub const TOPIC: &str = "skiff.topic";
    /// Its Kafka topic id: a topic deleted and created again under the same name is another
    /// topic, whose offsets start again.
    pub const TOPIC_ID: &str = "skiff.topic_id";
    /// The Kafka partition of every row of the file.
    pub const PARTITION: &str = "skiff.partition";
    /// The first offset the commit covers (rows may start later: gaps are compacted,
    /// aborted, control or tombstone records).
    pub const FROM_OFFSET: &str = "skiff.from_offset";
    /// The offset after the last one the commit covers: where the next commit starts.
    pub const NEXT_OFFSET: &str = "skiff.next_offset";
    /// The registry id of the schema the rows were written with.
    pub const SCHEMA_ID: &str = "skiff.schema_id";
    /// When the commit was made, in milliseconds since the epoch.
    pub const COMMITTED_AT_MS: &str = "skiff.committed_at_ms";
}

/// What a table says about one partition's last commit.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Committed {
    /// Where the next commit starts: the offset after the last one committed.
    pub next_offset: i64,
    /// When that commit was made (ms since the epoch).
    pub committed_at_ms: i64,
    /// The topic id the commit was made for.
    pub topic_id: String,
}

/// One commit: the rows of offsets `from..next` of one partition, as a Parquet file written
/// with [`crate::parquet::write_with_metadata`] and the [`metadata`] keys.
#[derive(Debug)]
pub struct Commit<'a> {
    pub partition: i32,
    /// Must be the `next_offset` of the partition's last commit (0 for the first).
    pub from: i64,
    pub next: i64,
    pub file: &'a ParquetFile,
}

/// How a commit ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CommitOutcome {
    /// The rows are in the table.
    Committed,
    /// Another writer committed from the same offset first: nothing was written; ask
    /// [`Table::committed`] again.
    Conflict,
}

/// A table format as the writer sees it.
#[async_trait]
pub trait Table: Send + Sync {
    /// The last commit of `partition`, or `None` if nothing was committed for it yet.
    async fn committed(&self, partition: i32) -> Result<Option<Committed>, SinkError>;

    /// Commits `commit` if and only if nothing was committed from `commit.from` yet.
    async fn commit(&self, commit: Commit<'_>) -> Result<CommitOutcome, SinkError>;
}

/// The facts a commit records in its file's key-value metadata ([`metadata`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CommitFacts {
    pub topic: String,
    pub topic_id: String,
    pub partition: i32,
    pub from: i64,
    pub next: i64,
    pub schema_id: i32,
    pub committed_at_ms: i64,
}

impl CommitFacts {
    /// The facts as key-value pairs, for [`crate::parquet::write_with_metadata`].
    pub fn to_metadata(&self) -> std::collections::BTreeMap<String, String> {
        [
            (metadata::TOPIC, self.topic.clone()),
            (metadata::TOPIC_ID, self.topic_id.clone()),
            (metadata::PARTITION, self.partition.to_string()),
            (metadata::FROM_OFFSET, self.from.to_string()),
            (metadata::NEXT_OFFSET, self.next.to_string()),
            (metadata::SCHEMA_ID, self.schema_id.to_string()),
            (metadata::COMMITTED_AT_MS, self.committed_at_ms.to_string()),
        ]
        .into_iter()
        .map(|(key, value)| (key.to_owned(), value))
        .collect()
    }
}
