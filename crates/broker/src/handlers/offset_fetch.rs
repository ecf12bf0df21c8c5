//! OffsetFetch: committed offsets from the OffsetStore, one group (v1-7) or several (v8+).
//! A partition never committed answers offset -1; no topic list means every committed one.
//! With `require_stable` (read_committed consumers), a partition whose offset an open
//! transaction is about to commit answers UNSTABLE_OFFSET_COMMIT, and the client retries.
//!
//! ACLs: DESCRIBE on the group, else GROUP_AUTHORIZATION_FAILED; then DESCRIBE on each topic,
//! else a topic asked for by name answers TOPIC_AUTHORIZATION_FAILED and, when every topic is
//! asked for, it is left out (as if nothing were committed there).

use std::collections::HashSet;

use kafka_protocol::messages::offset_fetch_response::{
    OffsetFetchResponseGroup, OffsetFetchResponsePartition, OffsetFetchResponsePartitions,
    OffsetFetchResponseTopic, OffsetFetchResponseTopics,
};
pub(super) use kafka_protocol::messages::OffsetFetchRequest;
use kafka_protocol::messages::{GroupId, OffsetFetchResponse, TopicName};
use skiff_coordinator::AnyGroup;
use skiff_protocol::ErrorCode;
use skiff_storage::{CommittedOffset, TopicPartition};

use super::{str_bytes, Operation, RequestContext, ResourceType};
use crate::{errors, groups, transactions, Broker};

/// v8 asks for several groups at once.
const BATCHED_VERSION: i16 = 8;
/// v2+ report group-level errors in the response (v1: per partition only).
const GROUP_ERROR_VERSION: i16 = 2;
/// v5+ return the committed leader epoch.
const LEADER_EPOCH_VERSION: i16 = 5;

/// One topic's answer: (partition, committed offset or `None`).
type TopicOffsets = (String, Vec<(i32, Option<CommittedOffset>)>);

/// Partitions of a group whose offsets an open transaction will commit: (topic, partition).
type Unstable = HashSet<(String, i32)>;

/// Partitions answered with an error and offset -1 instead of what is committed.
#[derive(Default)]
struct Withheld {
    /// Offsets an open transaction is about to commit: UNSTABLE_OFFSET_COMMIT.
    unstable: Unstable,
    /// Topics asked for by name that the principal may not DESCRIBE.
    denied: HashSet<String>,
}

impl Withheld {
    fn error(&self, topic: &str, partition: i32) -> Option<i16> {
        if self.denied.contains(topic) {
            Some(ErrorCode::TopicAuthorizationFailed.code())
        } else if self.unstable.contains(&(topic.to_owned(), partition)) {
            Some(ErrorCode::UnstableOffsetCommit.code())
        } else {
            None
        }
    }
}

pub(super) async fn handle(
    broker: &Broker,
    version: i16,
    request: OffsetFetchRequest,
    context: &RequestContext<'_>,
) -> OffsetFetchResponse {
    let require_stable = request.require_stable;
    if version >= BATCHED_VERSION {
        let mut groups = Vec::with_capacity(request.groups.len());
        for group in request.groups {
            let wanted = group.topics.map(|topics| {
                topics
                    .into_iter()
                    .map(|topic| (topic.name.0.to_string(), topic.partition_indexes))
                    .collect()
            });
            let member = group.member_id.as_ref().map(|id| (id.as_str(), group.member_epoch));
            let found =
                fetch_group(broker, context, &group.group_id, member, wanted, require_stable).await;
            groups.push(batched_answer(group.group_id, found));
        }
        return OffsetFetchResponse::default().with_groups(groups);
    }
    let wanted = request.topics.map(|topics| {
        topics
            .into_iter()
            .map(|topic| (topic.name.0.to_string(), topic.partition_indexes))
            .collect()
    });
    let group_id = request.group_id.0.to_string();
    let found = fetch_group(broker, context, &group_id, None, wanted.clone(), require_stable).await;
    let (code, topics, withheld) = match found {
        Ok((topics, withheld)) => (errors::NONE, topics, withheld),
        Err(code) => (code, empty_answers(wanted), Withheld::default()),
    };
    let topics = topics
        .into_iter()
        .map(|(name, partitions)| {
            let partitions = partitions
                .into_iter()
                .map(|(index, committed)| {
                    let withheld = withheld.error(&name, index);
                    let (offset, epoch, metadata) =
                        describe(if withheld.is_some() { None } else { committed });
                    let answer = OffsetFetchResponsePartition::default()
                        .with_partition_index(index)
                        .with_committed_offset(offset)
                        .with_metadata(Some(str_bytes(metadata)));
                    let answer = if version >= LEADER_EPOCH_VERSION {
                        answer.with_committed_leader_epoch(epoch)
                    } else {
                        answer
                    };
                    if let Some(withheld) = withheld {
                        answer.with_error_code(withheld)
                    } else if version < GROUP_ERROR_VERSION {
                        answer.with_error_code(code)
                    } else {
                        answer
                    }
                })
                .collect();
            OffsetFetchResponseTopic::default()
                .with_name(TopicName(str_bytes(name)))
                .with_partitions(partitions)
        })
        .collect();
    let response = OffsetFetchResponse::default().with_topics(topics);
    if version >= GROUP_ERROR_VERSION {
        response.with_error_code(code)
    } else {
        response
    }
}

/// One group's answer in a v8+ response: a group-level error answers no topics, as Kafka's.
fn batched_answer(
    group_id: GroupId,
    found: Result<(Vec<TopicOffsets>, Withheld), i16>,
) -> OffsetFetchResponseGroup {
    let answer = OffsetFetchResponseGroup::default().with_group_id(group_id);
    let (topics, withheld) = match found {
        Ok(found) => found,
        Err(code) => return answer.with_error_code(code),
    };
    let topics = topics
        .into_iter()
        .map(|(name, partitions)| {
            let partitions = partitions
                .into_iter()
                .map(|(index, committed)| {
                    let withheld = withheld.error(&name, index);
                    let (offset, epoch, metadata) =
                        describe(if withheld.is_some() { None } else { committed });
                    let answer = OffsetFetchResponsePartitions::default()
                        .with_partition_index(index)
                        .with_committed_offset(offset)
                        .with_committed_leader_epoch(epoch)
                        .with_metadata(Some(str_bytes(metadata)));
                    answer.with_error_code(withheld.unwrap_or(errors::NONE))
                })
                .collect();
            OffsetFetchResponseTopics::default()
                .with_name(TopicName(str_bytes(name)))
                .with_partitions(partitions)
        })
        .collect();
    answer.with_topics(topics)
}

/// One group's offsets and what is withheld of them; checks DESCRIBE on the group first, so
/// nothing of a group the principal may not see is read, then the member a v9+ request names.
async fn fetch_group(
    broker: &Broker,
    context: &RequestContext<'_>,
    group_id: &str,
    member: Option<(&str, i32)>,
    wanted: Option<Vec<(String, Vec<i32>)>>,
    require_stable: bool,
) -> Result<(Vec<TopicOffsets>, Withheld), i16> {
    if !context.allows(Operation::Describe, ResourceType::Group, group_id) {
        return Err(ErrorCode::GroupAuthorizationFailed.code());
    }
    if let Some((member_id, member_epoch)) = member {
        check_member(broker, group_id, member_id, member_epoch).await?;
    }
    let unstable = unstable_partitions(broker, group_id, require_stable).await?;
    let may_describe = |name: &str| context.allows(Operation::Describe, ResourceType::Topic, name);
    let Some(wanted) = wanted else {
        let mut topics = fetch(broker, group_id, None).await?;
        topics.retain(|(name, _)| may_describe(name));
        return Ok((topics, Withheld { unstable, denied: HashSet::new() }));
    };
    let (allowed, denied): (Vec<_>, Vec<_>) =
        wanted.into_iter().partition(|(name, _)| may_describe(name));
    let mut topics = fetch(broker, group_id, Some(allowed)).await?;
    let denied_names = denied.iter().map(|(name, _)| name.clone()).collect();
    topics.extend(empty_answers(Some(denied)));
    Ok((topics, Withheld { unstable, denied: denied_names }))
}

/// KIP-848: a consumer-protocol member reads its group's offsets only with its current member
/// epoch (STALE_MEMBER_EPOCH otherwise, and the client asks again after its next heartbeat).
/// Classic groups check nothing here, as in Kafka.
async fn check_member(
    broker: &Broker,
    group_id: &str,
    member_id: &str,
    member_epoch: i32,
) -> Result<(), i16> {
    match groups::view(broker, group_id).await {
        Ok(stored) => match stored.group {
            AnyGroup::Consumer(group) => {
                group.check_fetch(Some(member_id), member_epoch).map_err(groups::code)
            }
            AnyGroup::Classic(_) => Ok(()),
        },
        Err(failure) => Err(failure.code()),
    }
}

/// With `require_stable`, the group's partitions that open transactions hold offsets for.
/// Finding them lists every transaction: OffsetFetch is rare (a consumer asks when it is
/// assigned partitions), and only read_committed consumers ask for stability.
async fn unstable_partitions(
    broker: &Broker,
    group_id: &str,
    require_stable: bool,
) -> Result<Unstable, i16> {
    if !require_stable {
        return Ok(Unstable::new());
    }
    let open = transactions::list(broker).await.map_err(|error| {
        tracing::warn!(%error, "listing transactions failed");
        errors::offsets_unreadable()
    })?;
    Ok(open
        .iter()
        .flat_map(|(_, transaction)| &transaction.pending_offsets)
        .filter(|pending| pending.group == group_id)
        .map(|pending| (pending.topic.clone(), pending.partition))
        .collect())
}

/// (offset, leader epoch, metadata) as answered; -1 for a partition never committed.
fn describe(committed: Option<CommittedOffset>) -> (i64, i32, String) {
    match committed {
        Some(committed) => {
            (committed.offset, committed.leader_epoch, committed.metadata.unwrap_or_default())
        }
        None => (-1, -1, String::new()),
    }
}

/// The requested partitions, all uncommitted (for answers carrying a group-level error).
fn empty_answers(wanted: Option<Vec<(String, Vec<i32>)>>) -> Vec<TopicOffsets> {
    wanted
        .unwrap_or_default()
        .into_iter()
        .map(|(name, partitions)| (name, partitions.into_iter().map(|p| (p, None)).collect()))
        .collect()
}

/// A group's committed offsets: of the wanted partitions (uncommitted ones as `None`), or
/// every committed partition when `wanted` is `None`.
async fn fetch(
    broker: &Broker,
    group_id: &str,
    wanted: Option<Vec<(String, Vec<i32>)>>,
) -> Result<Vec<TopicOffsets>, i16> {
    if group_id.is_empty() {
        return Err(ErrorCode::InvalidGroupId.code());
    }
    let partitions: Option<Vec<TopicPartition>> = wanted.as_ref().map(|topics| {
        topics
            .iter()
            .flat_map(|(name, indexes)| {
                indexes.iter().map(|index| TopicPartition::new(name.clone(), *index))
            })
            .collect()
    });
    let committed =
        broker.storage.offsets.committed_offsets(group_id, partitions.as_deref()).await.map_err(
            |error| {
                tracing::warn!(%error, group = %group_id, "reading committed offsets failed");
                errors::offsets_unreadable()
            },
        )?;
    let Some(wanted) = wanted else {
        let mut topics: Vec<TopicOffsets> = Vec::new();
        for (partition, offset) in committed {
            match topics.last_mut() {
                Some((name, partitions)) if *name == partition.topic => {
                    partitions.push((partition.partition, Some(offset)));
                }
                _ => topics
                    .push((partition.topic.clone(), vec![(partition.partition, Some(offset))])),
            }
        }
        return Ok(topics);
    };
    Ok(wanted
        .into_iter()
        .map(|(name, indexes)| {
            let partitions = indexes
                .into_iter()
                .map(|index| {
                    let found = committed
                        .iter()
                        .find(|(partition, _)| {
                            partition.topic == name && partition.partition == index
                        })
                        .map(|(_, offset)| offset.clone());
                    (index, found)
                })
                .collect();
            (name, partitions)
        })
        .collect())
}
