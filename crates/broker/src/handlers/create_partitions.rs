//! CreatePartitions: grows a topic; shrinking or staying put is INVALID_PARTITIONS.
//!
//! ACLs: ALTER on each topic, else TOPIC_AUTHORIZATION_FAILED.

use kafka_protocol::messages::create_partitions_request::CreatePartitionsTopic;
use kafka_protocol::messages::create_partitions_response::CreatePartitionsTopicResult;
pub(super) use kafka_protocol::messages::CreatePartitionsRequest;
use kafka_protocol::messages::CreatePartitionsResponse;
use skiff_protocol::ErrorCode;
use skiff_storage::StorageError;

use super::{str_bytes, Operation, RequestContext, ResourceType};
use crate::{errors, Broker};

pub(super) async fn handle(
    broker: &Broker,
    _version: i16,
    request: CreatePartitionsRequest,
    context: &RequestContext<'_>,
) -> CreatePartitionsResponse {
    let mut results = Vec::with_capacity(request.topics.len());
    for topic in request.topics {
        if !context.allows(Operation::Alter, ResourceType::Topic, &topic.name) {
            results.push(
                CreatePartitionsTopicResult::default()
                    .with_name(topic.name)
                    .with_error_code(ErrorCode::TopicAuthorizationFailed.code()),
            );
            continue;
        }
        results.push(grow(broker, topic, request.validate_only).await);
    }
    CreatePartitionsResponse::default().with_results(results)
}

async fn grow(
    broker: &Broker,
    topic: CreatePartitionsTopic,
    validate_only: bool,
) -> CreatePartitionsTopicResult {
    let result = CreatePartitionsTopicResult::default().with_name(topic.name.clone());
    let fail = |code: ErrorCode, message: String| {
        CreatePartitionsTopicResult::default()
            .with_name(topic.name.clone())
            .with_error_code(code.code())
            .with_error_message(Some(str_bytes(message)))
    };
    let current = match broker.storage.meta.topic(&topic.name).await {
        Ok(Some(current)) => current,
        Ok(None) => {
            return fail(ErrorCode::UnknownTopicOrPartition, format!("no topic {}", topic.name.0))
        }
        Err(error) => return result.with_error_code(errors::code_for(&error)),
    };
    if topic.count <= current.partitions {
        return fail(
            ErrorCode::InvalidPartitions,
            format!(
                "topic has {} partitions; the new count {} must be larger",
                current.partitions, topic.count
            ),
        );
    }
    if validate_only {
        return result;
    }
    match broker.storage.meta.create_partitions(&topic.name, topic.count).await {
        Ok(meta) => {
            tracing::info!(topic = %meta.name, partitions = meta.partitions, "grew topic");
            result
        }
        Err(StorageError::InvalidArgument(message)) => fail(ErrorCode::InvalidPartitions, message),
        Err(error) => CreatePartitionsTopicResult::default()
            .with_name(topic.name.clone())
            .with_error_code(errors::code_for(&error))
            .with_error_message(Some(str_bytes(error.to_string()))),
    }
}
