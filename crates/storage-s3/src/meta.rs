//! `MetaStore`: one object per topic, `topics/<name>`, created with `If-None-Match` (so two
//! brokers racing to create a name get one winner) and changed by `If-Match`; plus
//! `topic-ids/<id>` naming the topic of an id (Fetch v13+ addresses topics by id).
//!
//! Records live under `log/<topic id>/`, so a topic deleted and created again under the same
//! name starts empty even before the old records are gone.

use std::collections::BTreeMap;
use std::time::Duration;

use async_trait::async_trait;
use bytes::Bytes;
use futures::future::try_join_all;
use object_store::path::Path;
use serde::{Deserialize, Serialize};
use skiff_storage::{
    ConfigChange, MetaStore, Result, StorageError, TopicMeta, TopicPartition, TopicSpec,
};
use tokio::time::Instant;
use tracing::warn;
use uuid::Uuid;

use crate::store::{Tagged, WriteError};
use crate::{lock, S3Engine};

/// How long a topic read from storage is trusted for lookups, appends and reads (never for
/// changes): a topic deleted or altered through another broker may be seen as it was for this
/// long (and take appends, which become garbage).
const TOPIC_CACHE: Duration = Duration::from_secs(1);

#[derive(Debug, Serialize, Deserialize)]
struct StoredTopic {
    id: Uuid,
    partitions: i32,
    configs: BTreeMap<String, String>,
}

fn decode(name: &str, tagged: &Tagged) -> Result<TopicMeta> {
    let stored: StoredTopic = serde_json::from_slice(&tagged.bytes)
        .map_err(|error| StorageError::Corrupt(format!("topic {name} does not decode: {error}")))?;
    Ok(TopicMeta {
        name: name.to_owned(),
        id: stored.id,
        partitions: stored.partitions,
        configs: stored.configs,
    })
}

fn encode(meta: &TopicMeta) -> Result<Bytes> {
    let stored =
        StoredTopic { id: meta.id, partitions: meta.partitions, configs: meta.configs.clone() };
    serde_json::to_vec(&stored)
        .map(Bytes::from)
        .map_err(|error| StorageError::Corrupt(format!("topic does not encode: {error}")))
}

fn not_found(name: &str) -> StorageError {
    StorageError::NotFound(format!("topic {name}"))
}

impl S3Engine {
    fn topic_path(&self, name: &str) -> Path {
        self.store.path(&["topics", name])
    }

    fn id_path(&self, id: Uuid) -> Path {
        self.store.path(&["topic-ids", &id.simple().to_string()])
    }

    /// Where a topic's partitions keep their heads and index segments.
    pub(crate) fn topic_dir(&self, id: Uuid) -> Path {
        self.store.path(&["log", &id.simple().to_string()])
    }

    async fn read_topic(&self, name: &str) -> Result<Option<(TopicMeta, Tagged)>> {
        let Some(tagged) = self.store.get(&self.topic_path(name)).await? else { return Ok(None) };
        let meta = decode(name, &tagged)?;
        lock(&self.topics).insert(name.to_owned(), (meta.clone(), Instant::now()));
        Ok(Some((meta, tagged)))
    }

    /// The topic, from the short cache when fresh (only for appends and reads).
    async fn cached_topic(&self, name: &str) -> Result<TopicMeta> {
        if let Some((meta, read_at)) = lock(&self.topics).get(name) {
            if read_at.elapsed() < TOPIC_CACHE {
                return Ok(meta.clone());
            }
        }
        self.read_topic(name).await?.map(|(meta, _)| meta).ok_or_else(|| not_found(name))
    }

    /// The directory of an existing partition; `NotFound` otherwise.
    pub(crate) async fn partition_dir(&self, partition: &TopicPartition) -> Result<Path> {
        let meta = self.cached_topic(&partition.topic).await?;
        if partition.partition < 0 || partition.partition >= meta.partitions {
            return Err(StorageError::NotFound(format!("partition {partition}")));
        }
        Ok(self.topic_dir(meta.id).join(partition.partition.to_string()))
    }

    /// Changes a topic by compare-and-set, re-reading on conflict.
    async fn change_topic(
        &self,
        name: &str,
        change: impl Fn(&mut TopicMeta) -> Result<()>,
    ) -> Result<TopicMeta> {
        for _ in 0..crate::MAX_CONFLICTS {
            let (mut meta, tagged) = self.read_topic(name).await?.ok_or_else(|| not_found(name))?;
            change(&mut meta)?;
            match self.store.replace(&self.topic_path(name), encode(&meta)?, tagged.e_tag).await {
                Ok(_) => {
                    lock(&self.topics).insert(name.to_owned(), (meta.clone(), Instant::now()));
                    return Ok(meta);
                }
                Err(WriteError::Conflict) => continue,
                Err(WriteError::Failed(error)) => return Err(error),
            }
        }
        Err(crate::too_many_conflicts(&format!("topic {name}")))
    }
}

#[async_trait]
impl MetaStore for S3Engine {
    async fn create_topic(&self, spec: TopicSpec) -> Result<TopicMeta> {
        if spec.partitions <= 0 {
            return Err(StorageError::InvalidArgument(format!(
                "topic {} cannot have {} partitions",
                spec.name, spec.partitions
            )));
        }
        let meta = TopicMeta {
            name: spec.name.clone(),
            id: Uuid::new_v4(),
            partitions: spec.partitions,
            configs: spec.configs,
        };
        // The id object first: a crash between the two leaves only an id naming no topic.
        let name = Bytes::from(meta.name.clone());
        self.store
            .create(&self.id_path(meta.id), name)
            .await
            .map_err(|error| error.into_storage("topic id"))?;
        match self.store.create(&self.topic_path(&meta.name), encode(&meta)?).await {
            Ok(_) => {
                lock(&self.topics).insert(meta.name.clone(), (meta.clone(), Instant::now()));
                Ok(meta)
            }
            Err(WriteError::Conflict) => {
                let _ = self.store.delete(&self.id_path(meta.id)).await;
                Err(StorageError::AlreadyExists(format!("topic {}", meta.name)))
            }
            Err(WriteError::Failed(error)) => Err(error),
        }
    }

    async fn delete_topic(&self, name: &str) -> Result<()> {
        let (meta, _) = self.read_topic(name).await?.ok_or_else(|| not_found(name))?;
        self.store.delete(&self.topic_path(name)).await?;
        lock(&self.topics).remove(name);
        self.store.delete(&self.id_path(meta.id)).await?;
        let dir = self.topic_dir(meta.id);
        self.heads.forget(&dir);
        // Heads and index segments go now; data objects are shared with other topics' batches
        // and are collected separately (docs/storage/s3.md).
        if let Err(error) = self.store.delete_all(&dir).await {
            warn!(topic = name, %error, "deleted topic's heads not all removed");
        }
        self.forget_topic_offsets(name).await
    }

    async fn topics(&self) -> Result<Vec<TopicMeta>> {
        let paths = self.store.list(&self.store.path(&["topics"])).await?;
        let names: Vec<String> =
            paths.iter().filter_map(|path| path.filename().map(str::to_owned)).collect();
        let found = try_join_all(names.iter().map(|name| self.read_topic(name))).await?;
        let mut topics: Vec<TopicMeta> =
            found.into_iter().flatten().map(|(meta, _)| meta).collect();
        topics.sort_by(|a, b| a.name.cmp(&b.name));
        Ok(topics)
    }

    /// Served from the one-second cache when fresh: produce and fetch look their topics up on
    /// every request, and a GET each would double their cost. Changes made through this engine
    /// update the cache at once; other brokers' are seen within a second.
    async fn topic(&self, name: &str) -> Result<Option<TopicMeta>> {
        match self.cached_topic(name).await {
            Ok(meta) => Ok(Some(meta)),
            Err(StorageError::NotFound(_)) => Ok(None),
            Err(error) => Err(error),
        }
    }

    async fn topic_by_id(&self, id: Uuid) -> Result<Option<TopicMeta>> {
        let cached = lock(&self.topics)
            .values()
            .find(|(meta, read_at)| meta.id == id && read_at.elapsed() < TOPIC_CACHE)
            .map(|(meta, _)| meta.clone());
        if cached.is_some() {
            return Ok(cached);
        }
        let Some(tagged) = self.store.get(&self.id_path(id)).await? else { return Ok(None) };
        let name = String::from_utf8_lossy(&tagged.bytes).into_owned();
        Ok(self.topic(&name).await?.filter(|meta| meta.id == id))
    }

    async fn create_partitions(&self, name: &str, count: i32) -> Result<TopicMeta> {
        self.change_topic(name, |meta| {
            if count <= meta.partitions {
                return Err(StorageError::InvalidArgument(format!(
                    "topic {name} has {} partitions; the new count {count} must be larger",
                    meta.partitions
                )));
            }
            meta.partitions = count;
            Ok(())
        })
        .await
    }

    async fn alter_configs(
        &self,
        name: &str,
        changes: Vec<ConfigChange>,
        replace_all: bool,
    ) -> Result<TopicMeta> {
        self.change_topic(name, |meta| {
            if replace_all {
                meta.configs.clear();
            }
            for change in &changes {
                match &change.value {
                    Some(value) => meta.configs.insert(change.key.clone(), value.clone()),
                    None => meta.configs.remove(&change.key),
                };
            }
            Ok(())
        })
        .await
    }
}
