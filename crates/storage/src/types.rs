use std::collections::BTreeMap;
use std::fmt;

use uuid::Uuid;

/// One partition of one topic.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct TopicPartition {
    pub topic: String,
    pub partition: i32,
}

impl TopicPartition {
    pub fn new(topic: impl Into<String>, partition: i32) -> Self {
        Self { topic: topic.into(), partition }
    }
}

impl fmt::Display for TopicPartition {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}-{}", self.topic, self.partition)
    }
}

/// What a caller asks for when creating a topic.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TopicSpec {
    pub name: String,
    pub partitions: i32,
    /// Config overrides; defaults are the broker's business, not storage's.
    pub configs: BTreeMap<String, String>,
}

/// A topic as stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TopicMeta {
    pub name: String,
    /// Kafka topic id (Fetch v13+ and Produce v13 address topics by id).
    pub id: Uuid,
    pub partitions: i32,
    pub configs: BTreeMap<String, String>,
}
