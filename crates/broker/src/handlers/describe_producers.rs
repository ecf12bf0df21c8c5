//! DescribeProducers: the idempotent and transactional producers a partition keeps state for
//! (admin tools use it to find hanging transactions).
//!
//! ACLs: READ on each topic, else its partitions get TOPIC_AUTHORIZATION_FAILED.

use kafka_protocol::messages::describe_producers_request::TopicRequest;
use kafka_protocol::messages::describe_producers_response::{
    PartitionResponse, ProducerState, TopicResponse,
};
pub(super) use kafka_protocol::messages::DescribeProducersRequest;
use kafka_protocol::messages::{DescribeProducersResponse, ProducerId};
use skiff_protocol::ErrorCode;
use skiff_storage::TopicPartition;

use super::{str_bytes, Operation, RequestContext, ResourceType};
use crate::{errors, Broker};

pub(super) async fn handle(
    broker: &Broker,
    _version: i16,
    request: DescribeProducersRequest,
    context: &RequestContext<'_>,
) -> DescribeProducersResponse {
    let mut topics = Vec::with_capacity(request.topics.len());
    for topic in request.topics {
        if !context.allows(Operation::Read, ResourceType::Topic, &topic.name) {
            topics.push(denied(topic));
            continue;
        }
        let mut partitions = Vec::with_capacity(topic.partition_indexes.len());
        for index in &topic.partition_indexes {
            let partition = TopicPartition::new(topic.name.0.to_string(), *index);
            let response = PartitionResponse::default().with_partition_index(*index);
            partitions.push(match broker.storage.log.producers(&partition).await {
                Ok(producers) => response.with_active_producers(
                    producers
                        .into_iter()
                        .map(|producer| {
                            ProducerState::default()
                                .with_producer_id(ProducerId(producer.producer_id))
                                .with_producer_epoch(i32::from(producer.epoch))
                                .with_last_sequence(producer.last_sequence)
                                .with_last_timestamp(-1)
                                .with_current_txn_start_offset(
                                    producer.open_transaction.unwrap_or(-1),
                                )
                        })
                        .collect(),
                ),
                Err(error) => response
                    .with_error_code(errors::code_for(&error))
                    .with_error_message(Some(str_bytes(error.to_string()))),
            });
        }
        topics.push(TopicResponse::default().with_name(topic.name).with_partitions(partitions));
    }
    DescribeProducersResponse::default().with_topics(topics)
}

/// The topic's partitions, each refused with TOPIC_AUTHORIZATION_FAILED.
fn denied(topic: TopicRequest) -> TopicResponse {
    let partitions = topic
        .partition_indexes
        .iter()
        .map(|index| {
            PartitionResponse::default()
                .with_partition_index(*index)
                .with_error_code(ErrorCode::TopicAuthorizationFailed.code())
        })
        .collect();
    TopicResponse::default().with_name(topic.name).with_partitions(partitions)
}
