//! What table writers report: per partition, the last commit, counts and the last error, kept
//! in storage by whichever broker writes the partition, so `skiff table status` (or any
//! broker) can show it. The table itself stays the authority on what was committed; this is
//! what an operator looks at.

use bytes::Bytes;
use serde::{Deserialize, Serialize};
use skiff_storage::{StateStore, Storage, StorageError, TopicPartition};

/// The state key of a partition's writer status.
pub(crate) fn status_key(partition: &TopicPartition) -> String {
    format!("table/{}/{}/status", partition.topic, partition.partition)
}

/// The state key of a partition's writer lease.
pub(crate) fn lease_key(partition: &TopicPartition) -> String {
    format!("table/{}/{}/lease", partition.topic, partition.partition)
}

/// A partition writer's report, as stored.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct PartitionStatus {
    /// Where the next commit starts (every offset below is in the table or was skipped).
    pub committed_offset: Option<i64>,
    /// When the last commit was made (ms since the epoch).
    pub committed_at_ms: Option<i64>,
    /// Commits and rows written, over every writer of the partition.
    pub commits: u64,
    pub rows: u64,
    /// Records that were not written: payloads that do not decode as their schema (possible
    /// only for records stored before validation was on).
    pub skipped_rows: u64,
    /// The last failure, cleared by the next commit.
    pub last_error: Option<String>,
    pub last_error_at_ms: Option<i64>,
}

impl PartitionStatus {
    /// Records a failure, now.
    pub(crate) fn failed(&mut self, message: String) {
        self.last_error = Some(message);
        self.last_error_at_ms = Some(crate::transactions::now_ms());
    }
}

/// A stored status and its version, for the writer that updates it.
#[derive(Debug, Default)]
pub(crate) struct StoredStatus {
    pub(crate) status: PartitionStatus,
    version: Option<u64>,
}

impl StoredStatus {
    /// The partition's status as stored (empty if none).
    pub(crate) async fn load(
        state: &dyn StateStore,
        partition: &TopicPartition,
    ) -> Result<StoredStatus, StorageError> {
        let stored = state.get(&status_key(partition)).await?;
        Ok(match stored {
            Some(stored) => StoredStatus {
                status: serde_json::from_slice(&stored.value).unwrap_or_default(),
                version: Some(stored.version),
            },
            None => StoredStatus::default(),
        })
    }

    /// Writes the status; a status written meanwhile by an earlier holder is overwritten.
    pub(crate) async fn save(
        &mut self,
        state: &dyn StateStore,
        partition: &TopicPartition,
    ) -> Result<(), StorageError> {
        let key = status_key(partition);
        let value = Bytes::from(serde_json::to_vec(&self.status).unwrap_or_default());
        for _ in 0..3 {
            match state.put(&key, value.clone(), self.version).await {
                Ok(version) => {
                    self.version = Some(version);
                    return Ok(());
                }
                Err(StorageError::Conflict(_)) => {
                    self.version = state.get(&key).await?.map(|stored| stored.version);
                }
                Err(other) => return Err(other),
            }
        }
        Err(StorageError::Conflict(format!("{key}: written by others meanwhile")))
    }
}

/// One partition in `skiff table status`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct PartitionReport {
    pub partition: i32,
    /// The log's end (high watermark).
    pub log_end: i64,
    /// Offsets not in the table yet: `log_end - committed_offset`.
    pub lag: i64,
    /// The writer lease: holder id and when it runs out (ms since the epoch), if taken.
    pub lease: Option<(String, i64)>,
    #[serde(flatten)]
    pub status: PartitionStatus,
}

/// The status of every partition of a topic's table, read from storage (no broker needed).
pub async fn table_status(
    storage: &Storage,
    topic: &str,
) -> Result<Vec<PartitionReport>, StorageError> {
    let meta = storage
        .meta
        .topic(topic)
        .await?
        .ok_or_else(|| StorageError::NotFound(format!("topic {topic}")))?;
    let mut reports = Vec::new();
    for index in 0..meta.partitions {
        let partition = TopicPartition::new(topic, index);
        let marks = storage.log.watermarks(&partition).await?;
        let status = StoredStatus::load(storage.state.as_ref(), &partition).await?.status;
        let lease =
            skiff_storage::lease::holder(storage.state.as_ref(), &lease_key(&partition)).await?;
        let committed = status.committed_offset.unwrap_or(marks.log_start);
        reports.push(PartitionReport {
            partition: index,
            log_end: marks.high,
            lag: (marks.high - committed).max(0),
            lease,
            status,
        });
    }
    Ok(reports)
}
