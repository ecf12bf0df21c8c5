//! TxnOffsetCommit: offsets consumed inside a transaction, kept with the transaction's record
//! and written to the group only if it commits.
//!
//! ACLs: WRITE on the transactional id, else TRANSACTIONAL_ID_AUTHORIZATION_FAILED everywhere;
//! READ on the group, else GROUP_AUTHORIZATION_FAILED everywhere; READ on each topic, else its
//! partitions get TOPIC_AUTHORIZATION_FAILED (the readable topics' offsets are still kept).

use std::collections::HashSet;

use kafka_protocol::messages::txn_offset_commit_response::{
    TxnOffsetCommitResponsePartition, TxnOffsetCommitResponseTopic,
};
pub(super) use kafka_protocol::messages::TxnOffsetCommitRequest;
use kafka_protocol::messages::TxnOffsetCommitResponse;
use skiff_coordinator::AnyGroup;
use skiff_protocol::ErrorCode;

use super::{Operation, RequestContext, ResourceType};
use crate::transactions::state::PendingOffset;
use crate::transactions::{self, now_ms};
use crate::{errors, groups, Broker};

/// v3+ name the consumer's group member and generation (KIP-447).
const MEMBER_VERSION: i16 = 3;

pub(super) async fn handle(
    broker: &Broker,
    version: i16,
    request: TxnOffsetCommitRequest,
    context: &RequestContext<'_>,
) -> TxnOffsetCommitResponse {
    let id = request.transactional_id.0.to_string();
    let group = request.group_id.0.to_string();
    if !context.allows(Operation::Write, ResourceType::TransactionalId, &id) {
        return respond(&request, |_| ErrorCode::TransactionalIdAuthorizationFailed.code());
    }
    if !context.allows(Operation::Read, ResourceType::Group, &group) {
        return respond(&request, |_| ErrorCode::GroupAuthorizationFailed.code());
    }
    let readable = readable_topics(&request, context);
    let code = commit(broker, version, &request, &id, &group, &readable).await;
    respond(&request, |topic| {
        if readable.contains(topic) {
            code
        } else {
            ErrorCode::TopicAuthorizationFailed.code()
        }
    })
}

/// The request's topics the principal may READ: only their offsets are committed.
fn readable_topics<'a>(
    request: &'a TxnOffsetCommitRequest,
    context: &RequestContext<'_>,
) -> HashSet<&'a str> {
    let named: HashSet<&str> = request.topics.iter().map(|topic| topic.name.0.as_str()).collect();
    named
        .into_iter()
        .filter(|topic| context.allows(Operation::Read, ResourceType::Topic, topic))
        .collect()
}

/// Keeps the offsets of the `readable` topics with the transaction; the code for them. With no
/// readable topic nothing is checked or kept, as in Kafka.
async fn commit(
    broker: &Broker,
    version: i16,
    request: &TxnOffsetCommitRequest,
    id: &str,
    group: &str,
    readable: &HashSet<&str>,
) -> i16 {
    if readable.is_empty() {
        return errors::NONE;
    }
    if version >= MEMBER_VERSION {
        let code = check_member(broker, request, group).await;
        if code != errors::NONE {
            return code;
        }
    }
    let offsets: Vec<PendingOffset> = request
        .topics
        .iter()
        .filter(|topic| readable.contains(topic.name.0.as_str()))
        .flat_map(|topic| {
            topic.partitions.iter().map(|partition| PendingOffset {
                group: group.to_owned(),
                topic: topic.name.0.to_string(),
                partition: partition.partition_index,
                offset: partition.committed_offset,
                leader_epoch: partition.committed_leader_epoch,
                metadata: partition.committed_metadata.as_ref().map(ToString::to_string),
            })
        })
        .collect();
    let (producer_id, epoch) = (request.producer_id.0, request.producer_epoch);
    let now = now_ms();
    match transactions::update(broker, id, |current| {
        Ok((current.add_offsets(producer_id, epoch, offsets.clone(), now)?, ()))
    })
    .await
    {
        Ok(_) => errors::NONE,
        Err(failure) => failure.code(),
    }
}

/// The group checks of KIP-447: a consumer that lost its partitions in a rebalance (a zombie)
/// cannot commit offsets for them inside a transaction.
async fn check_member(broker: &Broker, request: &TxnOffsetCommitRequest, group_id: &str) -> i16 {
    let member_id = request.member_id.to_string();
    let instance_id = request.group_instance_id.as_ref().map(ToString::to_string);
    let generation = request.generation_id;
    let checked = groups::update_any(broker, group_id, |group, _| match group {
        AnyGroup::Classic(group) => {
            group.check_txn_commit(&member_id, instance_id.as_deref(), generation)
        }
        // KIP-848: the generation field carries the member epoch.
        AnyGroup::Consumer(group) => group.check_txn_commit(&member_id, generation),
    })
    .await;
    match checked {
        Ok((Ok(()), _)) => errors::NONE,
        Ok((Err(error), _)) => groups::code(error),
        Err(failure) => failure.code(),
    }
}

/// Every partition of the request with the code for its topic.
fn respond(
    request: &TxnOffsetCommitRequest,
    code_for: impl Fn(&str) -> i16,
) -> TxnOffsetCommitResponse {
    let topics = request
        .topics
        .iter()
        .map(|topic| {
            let code = code_for(topic.name.0.as_str());
            let partitions = topic
                .partitions
                .iter()
                .map(|partition| {
                    TxnOffsetCommitResponsePartition::default()
                        .with_partition_index(partition.partition_index)
                        .with_error_code(code)
                })
                .collect();
            TxnOffsetCommitResponseTopic::default()
                .with_name(topic.name.clone())
                .with_partitions(partitions)
        })
        .collect();
    TxnOffsetCommitResponse::default().with_topics(topics)
}
