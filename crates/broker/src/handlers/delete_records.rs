//! DeleteRecords: moves a partition's log start; `-1` means "up to the high watermark".
//!
//! ACLs: DELETE on each topic, else its partitions get TOPIC_AUTHORIZATION_FAILED.

use kafka_protocol::messages::delete_records_response::{
    DeleteRecordsPartitionResult, DeleteRecordsTopicResult,
};
pub(super) use kafka_protocol::messages::DeleteRecordsRequest;
use kafka_protocol::messages::DeleteRecordsResponse;
use skiff_protocol::ErrorCode;
use skiff_storage::{StorageError, TopicPartition};

use super::{Operation, RequestContext, ResourceType};
use crate::{errors, Broker};

pub(super) async fn handle(
    broker: &Broker,
    _version: i16,
    request: DeleteRecordsRequest,
    context: &RequestContext<'_>,
) -> DeleteRecordsResponse {
    let mut topics = Vec::with_capacity(request.topics.len());
    for topic in request.topics {
        let allowed = context.allows(Operation::Delete, ResourceType::Topic, &topic.name);
        let mut partitions = Vec::with_capacity(topic.partitions.len());
        for wanted in &topic.partitions {
            if !allowed {
                partitions.push(
                    DeleteRecordsPartitionResult::default()
                        .with_partition_index(wanted.partition_index)
                        .with_error_code(ErrorCode::TopicAuthorizationFailed.code())
                        .with_low_watermark(-1),
                );
                continue;
            }
            let partition = TopicPartition::new(topic.name.0.to_string(), wanted.partition_index);
            let result = DeleteRecordsPartitionResult::default()
                .with_partition_index(wanted.partition_index);
            partitions.push(match delete(broker, &partition, wanted.offset).await {
                Ok(low) => {
                    tracing::info!(%partition, low_watermark = low, "deleted records");
                    result.with_low_watermark(low)
                }
                Err(error) => {
                    result.with_error_code(errors::code_for(&error)).with_low_watermark(-1)
                }
            });
        }
        topics.push(
            DeleteRecordsTopicResult::default().with_name(topic.name).with_partitions(partitions),
        );
    }
    DeleteRecordsResponse::default().with_topics(topics)
}

async fn delete(
    broker: &Broker,
    partition: &TopicPartition,
    offset: i64,
) -> Result<i64, StorageError> {
    let before = match offset {
        -1 => broker.storage.log.watermarks(partition).await?.high,
        offset if offset < 0 => {
            return Err(StorageError::OffsetOutOfRange { offset, log_start: 0, high: 0 })
        }
        offset => offset,
    };
    broker.storage.log.delete_records(partition, before).await
}
