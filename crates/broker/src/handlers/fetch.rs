//! Fetch: whole stored batches from each partition, long-polling until `min_bytes` arrive or
//! `max_wait_ms` passes. When the wait ends, what is there is returned at once (a lesson from
//! the reference broker, whose SQL engines kept filling after the deadline).
//!
//! Waiting is woken by appends made through this broker and, for appends made by other brokers
//! on the same storage, by re-reading every [`Broker::poll_interval`].
//!
//! Quotas: the bytes returned are charged to the client's `consumer_byte_rate`; a client over
//! it gets an empty response with `throttle_time_ms` instead (see `quotas.rs`).
//!
//! ACLs: READ on each topic, else its partitions get TOPIC_AUTHORIZATION_FAILED (checked
//! before a topic named by name is looked up, so its existence is not revealed).

use std::time::Duration;

use bytes::{Bytes, BytesMut};
use futures::future::join_all;
use kafka_protocol::messages::fetch_request::{FetchPartition, FetchTopic};
use kafka_protocol::messages::fetch_response::{
    AbortedTransaction, FetchableTopicResponse, PartitionData,
};
pub(super) use kafka_protocol::messages::FetchRequest;
use kafka_protocol::messages::{ApiKey, FetchResponse, ProducerId, TopicName};
use skiff_auth::quota::QuotaKind;
use skiff_protocol::batch::base_offset;
use skiff_protocol::ErrorCode;
use skiff_storage::{ReadResult, TopicMeta, TopicPartition};
use tokio::time::Instant;

use super::{Operation, RequestContext, ResourceType};
use crate::{errors, Broker};

/// Fetch v13 names topics by id instead of by name.
const TOPIC_ID_VERSION: i16 = 13;
/// `isolation_level` of consumers that must not see open or aborted transactions.
const READ_COMMITTED: i8 = 1;

/// A requested topic, resolved once per request.
struct Wanted {
    request: FetchTopic,
    topic: Result<TopicMeta, i16>,
}

pub(super) async fn handle(
    broker: &Broker,
    version: i16,
    request: FetchRequest,
    context: &RequestContext<'_>,
) -> FetchResponse {
    let deadline = Instant::now() + Duration::from_millis(request.max_wait_ms.max(0) as u64);
    let min_bytes = request.min_bytes.max(0) as usize;
    let max_bytes = if request.max_bytes > 0 { request.max_bytes as usize } else { usize::MAX };
    let mut wanted = Vec::with_capacity(request.topics.len());
    for topic in request.topics {
        let resolved = resolve(broker, version, &topic, context).await;
        wanted.push(Wanted { topic: resolved, request: topic });
    }
    let read_committed = request.isolation_level == READ_COMMITTED;
    let mut appends = broker.appends();
    // A shutting-down broker answers waiting fetches with what is there at once, so a long
    // max_wait_ms does not hold up the shutdown.
    let mut stopping = broker.stopping();
    let mut waiting = None;
    loop {
        appends.borrow_and_update();
        let (responses, bytes, failed) = read_all(broker, &wanted, max_bytes, read_committed).await;
        let now = Instant::now();
        if bytes >= min_bytes || failed || now >= deadline || *stopping.borrow() {
            return charged(broker, context, &wanted, responses);
        }
        let pause = broker.poll_interval().min(deadline - now);
        if waiting.is_none() {
            waiting = broker.metrics().map(|metrics| metrics.request_waiting(ApiKey::Fetch));
        }
        tokio::select! {
            _ = appends.changed() => {}
            _ = stopping.changed() => {}
            _ = tokio::time::sleep(pause) => {}
        }
    }
}

/// The response, charged to the client's consumer byte-rate quota: a client over it gets an
/// empty response saying how long to wait (Kafka's rule: the bytes are not sent, and not
/// charged), and its connection is muted that long.
fn charged(
    broker: &Broker,
    context: &RequestContext<'_>,
    wanted: &[Wanted],
    responses: Vec<FetchableTopicResponse>,
) -> FetchResponse {
    let bytes: usize = responses
        .iter()
        .flat_map(|topic| &topic.partitions)
        .filter_map(|data| data.records.as_ref().map(Bytes::len))
        .sum();
    let throttle = context.charge(broker, QuotaKind::ConsumerByteRate, bytes);
    if throttle > 0 {
        context.refund(broker, QuotaKind::ConsumerByteRate, bytes);
        return FetchResponse::default().with_throttle_time_ms(throttle);
    }
    count_fetched(broker, wanted, &responses);
    FetchResponse::default().with_responses(responses)
}

/// Counts the record bytes returned per topic (with `--metrics-listen`).
fn count_fetched(broker: &Broker, wanted: &[Wanted], responses: &[FetchableTopicResponse]) {
    let Some(metrics) = broker.metrics() else { return };
    for (want, response) in wanted.iter().zip(responses) {
        if let Ok(topic) = &want.topic {
            let records = response.partitions.iter().filter_map(|data| data.records.as_ref());
            metrics.fetched(&topic.name, records.map(Bytes::len).sum());
        }
    }
}

async fn resolve(
    broker: &Broker,
    version: i16,
    topic: &FetchTopic,
    context: &RequestContext<'_>,
) -> Result<TopicMeta, i16> {
    let denied = |name: &str| !context.allows(Operation::Read, ResourceType::Topic, name);
    if version < TOPIC_ID_VERSION && denied(&topic.topic) {
        return Err(ErrorCode::TopicAuthorizationFailed.code());
    }
    let found = if version >= TOPIC_ID_VERSION {
        broker.storage.meta.topic_by_id(topic.topic_id).await
    } else {
        broker.storage.meta.topic(&topic.topic).await
    };
    match found {
        Ok(Some(meta)) if denied(&meta.name) => Err(ErrorCode::TopicAuthorizationFailed.code()),
        Ok(Some(meta)) => Ok(meta),
        Ok(None) if version >= TOPIC_ID_VERSION => Err(ErrorCode::UnknownTopicId.code()),
        Ok(None) => Err(ErrorCode::UnknownTopicOrPartition.code()),
        Err(error) => Err(errors::code_for(&error)),
    }
}

/// Reads every partition (concurrently), then fits the results into `max_bytes` in request
/// order. Returns the topic responses, the record bytes included, and whether any partition
/// failed.
async fn read_all(
    broker: &Broker,
    wanted: &[Wanted],
    max_bytes: usize,
    read_committed: bool,
) -> (Vec<FetchableTopicResponse>, usize, bool) {
    let reads = wanted.iter().map(|want| async move {
        let partitions =
            join_all(want.request.partitions.iter().map(|partition| {
                read_partition(broker, want, partition, max_bytes, read_committed)
            }))
            .await;
        (want, partitions)
    });
    let mut total = 0;
    let mut failed = false;
    let mut responses = Vec::with_capacity(wanted.len());
    for (want, partitions) in join_all(reads).await {
        let mut datas = Vec::with_capacity(partitions.len());
        for (data, batches) in partitions {
            failed |= data.error_code != errors::NONE;
            let records = take_within(batches, &mut total, max_bytes);
            datas.push(data.with_records(Some(records)));
        }
        responses.push(
            FetchableTopicResponse::default()
                .with_topic(TopicName(want.request.topic.0.clone()))
                .with_topic_id(want.request.topic_id)
                .with_partitions(datas),
        );
    }
    (responses, total, failed)
}

/// Keeps whole batches while the response stays within `max_bytes`; the very first batch of
/// the response is always kept so a record larger than the limit can still be consumed.
fn take_within(batches: Vec<Bytes>, total: &mut usize, max_bytes: usize) -> Bytes {
    let mut kept: Vec<Bytes> = Vec::with_capacity(batches.len());
    for batch in batches {
        let first_of_response = *total == 0;
        if !first_of_response && *total + batch.len() > max_bytes {
            break;
        }
        *total += batch.len();
        kept.push(batch);
    }
    match kept.len() {
        0 => Bytes::new(),
        1 => kept.pop().unwrap_or_default(),
        _ => {
            let mut joined = BytesMut::with_capacity(kept.iter().map(Bytes::len).sum());
            kept.iter().for_each(|batch| joined.extend_from_slice(batch));
            joined.freeze()
        }
    }
}

async fn read_partition(
    broker: &Broker,
    want: &Wanted,
    request: &FetchPartition,
    max_bytes: usize,
    read_committed: bool,
) -> (PartitionData, Vec<Bytes>) {
    let data = PartitionData::default().with_partition_index(request.partition);
    let topic = match &want.topic {
        Ok(topic) => topic,
        Err(code) => return (data.with_error_code(*code), Vec::new()),
    };
    let partition = TopicPartition::new(topic.name.clone(), request.partition);
    // A sink topic's log is only its table's buffer: consumers see it empty (docs/tables.md).
    let sink_only = crate::tables::config::is_sink_only(&topic.configs);
    let limit = (request.partition_max_bytes.max(0) as usize).min(max_bytes).max(1);
    // Only the watermarks for a sink topic: its records are never returned, so none are read.
    let read = if sink_only {
        broker
            .storage
            .log
            .watermarks(&partition)
            .await
            .map(|watermarks| ReadResult { watermarks, batches: Vec::new() })
    } else {
        broker.storage.log.read(&partition, request.fetch_offset, limit).await
    };
    let ReadResult { watermarks, batches } = match read {
        Ok(read) => read,
        Err(error) => {
            return (
                data.with_error_code(errors::code_for(&error))
                    .with_high_watermark(-1)
                    .with_log_start_offset(-1),
                Vec::new(),
            )
        }
    };
    let data =
        data.with_high_watermark(watermarks.high).with_log_start_offset(watermarks.log_start);
    let data = data.with_last_stable_offset(watermarks.last_stable);
    if request.fetch_offset < watermarks.log_start || request.fetch_offset > watermarks.high {
        return (data.with_error_code(ErrorCode::OffsetOutOfRange.code()), Vec::new());
    }
    if sink_only || !read_committed {
        return (data, batches);
    }
    committed_only(broker, &partition, request.fetch_offset, watermarks.last_stable, data, batches)
        .await
}

/// For read_committed consumers: nothing at or past the last stable offset, and the aborted
/// transactions within what is returned, so the client drops their records.
async fn committed_only(
    broker: &Broker,
    partition: &TopicPartition,
    fetch_offset: i64,
    last_stable: i64,
    data: PartitionData,
    mut batches: Vec<Bytes>,
) -> (PartitionData, Vec<Bytes>) {
    batches.retain(|batch| base_offset(batch).is_some_and(|base| base < last_stable));
    if batches.is_empty() {
        return (data.with_aborted_transactions(Some(Vec::new())), batches);
    }
    match broker.storage.log.aborted_transactions(partition, fetch_offset, last_stable).await {
        Ok(aborted) => {
            let aborted = aborted
                .into_iter()
                .map(|txn| {
                    AbortedTransaction::default()
                        .with_producer_id(ProducerId(txn.producer_id))
                        .with_first_offset(txn.first_offset)
                })
                .collect();
            (data.with_aborted_transactions(Some(aborted)), batches)
        }
        Err(error) => (data.with_error_code(errors::code_for(&error)), Vec::new()),
    }
}
