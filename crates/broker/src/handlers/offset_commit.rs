//! OffsetCommit: checks the committer against the stored group (a member of the current
//! generation, or a "simple" consumer with generation -1 while the group has no members), then
//! stores the offsets of every valid partition in one OffsetStore commit.
//!
//! ACLs: READ on the group, else every partition gets GROUP_AUTHORIZATION_FAILED; then READ on
//! each topic, else its partitions get TOPIC_AUTHORIZATION_FAILED and the other topics commit.

use std::collections::{HashMap, HashSet};

use kafka_protocol::messages::offset_commit_response::{
    OffsetCommitResponsePartition, OffsetCommitResponseTopic,
};
pub(super) use kafka_protocol::messages::OffsetCommitRequest;
use kafka_protocol::messages::OffsetCommitResponse;
use skiff_coordinator::AnyGroup;
use skiff_protocol::ErrorCode;
use skiff_storage::{CommittedOffset, TopicPartition};

use super::{Operation, RequestContext, ResourceType};
use crate::{errors, groups, Broker};

/// Kafka's `offset.metadata.max.bytes` default.
const MAX_METADATA_BYTES: usize = 4096;
/// v6+ carry the leader epoch, v7+ group.instance.id, v9+ (KIP-848) a consumer-protocol
/// member's epoch in the generation field.
const LEADER_EPOCH_VERSION: i16 = 6;
const INSTANCE_ID_VERSION: i16 = 7;
const MEMBER_EPOCH_VERSION: i16 = 9;

pub(super) async fn handle(
    broker: &Broker,
    version: i16,
    request: OffsetCommitRequest,
    context: &RequestContext<'_>,
) -> OffsetCommitResponse {
    let group_id = request.group_id.0.to_string();
    let (group_code, denied) = match denied_topics(context, &request, &group_id) {
        Ok(denied) => (check_committer(broker, version, &request, &group_id).await, denied),
        Err(code) => (code, HashSet::new()),
    };
    let now = groups::now_ms();
    let mut codes: Vec<Vec<i16>> = Vec::with_capacity(request.topics.len());
    let mut commits = Vec::new();
    let mut committed_at = Vec::new();
    let mut partition_counts: HashMap<String, Option<i32>> = HashMap::new();
    for (topic_index, topic) in request.topics.iter().enumerate() {
        let name = topic.name.0.to_string();
        let topic_denied = denied.contains(&name);
        if group_code == errors::NONE && !topic_denied && !partition_counts.contains_key(&name) {
            let count = match broker.storage.meta.topic(&name).await {
                Ok(found) => found.map(|meta| meta.partitions),
                Err(error) => {
                    tracing::warn!(%error, topic = %name, "topic lookup failed");
                    None
                }
            };
            partition_counts.insert(name.clone(), count);
        }
        let mut topic_codes = Vec::with_capacity(topic.partitions.len());
        for (partition_index, partition) in topic.partitions.iter().enumerate() {
            let known = partition_counts
                .get(&name)
                .copied()
                .flatten()
                .is_some_and(|count| (0..count).contains(&partition.partition_index));
            let metadata_len = partition.committed_metadata.as_ref().map_or(0, |m| m.len());
            let code = if topic_denied {
                ErrorCode::TopicAuthorizationFailed.code()
            } else if group_code != errors::NONE {
                group_code
            } else if !known {
                ErrorCode::UnknownTopicOrPartition.code()
            } else if metadata_len > MAX_METADATA_BYTES {
                ErrorCode::OffsetMetadataTooLarge.code()
            } else {
                let leader_epoch = if version >= LEADER_EPOCH_VERSION {
                    partition.committed_leader_epoch
                } else {
                    -1
                };
                commits.push((
                    TopicPartition::new(name.clone(), partition.partition_index),
                    CommittedOffset {
                        offset: partition.committed_offset,
                        leader_epoch,
                        metadata: partition.committed_metadata.as_ref().map(ToString::to_string),
                        commit_timestamp_ms: now,
                    },
                ));
                committed_at.push((topic_index, partition_index));
                errors::NONE
            };
            topic_codes.push(code);
        }
        codes.push(topic_codes);
    }
    if !commits.is_empty() {
        if let Err(error) = broker.storage.offsets.commit_offsets(&group_id, commits).await {
            tracing::warn!(%error, group = %group_id, "offset commit failed");
            let code = errors::coordinator_code_for(&error);
            for (topic_index, partition_index) in committed_at {
                codes[topic_index][partition_index] = code;
            }
        }
    }
    let topics = request
        .topics
        .iter()
        .zip(codes)
        .map(|(topic, topic_codes)| {
            let partitions = topic
                .partitions
                .iter()
                .zip(topic_codes)
                .map(|(partition, code)| {
                    OffsetCommitResponsePartition::default()
                        .with_partition_index(partition.partition_index)
                        .with_error_code(code)
                })
                .collect();
            OffsetCommitResponseTopic::default()
                .with_name(topic.name.clone())
                .with_partitions(partitions)
        })
        .collect();
    OffsetCommitResponse::default().with_topics(topics)
}

/// The topics the principal may not READ, or the error for every partition when it may not
/// READ the group (then nothing else is looked at).
fn denied_topics(
    context: &RequestContext<'_>,
    request: &OffsetCommitRequest,
    group_id: &str,
) -> Result<HashSet<String>, i16> {
    if !context.allows(Operation::Read, ResourceType::Group, group_id) {
        return Err(ErrorCode::GroupAuthorizationFailed.code());
    }
    Ok(request
        .topics
        .iter()
        .map(|topic| topic.name.0.to_string())
        .filter(|name| !context.allows(Operation::Read, ResourceType::Topic, name))
        .collect())
}

/// The error every partition gets if the committer may not commit for this group.
async fn check_committer(
    broker: &Broker,
    version: i16,
    request: &OffsetCommitRequest,
    group_id: &str,
) -> i16 {
    if group_id.is_empty() {
        return ErrorCode::InvalidGroupId.code();
    }
    let member_id = request.member_id.to_string();
    let instance_id = (version >= INSTANCE_ID_VERSION)
        .then(|| request.group_instance_id.as_ref().map(ToString::to_string))
        .flatten();
    let generation = request.generation_id_or_member_epoch;
    let checked = groups::update_any(broker, group_id, |group, _| match group {
        AnyGroup::Classic(group) => {
            group.check_commit(&member_id, instance_id.as_deref(), generation)
        }
        // KIP-848: the field carries the member epoch.
        AnyGroup::Consumer(group) => {
            group.check_commit(&member_id, generation, version >= MEMBER_EPOCH_VERSION)
        }
    })
    .await;
    match checked {
        Ok((Ok(()), _)) => errors::NONE,
        Ok((Err(error), _)) => groups::code(error),
        Err(failure) => failure.code(),
    }
}
