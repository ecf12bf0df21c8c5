use async_trait::async_trait;
use uuid::Uuid;

use crate::{Result, TopicMeta, TopicSpec};

/// One config override change: `value: None` removes the override (back to the default).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigChange {
    pub key: String,
    pub value: Option<String>,
}

/// Topics and their configuration.
#[async_trait]
pub trait MetaStore: Send + Sync {
    /// Creates a topic with a fresh id and empty partitions.
    /// `AlreadyExists` if the name is taken, even when two brokers race.
    async fn create_topic(&self, spec: TopicSpec) -> Result<TopicMeta>;

    /// Deletes a topic and all its records. `NotFound` if it does not exist.
    async fn delete_topic(&self, name: &str) -> Result<()>;

    /// Every topic, ordered by name.
    async fn topics(&self) -> Result<Vec<TopicMeta>>;

    /// One topic by name.
    async fn topic(&self, name: &str) -> Result<Option<TopicMeta>>;

    /// One topic by id.
    async fn topic_by_id(&self, id: Uuid) -> Result<Option<TopicMeta>> {
        Ok(self.topics().await?.into_iter().find(|topic| topic.id == id))
    }

    /// Grows a topic to `count` partitions; `InvalidArgument` if `count` is not larger.
    async fn create_partitions(&self, name: &str, count: i32) -> Result<TopicMeta>;

    /// Applies config changes atomically. With `replace_all`, overrides not named are removed
    /// (AlterConfigs semantics); without, only the named keys change (incremental).
    async fn alter_configs(
        &self,
        name: &str,
        changes: Vec<ConfigChange>,
        replace_all: bool,
    ) -> Result<TopicMeta>;
}
