use std::sync::{Arc, Mutex};

use async_trait::async_trait;
use skiff_storage::{ConfigChange, MetaStore, Result, StorageError, TopicMeta, TopicSpec};
use uuid::Uuid;

use crate::{MemoryEngine, PartitionLog, Topic};

fn new_partitions(count: i32) -> Vec<Arc<Mutex<PartitionLog>>> {
    (0..count).map(|_| Arc::new(Mutex::new(PartitionLog::default()))).collect()
}

impl MemoryEngine {
    fn write_topics(
        &self,
    ) -> std::sync::RwLockWriteGuard<'_, std::collections::BTreeMap<String, Topic>> {
        self.topics.write().unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    pub(crate) fn read_topics(
        &self,
    ) -> std::sync::RwLockReadGuard<'_, std::collections::BTreeMap<String, Topic>> {
        self.topics.read().unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}

#[async_trait]
impl MetaStore for MemoryEngine {
    async fn create_topic(&self, spec: TopicSpec) -> Result<TopicMeta> {
        if spec.partitions <= 0 {
            return Err(StorageError::InvalidArgument(format!(
                "topic {} cannot have {} partitions",
                spec.name, spec.partitions
            )));
        }
        let mut topics = self.write_topics();
        if topics.contains_key(&spec.name) {
            return Err(StorageError::AlreadyExists(format!("topic {}", spec.name)));
        }
        let meta = TopicMeta {
            name: spec.name.clone(),
            id: Uuid::new_v4(),
            partitions: spec.partitions,
            configs: spec.configs,
        };
        let partitions = new_partitions(spec.partitions);
        topics.insert(spec.name, Topic { meta: meta.clone(), partitions });
        Ok(meta)
    }

    async fn delete_topic(&self, name: &str) -> Result<()> {
        match self.write_topics().remove(name) {
            Some(_) => {
                self.forget_topic_offsets(name);
                Ok(())
            }
            None => Err(StorageError::NotFound(format!("topic {name}"))),
        }
    }

    async fn topics(&self) -> Result<Vec<TopicMeta>> {
        Ok(self.read_topics().values().map(|topic| topic.meta.clone()).collect())
    }

    async fn topic(&self, name: &str) -> Result<Option<TopicMeta>> {
        Ok(self.read_topics().get(name).map(|topic| topic.meta.clone()))
    }

    async fn create_partitions(&self, name: &str, count: i32) -> Result<TopicMeta> {
        let mut topics = self.write_topics();
        let topic =
            topics.get_mut(name).ok_or_else(|| StorageError::NotFound(format!("topic {name}")))?;
        if count <= topic.meta.partitions {
            return Err(StorageError::InvalidArgument(format!(
                "topic {name} has {} partitions; the new count {count} must be larger",
                topic.meta.partitions
            )));
        }
        topic.partitions.extend(new_partitions(count - topic.meta.partitions));
        topic.meta.partitions = count;
        Ok(topic.meta.clone())
    }

    async fn alter_configs(
        &self,
        name: &str,
        changes: Vec<ConfigChange>,
        replace_all: bool,
    ) -> Result<TopicMeta> {
        let mut topics = self.write_topics();
        let topic =
            topics.get_mut(name).ok_or_else(|| StorageError::NotFound(format!("topic {name}")))?;
        if replace_all {
            topic.meta.configs.clear();
        }
        for change in changes {
            match change.value {
                Some(value) => topic.meta.configs.insert(change.key, value),
                None => topic.meta.configs.remove(&change.key),
            };
        }
        Ok(topic.meta.clone())
    }
}
