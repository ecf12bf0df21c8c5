//! TxnOffsetCommit: offsets consumed inside a transaction, kept with the transaction's record
//! and written to the group only if it commits.

use kafka_protocol::messages::txn_offset_commit_response::{
    TxnOffsetCommitResponsePartition, TxnOffsetCommitResponseTopic,
};
pub(super) use kafka_protocol::messages::TxnOffsetCommitRequest;
use kafka_protocol::messages::TxnOffsetCommitResponse;

use crate::transactions::state::PendingOffset;
use crate::transactions::{self, now_ms};
use crate::Broker;

pub(super) async fn handle(
    broker: &Broker,
    _version: i16,
    request: TxnOffsetCommitRequest,
) -> TxnOffsetCommitResponse {
    let id = request.transactional_id.0.to_string();
    let group = request.group_id.0.to_string();
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
        Ok(_) => 0,
        Err(failure) => failure.code(),
    };
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
