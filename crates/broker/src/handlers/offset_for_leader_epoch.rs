//! OffsetForLeaderEpoch: there are no leader changes, so there is one epoch (0) whose end is
//! the high watermark. Clients use this to check for log truncation, which cannot happen.
//!
//! ACLs: DESCRIBE on each topic, else its partitions get TOPIC_AUTHORIZATION_FAILED.

use kafka_protocol::messages::offset_for_leader_epoch_response::{
    EpochEndOffset, OffsetForLeaderTopicResult,
};
pub(super) use kafka_protocol::messages::OffsetForLeaderEpochRequest;
use kafka_protocol::messages::OffsetForLeaderEpochResponse;
use skiff_protocol::ErrorCode;
use skiff_storage::TopicPartition;

use super::{Operation, RequestContext, ResourceType};
use crate::{errors, Broker};

pub(super) async fn handle(
    broker: &Broker,
    _version: i16,
    request: OffsetForLeaderEpochRequest,
    context: &RequestContext<'_>,
) -> OffsetForLeaderEpochResponse {
    let mut topics = Vec::with_capacity(request.topics.len());
    for topic in request.topics {
        let allowed = context.allows(Operation::Describe, ResourceType::Topic, &topic.topic);
        let mut partitions = Vec::with_capacity(topic.partitions.len());
        for wanted in &topic.partitions {
            let partition = TopicPartition::new(topic.topic.0.to_string(), wanted.partition);
            let answer = EpochEndOffset::default().with_partition(wanted.partition);
            if !allowed {
                partitions.push(
                    answer
                        .with_error_code(ErrorCode::TopicAuthorizationFailed.code())
                        .with_leader_epoch(-1)
                        .with_end_offset(-1),
                );
                continue;
            }
            partitions.push(match broker.storage.log.watermarks(&partition).await {
                // Epochs after ours have no end yet (UNDEFINED), as in Kafka.
                Ok(_) if wanted.leader_epoch > 0 => {
                    answer.with_leader_epoch(-1).with_end_offset(-1)
                }
                Ok(marks) => answer.with_leader_epoch(0).with_end_offset(marks.high),
                Err(error) => answer
                    .with_error_code(errors::code_for(&error))
                    .with_leader_epoch(-1)
                    .with_end_offset(-1),
            });
        }
        topics.push(
            OffsetForLeaderTopicResult::default()
                .with_topic(topic.topic)
                .with_partitions(partitions),
        );
    }
    OffsetForLeaderEpochResponse::default().with_topics(topics)
}
