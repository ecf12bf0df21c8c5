//! Committed consumer-group offsets: OffsetFetch and OffsetCommit, nothing more.
//!
//! `skiff consume --group` commits as a "simple" consumer (generation -1, no member id), which
//! Kafka allows for a group with no active members; joining a group (JoinGroup/SyncGroup) and
//! sharing partitions is left to real consumer clients.

use std::collections::BTreeMap;

use anyhow::bail;
use kafka_protocol::messages::offset_commit_request::{
    OffsetCommitRequestPartition, OffsetCommitRequestTopic,
};
use kafka_protocol::messages::offset_fetch_request::OffsetFetchRequestTopic;
use kafka_protocol::messages::{ApiKey, GroupId, OffsetCommitRequest, OffsetFetchRequest};
use kafka_protocol::protocol::StrBytes;

use super::lookups::topic_name;
use super::{errors, Client};

/// OffsetFetch v8 moved to a list of groups; v1-7 name one group, which is all we need.
const MAX_OFFSET_FETCH_VERSION: i16 = 7;

/// Fails clearly when the broker cannot store group offsets at all.
pub(crate) fn require_group_support(client: &Client) -> anyhow::Result<()> {
    if !client.supports(ApiKey::OffsetCommit) || !client.supports(ApiKey::OffsetFetch) {
        bail!("consumer groups need a broker that supports OffsetCommit");
    }
    Ok(())
}

fn group_id(group: &str) -> GroupId {
    GroupId(StrBytes::from_string(group.to_owned()))
}

/// The group's committed offset per partition; `None` where nothing was committed yet.
pub(crate) async fn committed_offsets(
    client: &mut Client,
    group: &str,
    topic: &str,
    partitions: &[i32],
) -> anyhow::Result<BTreeMap<i32, Option<i64>>> {
    let version = client.version::<OffsetFetchRequest>(MAX_OFFSET_FETCH_VERSION)?;
    let wanted = OffsetFetchRequestTopic::default()
        .with_name(topic_name(topic))
        .with_partition_indexes(partitions.to_vec());
    let request = OffsetFetchRequest::default()
        .with_group_id(group_id(group))
        .with_topics(Some(vec![wanted]));
    let response = client.send(request, version).await?;
    errors::check(response.error_code, None, &format!("fetching offsets of group {group}"))?;
    let mut committed: BTreeMap<i32, Option<i64>> =
        partitions.iter().map(|&partition| (partition, None)).collect();
    for answered in response.topics.iter().filter(|answered| answered.name.as_str() == topic) {
        for partition in &answered.partitions {
            let what = format!(
                "fetching the offset of group {group} on {topic}/{}",
                partition.partition_index
            );
            errors::check(partition.error_code, None, &what)?;
            let offset = (partition.committed_offset >= 0).then_some(partition.committed_offset);
            committed.insert(partition.partition_index, offset);
        }
    }
    Ok(committed)
}

/// Commits `positions` (the next offset to read, per partition) for the group.
pub(crate) async fn commit_offsets(
    client: &mut Client,
    group: &str,
    topic: &str,
    positions: &BTreeMap<i32, i64>,
) -> anyhow::Result<()> {
    let version = client.version::<OffsetCommitRequest>(i16::MAX)?;
    let partitions = positions
        .iter()
        .map(|(&partition, &offset)| {
            OffsetCommitRequestPartition::default()
                .with_partition_index(partition)
                .with_committed_offset(offset)
        })
        .collect();
    let request = OffsetCommitRequest::default()
        .with_group_id(group_id(group))
        .with_generation_id_or_member_epoch(-1)
        .with_topics(vec![OffsetCommitRequestTopic::default()
            .with_name(topic_name(topic))
            .with_partitions(partitions)]);
    let response = client.send(request, version).await?;
    for answered in &response.topics {
        for partition in &answered.partitions {
            let what = format!("committing group {group} on {topic}/{}", partition.partition_index);
            errors::check(partition.error_code, None, &what)?;
        }
    }
    Ok(())
}
