use async_trait::async_trait;
use skiff_storage::{CommittedOffset, OffsetStore, Result, TopicPartition};

use crate::{lock, MemoryEngine};

/// Committed offsets keyed by (group, topic, partition), so one group's are a key range.
pub(crate) type Offsets = std::collections::BTreeMap<(String, String, i32), CommittedOffset>;

fn key(group: &str, partition: &TopicPartition) -> (String, String, i32) {
    (group.to_owned(), partition.topic.clone(), partition.partition)
}

fn of_group<'a>(
    offsets: &'a Offsets,
    group: &'a str,
) -> impl Iterator<Item = (TopicPartition, &'a CommittedOffset)> + 'a {
    offsets
        .range((group.to_owned(), String::new(), i32::MIN)..)
        .take_while(move |((owner, _, _), _)| owner == group)
        .map(|((_, topic, partition), offset)| {
            (TopicPartition::new(topic.clone(), *partition), offset)
        })
}

impl MemoryEngine {
    /// Forgets every group's offsets of a deleted topic.
    pub(crate) fn forget_topic_offsets(&self, topic: &str) {
        lock(&self.offsets).retain(|(_, offset_topic, _), _| offset_topic != topic);
    }
}

#[async_trait]
impl OffsetStore for MemoryEngine {
    async fn commit_offsets(
        &self,
        group: &str,
        offsets: Vec<(TopicPartition, CommittedOffset)>,
    ) -> Result<()> {
        let mut stored = lock(&self.offsets);
        for (partition, offset) in offsets {
            stored.insert(key(group, &partition), offset);
        }
        Ok(())
    }

    async fn committed_offsets(
        &self,
        group: &str,
        partitions: Option<&[TopicPartition]>,
    ) -> Result<Vec<(TopicPartition, CommittedOffset)>> {
        let stored = lock(&self.offsets);
        let mut found: Vec<(TopicPartition, CommittedOffset)> = match partitions {
            None => of_group(&stored, group).map(|(tp, offset)| (tp, offset.clone())).collect(),
            Some(wanted) => wanted
                .iter()
                .filter_map(|tp| {
                    stored.get(&key(group, tp)).map(|offset| (tp.clone(), offset.clone()))
                })
                .collect(),
        };
        found.sort_by(|a, b| a.0.cmp(&b.0));
        found.dedup_by(|a, b| a.0 == b.0);
        Ok(found)
    }

    async fn delete_offsets(
        &self,
        group: &str,
        partitions: Option<&[TopicPartition]>,
    ) -> Result<()> {
        let mut stored = lock(&self.offsets);
        match partitions {
            None => stored.retain(|(owner, _, _), _| owner != group),
            Some(wanted) => {
                for partition in wanted {
                    stored.remove(&key(group, partition));
                }
            }
        }
        Ok(())
    }

    async fn offset_groups(&self) -> Result<Vec<String>> {
        let stored = lock(&self.offsets);
        let mut groups: Vec<String> = stored.keys().map(|(group, _, _)| group.clone()).collect();
        groups.dedup();
        Ok(groups)
    }
}
