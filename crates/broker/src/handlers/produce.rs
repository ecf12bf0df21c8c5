//! Produce: validate each partition's record batches (magic v2, CRC, size, schema) and append
//! them as they came. Partitions of one request are appended concurrently; one partition's
//! failure never fails another's.
//!
//! Quotas: the request's record bytes are charged to the client's `producer_byte_rate`; over
//! it, the response carries `throttle_time_ms` and the connection is muted that long.
//!
//! ACLs: WRITE on each topic (TOPIC_AUTHORIZATION_FAILED, per topic, before its existence is
//! revealed) and, for a transactional producer, WRITE on its transactional id
//! (TRANSACTIONAL_ID_AUTHORIZATION_FAILED on every partition).
//!
//! A request goes in three steps, so that requests pipelined on one connection share the
//! engine's writes while a producer's batches keep their order (connection.rs): check every
//! partition; when the request before has queued its appends, queue ours
//! ([`skiff_storage::LogStore::queue_append`]) and let the next request queue; then wait for
//! the outcomes.

use bytes::{Bytes, BytesMut};
use futures::future::join_all;
use kafka_protocol::messages::produce_request::{PartitionProduceData, TopicProduceData};
use kafka_protocol::messages::produce_response::{PartitionProduceResponse, TopicProduceResponse};
pub(super) use kafka_protocol::messages::ProduceRequest;
use kafka_protocol::messages::{ProduceResponse, TopicName};
use skiff_auth::quota::QuotaKind;
use skiff_metrics::Refusal;
use skiff_protocol::batch::{self, set_log_append_time, BatchError};
use skiff_protocol::produce::{code_for_batch_error, refuse_partition, refuse_records};
use skiff_protocol::ErrorCode;
use skiff_storage::{Batch, QueuedAppend, TopicMeta, TopicPartition};
use tracing::debug;

use super::{str_bytes, Operation, RequestContext, ResourceType};
use crate::{errors, topic_config, Broker};

/// Produce v13 names topics by id instead of by name.
const TOPIC_ID_VERSION: i16 = 13;

pub(super) async fn handle(
    broker: &Broker,
    version: i16,
    request: ProduceRequest,
    context: &RequestContext<'_>,
) -> Option<ProduceResponse> {
    let acks = request.acks;
    let bytes: usize = request
        .topic_data
        .iter()
        .flat_map(|topic| &topic.partition_data)
        .filter_map(|data| data.records.as_ref().map(Bytes::len))
        .sum();
    let transactional_id = request.transactional_id.as_deref().filter(|id| !id.is_empty());
    let denied_transaction = transactional_id
        .is_some_and(|id| !context.allows(Operation::Write, ResourceType::TransactionalId, id));
    let responses = if denied_transaction {
        context.append_turn.pass();
        let code = ErrorCode::TransactionalIdAuthorizationFailed.code();
        request.topic_data.into_iter().map(|topic| refuse_topic(topic, code, None)).collect()
    } else if (-1..=1).contains(&acks) {
        let topics = join_all(
            request
                .topic_data
                .into_iter()
                .map(|topic| check_topic(broker, version, topic, context)),
        )
        .await;
        context.append_turn.wait().await;
        let queued = join_all(topics.into_iter().map(|topic| queue_topic(broker, topic))).await;
        context.append_turn.pass();
        join_all(queued.into_iter().map(|topic| answer_topic(broker, topic))).await
    } else {
        context.append_turn.pass();
        request
            .topic_data
            .into_iter()
            .map(|topic| refuse_topic(topic, ErrorCode::InvalidRequiredAcks.code(), None))
            .collect()
    };
    // Charged after the append, as Kafka does: the records are stored either way.
    let throttle = context.charge(broker, QuotaKind::ProducerByteRate, bytes);
    // acks=0: the producer does not read a response, so none is sent (the mute still holds).
    (acks != 0).then(|| {
        ProduceResponse::default().with_responses(responses).with_throttle_time_ms(throttle)
    })
}

/// One topic of the request, at some step: its partitions checked, queued, or answered.
struct TopicStep<P> {
    name: TopicName,
    topic_id: uuid::Uuid,
    partitions: Vec<Result<P, PartitionProduceResponse>>,
}

/// A partition's batches, checked and ready to append.
struct Checked {
    partition: TopicPartition,
    batches: Vec<Batch>,
    /// The LogAppendTime they were stamped with (-1: CreateTime).
    append_time: i64,
}

/// A partition's append, queued.
struct Queued {
    partition: TopicPartition,
    /// Bytes and records appended, for the metrics.
    size: (usize, u64),
    append_time: i64,
    outcome: QueuedAppend,
}

async fn check_topic(
    broker: &Broker,
    version: i16,
    topic: TopicProduceData,
    context: &RequestContext<'_>,
) -> Result<TopicStep<Checked>, TopicProduceResponse> {
    let denied = |name: &str| !context.allows(Operation::Write, ResourceType::Topic, name);
    if version < TOPIC_ID_VERSION && denied(&topic.name) {
        return Err(refuse_topic(topic, ErrorCode::TopicAuthorizationFailed.code(), None));
    }
    let found = if version >= TOPIC_ID_VERSION {
        broker.storage.meta.topic_by_id(topic.topic_id).await
    } else {
        broker.storage.meta.topic(&topic.name).await
    };
    let meta = match found {
        Ok(Some(meta)) if denied(&meta.name) => {
            return Err(refuse_topic(topic, ErrorCode::TopicAuthorizationFailed.code(), None))
        }
        Ok(Some(meta)) => meta,
        Ok(None) => {
            let code = if version >= TOPIC_ID_VERSION {
                ErrorCode::UnknownTopicId
            } else {
                ErrorCode::UnknownTopicOrPartition
            };
            return Err(refuse_topic(topic, code.code(), None));
        }
        Err(error) => {
            return Err(refuse_topic(topic, errors::code_for(&error), Some(error.to_string())))
        }
    };
    let partitions =
        join_all(topic.partition_data.into_iter().map(|data| check_partition(broker, &meta, data)))
            .await;
    Ok(TopicStep { name: topic.name, topic_id: topic.topic_id, partitions })
}

async fn check_partition(
    broker: &Broker,
    topic: &TopicMeta,
    data: PartitionProduceData,
) -> Result<Checked, PartitionProduceResponse> {
    let refuse = |code: ErrorCode, message: String| refuse_partition(data.index, code, message);
    if data.index < 0 || data.index >= topic.partitions {
        return Err(refuse(
            ErrorCode::UnknownTopicOrPartition,
            format!("no partition {}", data.index),
        ));
    }
    let records = data.records.unwrap_or_default();
    let batches = match batch::split_batches(&records) {
        Ok(batches) => batches,
        Err(error) => {
            debug!(topic = %topic.name, partition = data.index, %error, "refused batch");
            return Err(refuse(code_for_batch_error(&error), error.to_string()));
        }
    };
    if batches.iter().any(|batch| batch.header.is_control()) {
        // Markers are the coordinator's: a client's would end or abort others' transactions.
        debug!(topic = %topic.name, partition = data.index, "refused a client's control batch");
        return Err(refuse(
            ErrorCode::InvalidRecord,
            "clients may not write control batches (transaction markers)".to_owned(),
        ));
    }
    let max_bytes = topic_config::effective(&topic.configs, "max.message.bytes")
        .and_then(|value| value.parse::<usize>().ok())
        .unwrap_or(usize::MAX);
    if let Some(big) = batches.iter().find(|batch| batch.bytes.len() > max_bytes) {
        return Err(refuse(
            ErrorCode::MessageTooLarge,
            format!("batch of {} bytes exceeds max.message.bytes {max_bytes}", big.bytes.len()),
        ));
    }
    let max_inflated = inflate_limit(max_bytes);
    if crate::cleaner::has_policy(topic, "compact") {
        let keyless = match keyless_records(&batches, max_inflated) {
            Ok(keyless) => keyless,
            Err(error) => return Err(refuse(code_for_batch_error(&error), error.to_string())),
        };
        if !keyless.is_empty() {
            debug!(topic = %topic.name, partition = data.index, records = keyless.len(), "refused keyless records");
            let reason =
                format!("compacted topic {} cannot accept a record without a key", topic.name);
            let invalid: Vec<(i32, String)> =
                keyless.into_iter().map(|index| (index, reason.clone())).collect();
            if let Some(metrics) = broker.metrics() {
                metrics.records_refused(Refusal::KeylessInCompactedTopic, invalid.len());
            }
            return Err(refuse_records(data.index, &invalid));
        }
    }
    let checked = broker.validator.check(topic, &batches, max_inflated).await;
    match checked {
        Ok(invalid) if invalid.is_empty() => {}
        Ok(invalid) => {
            let first = invalid.first().map(|(index, reason)| format!("record {index}: {reason}"));
            debug!(topic = %topic.name, partition = data.index, records = invalid.len(), first, "refused records failing the schema");
            if let Some(metrics) = broker.metrics() {
                metrics.records_refused(Refusal::Schema, invalid.len());
            }
            return Err(refuse_records(data.index, &invalid));
        }
        Err(unchecked) => return Err(refuse(unchecked.code, unchecked.message)),
    }
    let log_append_time =
        topic_config::effective(&topic.configs, "message.timestamp.type") == Some("LogAppendTime");
    let (batches, append_time) = if log_append_time {
        let now = now_ms();
        (batches.into_iter().map(|batch| stamp(batch, now)).collect(), now)
    } else {
        (batches, -1)
    };
    let partition = TopicPartition::new(topic.name.clone(), data.index);
    Ok(Checked { partition, batches, append_time })
}

async fn queue_topic(
    broker: &Broker,
    topic: Result<TopicStep<Checked>, TopicProduceResponse>,
) -> Result<TopicStep<Queued>, TopicProduceResponse> {
    let topic = topic?;
    let partitions = join_all(topic.partitions.into_iter().map(|checked| async {
        let Checked { partition, batches, append_time } = checked?;
        let size =
            (batches.iter().map(|batch| batch.bytes.len()).sum::<usize>(), record_count(&batches));
        let outcome = broker.storage.log.queue_append(&partition, batches).await;
        Ok(Queued { partition, size, append_time, outcome })
    }))
    .await;
    Ok(TopicStep { name: topic.name, topic_id: topic.topic_id, partitions })
}

async fn answer_topic(
    broker: &Broker,
    topic: Result<TopicStep<Queued>, TopicProduceResponse>,
) -> TopicProduceResponse {
    let topic = match topic {
        Ok(topic) => topic,
        Err(refused) => return refused,
    };
    let partitions = join_all(topic.partitions.into_iter().map(|queued| async {
        match queued {
            Ok(queued) => answer_partition(broker, queued).await,
            Err(refused) => refused,
        }
    }))
    .await;
    TopicProduceResponse::default()
        .with_name(topic.name)
        .with_topic_id(topic.topic_id)
        .with_partition_responses(partitions)
}

async fn answer_partition(broker: &Broker, queued: Queued) -> PartitionProduceResponse {
    let Queued { partition, size, append_time, outcome } = queued;
    let response = PartitionProduceResponse::default().with_index(partition.partition);
    match outcome.await {
        Ok(appended) => {
            broker.notify_appended();
            if let Some(metrics) = broker.metrics().filter(|_| !appended.duplicate) {
                metrics.produced(&partition.topic, size.0, size.1);
            }
            response
                .with_base_offset(appended.base_offset)
                .with_log_start_offset(appended.log_start)
                .with_log_append_time_ms(append_time)
        }
        Err(error) => {
            tracing::warn!(%partition, %error, "append failed");
            response
                .with_error_code(errors::code_for(&error))
                .with_error_message(Some(str_bytes(error.to_string())))
        }
    }
}

/// Records in `batches`, as their headers count them.
fn record_count(batches: &[Batch]) -> u64 {
    batches.iter().map(|batch| u64::try_from(batch.header.record_count).unwrap_or(0)).sum()
}

/// A compacted topic keeps the newest record per key, so every record needs a key (Kafka
/// refuses keyless records there with INVALID_RECORD too). Returns the index, within its
/// batch, of every keyless record: the indexes Kafka reports per record (KIP-467).
fn keyless_records(batches: &[Batch], limit: usize) -> Result<Vec<i32>, BatchError> {
    let mut keyless = Vec::new();
    for batch in batches {
        let decoded = skiff_protocol::records::decode_within(batch, limit)?;
        let indexes = decoded.iter().zip(0..).filter(|(record, _)| record.key.is_none());
        keyless.extend(indexes.map(|(_, index)| index));
    }
    Ok(keyless)
}

/// How far a batch may inflate when the broker must look at its records: 16 times the topic's
/// `max.message.bytes` (which bounds the compressed batch), at least 16 MiB. Clients cap a
/// batch's uncompressed size near their request size (1 MiB by default), so real batches stay
/// far below, while a compression bomb is refused before it costs more than this.
fn inflate_limit(max_message_bytes: usize) -> usize {
    max_message_bytes.max(1024 * 1024).saturating_mul(16)
}

/// Rewrites a batch for a LogAppendTime topic (a copy: request buffers are shared).
fn stamp(batch: Batch, now: i64) -> Batch {
    let mut bytes = BytesMut::from(&batch.bytes[..]);
    set_log_append_time(&mut bytes, now);
    let bytes: Bytes = bytes.freeze();
    let mut header = batch.header;
    header.max_timestamp = now;
    header.attributes |= 0x08;
    Batch { header, bytes }
}

fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|elapsed| elapsed.as_millis() as i64)
        .unwrap_or(0)
}

fn refuse_topic(
    topic: TopicProduceData,
    code: i16,
    message: Option<String>,
) -> TopicProduceResponse {
    let partitions = topic
        .partition_data
        .iter()
        .map(|data| {
            PartitionProduceResponse::default()
                .with_index(data.index)
                .with_error_code(code)
                .with_error_message(message.clone().map(str_bytes))
        })
        .collect();
    TopicProduceResponse::default()
        .with_name(TopicName(topic.name.0))
        .with_topic_id(topic.topic_id)
        .with_partition_responses(partitions)
}
