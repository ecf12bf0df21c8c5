use async_trait::async_trait;

use crate::{Result, TopicPartition};

/// A consumer group's committed position in one partition.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CommittedOffset {
    pub offset: i64,
    /// The leader epoch the consumer saw (-1 if unknown); returned as committed.
    pub leader_epoch: i32,
    /// Client metadata stored with the offset, returned as committed.
    pub metadata: Option<String>,
    /// When the commit was made (milliseconds since the epoch).
    pub commit_timestamp_ms: i64,
}

/// Committed offsets of consumer groups. Group membership itself is small state kept in
/// [`crate::StateStore`]; offsets get their own trait because commits touch many partitions at
/// once and SQL engines store them as rows people can query.
#[async_trait]
pub trait OffsetStore: Send + Sync {
    /// Stores offsets for a group, all or none; a later commit of a partition replaces an
    /// earlier one.
    async fn commit_offsets(
        &self,
        group: &str,
        offsets: Vec<(TopicPartition, CommittedOffset)>,
    ) -> Result<()>;

    /// Committed offsets of a group, ordered by topic and partition: of the given partitions
    /// (those never committed are left out), or all when `partitions` is `None`.
    async fn committed_offsets(
        &self,
        group: &str,
        partitions: Option<&[TopicPartition]>,
    ) -> Result<Vec<(TopicPartition, CommittedOffset)>>;

    /// Deletes a group's offsets for the given partitions, or all of them when `None`.
    async fn delete_offsets(
        &self,
        group: &str,
        partitions: Option<&[TopicPartition]>,
    ) -> Result<()>;

    /// Every group that has committed offsets, ordered by name.
    async fn offset_groups(&self) -> Result<Vec<String>>;
}
