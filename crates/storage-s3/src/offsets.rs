//! `OffsetStore`: one object per consumer group, `offsets/<hex of the group>`, holding all its
//! committed offsets; a commit is a read-modify-write by compare-and-set, so it is all-or-none
//! and two brokers committing for one group never lose each other's partitions.

use std::collections::BTreeMap;

use async_trait::async_trait;
use bytes::Bytes;
use futures::future::try_join_all;
use object_store::path::Path;
use serde::{Deserialize, Serialize};
use skiff_storage::{CommittedOffset, OffsetStore, Result, StorageError, TopicPartition};

use crate::state::{hex, unhex};
use crate::store::WriteError;
use crate::S3Engine;

#[derive(Debug, Clone, Serialize, Deserialize)]
struct StoredOffset {
    offset: i64,
    leader_epoch: i32,
    metadata: Option<String>,
    commit_timestamp_ms: i64,
}

/// A group's offsets: topic -> partition -> offset.
type GroupOffsets = BTreeMap<String, BTreeMap<i32, StoredOffset>>;

impl S3Engine {
    fn offsets_path(&self, group: &str) -> Path {
        self.store.path(&["offsets", &hex(group)])
    }

    async fn read_offsets(&self, group: &str) -> Result<(GroupOffsets, Option<Option<String>>)> {
        match self.store.get(&self.offsets_path(group)).await? {
            None => Ok((GroupOffsets::new(), None)),
            Some(tagged) => {
                let offsets = serde_json::from_slice(&tagged.bytes).map_err(|error| {
                    StorageError::Corrupt(format!(
                        "offsets of group {group} do not decode: {error}"
                    ))
                })?;
                Ok((offsets, Some(tagged.e_tag)))
            }
        }
    }

    /// Changes a group's offsets by compare-and-set, re-reading on conflict.
    async fn change_offsets(&self, group: &str, change: impl Fn(&mut GroupOffsets)) -> Result<()> {
        for _ in 0..crate::MAX_CONFLICTS {
            let (mut offsets, expected) = self.read_offsets(group).await?;
            change(&mut offsets);
            let bytes = serde_json::to_vec(&offsets).map(Bytes::from).map_err(|error| {
                StorageError::Corrupt(format!("offsets do not encode: {error}"))
            })?;
            match self.store.write(&self.offsets_path(group), bytes, expected).await {
                Ok(_) => return Ok(()),
                Err(WriteError::Conflict) => continue,
                Err(WriteError::Failed(error)) => return Err(error),
            }
        }
        Err(crate::too_many_conflicts(&format!("offsets of group {group}")))
    }

    async fn groups_with_offsets(&self) -> Result<Vec<String>> {
        let paths = self.store.list(&self.store.path(&["offsets"])).await?;
        Ok(paths.iter().filter_map(|path| path.filename().and_then(unhex)).collect())
    }

    /// Forgets every group's offsets of a deleted topic.
    pub(crate) async fn forget_topic_offsets(&self, topic: &str) -> Result<()> {
        for group in self.groups_with_offsets().await? {
            let (offsets, _) = self.read_offsets(&group).await?;
            if offsets.contains_key(topic) {
                self.change_offsets(&group, |offsets| {
                    offsets.remove(topic);
                })
                .await?;
            }
        }
        Ok(())
    }
}

#[async_trait]
impl OffsetStore for S3Engine {
    async fn commit_offsets(
        &self,
        group: &str,
        offsets: Vec<(TopicPartition, CommittedOffset)>,
    ) -> Result<()> {
        self.change_offsets(group, |stored| {
            for (partition, offset) in &offsets {
                stored.entry(partition.topic.clone()).or_default().insert(
                    partition.partition,
                    StoredOffset {
                        offset: offset.offset,
                        leader_epoch: offset.leader_epoch,
                        metadata: offset.metadata.clone(),
                        commit_timestamp_ms: offset.commit_timestamp_ms,
                    },
                );
            }
        })
        .await
    }

    async fn committed_offsets(
        &self,
        group: &str,
        partitions: Option<&[TopicPartition]>,
    ) -> Result<Vec<(TopicPartition, CommittedOffset)>> {
        let (stored, _) = self.read_offsets(group).await?;
        let mut found: Vec<(TopicPartition, CommittedOffset)> = stored
            .iter()
            .flat_map(|(topic, partitions)| {
                partitions.iter().map(move |(partition, offset)| {
                    (
                        TopicPartition::new(topic.clone(), *partition),
                        CommittedOffset {
                            offset: offset.offset,
                            leader_epoch: offset.leader_epoch,
                            metadata: offset.metadata.clone(),
                            commit_timestamp_ms: offset.commit_timestamp_ms,
                        },
                    )
                })
            })
            .filter(|(partition, _)| partitions.is_none_or(|wanted| wanted.contains(partition)))
            .collect();
        found.sort_by(|a, b| a.0.cmp(&b.0));
        Ok(found)
    }

    async fn delete_offsets(
        &self,
        group: &str,
        partitions: Option<&[TopicPartition]>,
    ) -> Result<()> {
        self.change_offsets(group, |stored| match partitions {
            None => stored.clear(),
            Some(wanted) => {
                for partition in wanted {
                    if let Some(topic) = stored.get_mut(&partition.topic) {
                        topic.remove(&partition.partition);
                    }
                }
                stored.retain(|_, partitions| !partitions.is_empty());
            }
        })
        .await
    }

    async fn offset_groups(&self) -> Result<Vec<String>> {
        let groups = self.groups_with_offsets().await?;
        let found = try_join_all(groups.into_iter().map(|group| async move {
            let (offsets, _) = self.read_offsets(&group).await?;
            Ok::<_, StorageError>((!offsets.is_empty()).then_some(group))
        }))
        .await?;
        let mut groups: Vec<String> = found.into_iter().flatten().collect();
        groups.sort();
        Ok(groups)
    }
}
