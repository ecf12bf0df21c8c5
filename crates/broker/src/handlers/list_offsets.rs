//! ListOffsets: earliest (-2), latest (-1), max timestamp (-3), earliest-local (-4, the same
//! as earliest: there is no tiered storage), latest-tiered (-5, the same as latest), or the
//! first record at or after a timestamp.
//!
//! ACLs: DESCRIBE on each topic, else its partitions get TOPIC_AUTHORIZATION_FAILED.

use futures::future::join_all;
use kafka_protocol::messages::list_offsets_request::{ListOffsetsPartition, ListOffsetsTopic};
use kafka_protocol::messages::list_offsets_response::{
    ListOffsetsPartitionResponse, ListOffsetsTopicResponse,
};
pub(super) use kafka_protocol::messages::ListOffsetsRequest;
use kafka_protocol::messages::ListOffsetsResponse;
use skiff_protocol::ErrorCode;
use skiff_storage::{StorageError, TimestampOffset, TopicPartition};

use super::{Operation, RequestContext, ResourceType};
use crate::{errors, Broker};

const LATEST: i64 = -1;
const EARLIEST: i64 = -2;
const MAX_TIMESTAMP: i64 = -3;
const EARLIEST_LOCAL: i64 = -4;
const LATEST_TIERED: i64 = -5;
/// `isolation_level` of consumers that must not see open or aborted transactions.
const READ_COMMITTED: i8 = 1;

pub(super) async fn handle(
    broker: &Broker,
    version: i16,
    request: ListOffsetsRequest,
    context: &RequestContext<'_>,
) -> ListOffsetsResponse {
    let committed = request.isolation_level == READ_COMMITTED;
    let topics = join_all(request.topics.into_iter().map(|topic| {
        let allowed = context.allows(Operation::Describe, ResourceType::Topic, &topic.name);
        async move {
            if allowed {
                list_topic(broker, version, committed, topic).await
            } else {
                refuse_topic(topic, ErrorCode::TopicAuthorizationFailed.code())
            }
        }
    }))
    .await;
    ListOffsetsResponse::default().with_topics(topics)
}

async fn list_topic(
    broker: &Broker,
    version: i16,
    committed: bool,
    topic: ListOffsetsTopic,
) -> ListOffsetsTopicResponse {
    let partitions = join_all(
        topic
            .partitions
            .iter()
            .map(|partition| list_partition(broker, version, committed, &topic.name, partition)),
    )
    .await;
    ListOffsetsTopicResponse::default().with_name(topic.name).with_partitions(partitions)
}

fn refuse_topic(topic: ListOffsetsTopic, code: i16) -> ListOffsetsTopicResponse {
    let partitions = topic
        .partitions
        .iter()
        .map(|partition| {
            ListOffsetsPartitionResponse::default()
                .with_partition_index(partition.partition_index)
                .with_error_code(code)
                .with_timestamp(-1)
                .with_offset(-1)
        })
        .collect();
    ListOffsetsTopicResponse::default().with_name(topic.name).with_partitions(partitions)
}

async fn list_partition(
    broker: &Broker,
    version: i16,
    committed: bool,
    topic: &str,
    request: &ListOffsetsPartition,
) -> ListOffsetsPartitionResponse {
    let response =
        ListOffsetsPartitionResponse::default().with_partition_index(request.partition_index);
    // The leader epoch exists from v4 on; the codec refuses it earlier.
    let response = if version >= 4 { response.with_leader_epoch(0) } else { response };
    let partition = TopicPartition::new(topic, request.partition_index);
    match find(broker, &partition, request.timestamp, committed).await {
        Ok(Some(found)) => response.with_timestamp(found.timestamp).with_offset(found.offset),
        Ok(None) => response.with_timestamp(-1).with_offset(-1),
        Err(error) => {
            let code = match error {
                StorageError::NotFound(_) => ErrorCode::UnknownTopicOrPartition.code(),
                other => errors::code_for(&other),
            };
            response.with_error_code(code).with_timestamp(-1).with_offset(-1)
        }
    }
}

async fn find(
    broker: &Broker,
    partition: &TopicPartition,
    timestamp: i64,
    committed: bool,
) -> Result<Option<TimestampOffset>, StorageError> {
    let log = &broker.storage.log;
    let at = |offset| Some(TimestampOffset { timestamp: -1, offset });
    match timestamp {
        // read_committed consumers' "latest" is the last stable offset.
        LATEST | LATEST_TIERED if committed => Ok(at(log.watermarks(partition).await?.last_stable)),
        LATEST | LATEST_TIERED => Ok(at(log.watermarks(partition).await?.high)),
        EARLIEST | EARLIEST_LOCAL => Ok(at(log.watermarks(partition).await?.log_start)),
        MAX_TIMESTAMP => log.max_timestamp(partition).await,
        other if other < 0 => Err(StorageError::InvalidArgument(format!("timestamp {other}"))),
        other => log.offset_for_time(partition, other).await,
    }
}
