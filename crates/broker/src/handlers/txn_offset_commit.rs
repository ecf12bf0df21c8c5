//! TxnOffsetCommit: offsets consumed inside a transaction, kept with the transaction's record
//! and written to the group only if it commits.

use kafka_protocol::messages::txn_offset_commit_response::{
    TxnOffsetCommitResponsePartition, TxnOffsetCommitResponseTopic,
};
pub(super) use kafka_protocol::messages::TxnOffsetCommitRequest;
use kafka_protocol::messages::TxnOffsetCommitResponse;

use crate::transactions::state::PendingOffset;
use crate::transactions::{self, now_ms};
use crate::{errors, groups, Broker};

/// v3+ name the consumer's group member and generation (KIP-447).
const MEMBER_VERSION: i16 = 3;

pub(super) async fn handle(
    broker: &Broker,
    version: i16,
    request: TxnOffsetCommitRequest,
) -> TxnOffsetCommitResponse {
    let id = request.transactional_id.0.to_string();
    let group = request.group_id.0.to_string();
    if version >= MEMBER_VERSION {
        let code = check_member(broker, &request, &group).await;
        if code != errors::NONE {
            return respond(&request, code);
        }
    }
    let offsets: Vec<PendingOffset> = request
        .topics
        .iter()
        .flat_map(|topic| {
            topic.partitions.iter().map(|partition| PendingOffset {
                group: group.clone(),
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
    let code = match transactions::update(broker, &id, |current| {
        Ok((current.add_offsets(producer_id, epoch, offsets.clone(), now)?, ()))
    })
    .await
    {
        Ok(_) => errors::NONE,
        Err(failure) => failure.code(),
    };
    respond(&request, code)
}

/// The group checks of KIP-447: a consumer that lost its partitions in a rebalance (a zombie)
/// cannot commit offsets for them inside a transaction.
async fn check_member(broker: &Broker, request: &TxnOffsetCommitRequest, group_id: &str) -> i16 {
    let member_id = request.member_id.to_string();
    let instance_id = request.group_instance_id.as_ref().map(ToString::to_string);
    let checked = groups::update(broker, group_id, |group, _| {
        group.check_txn_commit(&member_id, instance_id.as_deref(), request.generation_id)
    })
    .await;
    match checked {
        Ok((Ok(()), _)) => errors::NONE,
        Ok((Err(error), _)) => groups::code(error),
        Err(failure) => failure.code(),
    }
}

/// The same code for every partition of the request.
fn respond(request: &TxnOffsetCommitRequest, code: i16) -> TxnOffsetCommitResponse {
    let topics = request
        .topics
        .iter()
        .map(|topic| {
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
