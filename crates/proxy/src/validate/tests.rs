//! The hook over a real Skiff registry (its REST API served in-process, over HTTP), request
//! splitting, and merging refusals into upstream answers.

use std::sync::Arc;
use std::time::Duration;

use bytes::{Bytes, BytesMut};
use kafka_protocol::messages::produce_request::{PartitionProduceData, TopicProduceData};
use kafka_protocol::messages::produce_response::{PartitionProduceResponse, TopicProduceResponse};
use kafka_protocol::messages::{ApiKey, ProduceRequest, ProduceResponse, TopicName};
use kafka_protocol::protocol::{Decodable, Encodable, StrBytes};
use skiff_protocol::records::{self, BatchFields, Record};
use skiff_registry::{NewSchema, Registry};
use skiff_schema::validator::{CheckError, SchemaSource};
use skiff_schema::{wire, SchemaType};

use super::*;
use crate::rewrite::tests::{decode_response, encode_response};
use crate::rewrite::{produce, RequestInfo};

const USER: &str = r#"{"type":"record","name":"User","fields":[{"name":"age","type":"int"}]}"#;
const VERSION: i16 = 9;

/// A Skiff registry on memory storage, served over HTTP on a free port.
async fn registry() -> (Arc<Registry>, String) {
    let state = skiff_storage_memory::MemoryEngine::storage().state;
    let registry = Arc::new(Registry::new(state));
    let router = skiff_registry::http::router(registry.clone());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let address = listener.local_addr().expect("address");
    tokio::spawn(async move { axum::serve(listener, router).await });
    (registry, format!("http://{address}"))
}

async fn register(registry: &Registry, subject: &str, text: &str) -> i32 {
    let schema = NewSchema {
        schema_type: SchemaType::Avro,
        text: text.to_owned(),
        references: Vec::new(),
        id: None,
        version: None,
    };
    registry.register(subject, schema).await.expect("registers").id
}

fn name(topic: &str) -> TopicName {
    TopicName(StrBytes::from_string(topic.to_owned()))
}

fn framed(id: u32, payload: &[u8]) -> Bytes {
    let mut bytes = wire::encode_header(id, SchemaType::Avro, &[]);
    bytes.extend_from_slice(payload);
    Bytes::from(bytes)
}

/// One uncompressed batch of these values.
fn batch(values: &[Bytes]) -> Bytes {
    let records: Vec<Record> = values
        .iter()
        .zip(0..)
        .map(|(value, offset_delta)| Record {
            offset_delta,
            timestamp: 0,
            key: None,
            value: Some(value.clone()),
            headers: Vec::new(),
        })
        .collect();
    let fields = BatchFields::producerless(records.len(), 0);
    records::encode(&fields, &records, 0).expect("batch encodes")
}

/// A Produce request body: topics, each with (partition, batch).
fn request(acks: i16, topics: &[(&str, Vec<(i32, Bytes)>)]) -> Bytes {
    let topic_data = topics
        .iter()
        .map(|(topic, partitions)| {
            let partition_data = partitions
                .iter()
                .map(|(index, records)| {
                    PartitionProduceData::default()
                        .with_index(*index)
                        .with_records(Some(records.clone()))
                })
                .collect();
            TopicProduceData::default().with_name(name(topic)).with_partition_data(partition_data)
        })
        .collect();
    let request =
        ProduceRequest::default().with_acks(acks).with_timeout_ms(1000).with_topic_data(topic_data);
    let mut out = BytesMut::new();
    request.encode(&mut out, VERSION).expect("request encodes");
    out.freeze()
}

async fn verdict(hook: &SchemaValidation, acks: i16, body: &Bytes) -> ProduceVerdict {
    let view = ProduceView { api_version: VERSION, correlation_id: 7, client_id: None, acks, body };
    hook.check(&view).await
}

/// (topic, partition, error code, record_errors indexes) of an answer, in order.
fn summary(response: &ProduceResponse) -> Vec<(String, i32, i16, Vec<i32>)> {
    let mut found = Vec::new();
    for topic in &response.responses {
        for partition in &topic.partition_responses {
            let indexes = partition.record_errors.iter().map(|error| error.batch_index).collect();
            found.push((topic.name.to_string(), partition.index, partition.error_code, indexes));
        }
    }
    found
}

#[tokio::test]
async fn http_source_reads_schemas_and_subjects_of_a_skiff_registry() {
    let (registry, url) = registry().await;
    let first = register(&registry, "users-value", USER).await;
    let source = HttpSchemaSource::new(&url, Duration::from_secs(5)).expect("source");
    let info = source.subject("users-value").await.expect("subject");
    assert_eq!(info.ids, [first]);
    assert!(info.latest.as_ref().is_some_and(|schema| schema.validate(&[0x54], &[]).is_ok()));
    assert!(source.subject("nobody-value").await.expect("subject").ids.is_empty());
    assert!(source.by_id(first).await.expect("by id").is_some());
    assert!(source.by_id(4242).await.expect("by id").is_none());

    // A subject is re-read once its cache entry is older than the TTL.
    let second = r#"{"type":"record","name":"User","fields":[{"name":"age","type":"int"},
        {"name":"nick","type":["null","string"],"default":null}]}"#;
    let next = register(&registry, "users-value", second).await;
    tokio::time::sleep(http_source::SUBJECT_TTL).await;
    assert_eq!(source.subject("users-value").await.expect("subject").ids, [first, next]);
}

#[tokio::test]
async fn http_source_reports_an_unreachable_registry_as_unavailable() {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let url = format!("http://{}", listener.local_addr().expect("address"));
    drop(listener);
    let source = HttpSchemaSource::new(&url, Duration::from_secs(2)).expect("source");
    let error = source.subject("users-value").await.map(|_| ());
    assert!(matches!(error, Err(CheckError::Unavailable(_))), "{error:?}");
    assert!(HttpSchemaSource::new("ftp://x", Duration::from_secs(1)).is_err());
}

#[tokio::test]
async fn invalid_partitions_are_split_off_and_merged_back_in_request_order() {
    let (registry, url) = registry().await;
    let id = register(&registry, "users-value", USER).await as u32;
    let hook = SchemaValidation::over_http(&url, Duration::from_secs(5)).expect("hook");
    let good = framed(id, &[0x54]);
    let bad = framed(id, &[]);
    let body = request(
        -1,
        &[
            ("users", vec![(0, batch(std::slice::from_ref(&good))), (1, batch(&[good, bad]))]),
            ("free", vec![(0, batch(&[Bytes::from_static(b"no schema")]))]),
        ],
    );
    let ProduceVerdict::Split { body: forwarded, refusals } = verdict(&hook, -1, &body).await
    else {
        panic!("expected a split");
    };
    let forwarded = ProduceRequest::decode(&mut forwarded.clone(), VERSION).expect("decodes");
    let kept: Vec<(String, Vec<i32>)> = forwarded
        .topic_data
        .iter()
        .map(|topic| {
            (topic.name.to_string(), topic.partition_data.iter().map(|p| p.index).collect())
        })
        .collect();
    assert_eq!(kept, [("users".to_owned(), vec![0]), ("free".to_owned(), vec![0])]);
    assert_eq!(forwarded.acks, -1);

    // The upstream answers what it got (in another order); the client gets all three back.
    let upstream = ProduceResponse::default().with_throttle_time_ms(5).with_responses(vec![
        TopicProduceResponse::default()
            .with_name(name("free"))
            .with_partition_responses(vec![PartitionProduceResponse::default().with_index(0)]),
        TopicProduceResponse::default().with_name(name("users")).with_partition_responses(vec![
            PartitionProduceResponse::default().with_index(0).with_base_offset(10),
        ]),
    ]);
    let request_info =
        RequestInfo { api_key: ApiKey::Produce as i16, api_version: VERSION, correlation_id: 7 };
    let frame = encode_response(ApiKey::Produce, VERSION, 7, &upstream);
    let merged = produce::merge(request_info, frame, &refusals).expect("merges");
    let (correlation_id, merged): (i32, ProduceResponse) =
        decode_response(ApiKey::Produce, VERSION, merged);
    assert_eq!(correlation_id, 7);
    assert_eq!(merged.throttle_time_ms, 5);
    assert_eq!(
        summary(&merged),
        [
            ("users".to_owned(), 0, 0, vec![]),
            ("users".to_owned(), 1, ErrorCode::InvalidRecord.code(), vec![1]),
            ("free".to_owned(), 0, 0, vec![]),
        ]
    );
}

#[tokio::test]
async fn a_request_refused_entirely_is_answered_without_upstream() {
    let (registry, url) = registry().await;
    register(&registry, "users-value", USER).await;
    let hook = SchemaValidation::over_http(&url, Duration::from_secs(5)).expect("hook");
    let body = request(1, &[("users", vec![(0, batch(&[framed(999, &[0x54])]))])]);
    let ProduceVerdict::Answer { refusals } = verdict(&hook, 1, &body).await else {
        panic!("expected an answer");
    };
    let request_info =
        RequestInfo { api_key: ApiKey::Produce as i16, api_version: VERSION, correlation_id: 3 };
    let frame = produce::answer(request_info, &refusals).expect("encodes");
    let (correlation_id, answer): (i32, ProduceResponse) =
        decode_response(ApiKey::Produce, VERSION, frame);
    assert_eq!(correlation_id, 3);
    assert_eq!(
        summary(&answer),
        [("users".to_owned(), 0, ErrorCode::InvalidRecord.code(), vec![0])]
    );

    // Valid requests pass untouched; an unreachable registry refuses with a retriable code.
    let valid = request(1, &[("free", vec![(0, batch(&[Bytes::from_static(b"x")]))])]);
    assert_eq!(verdict(&hook, 1, &valid).await, ProduceVerdict::Forward);
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let down = format!("http://{}", listener.local_addr().expect("address"));
    drop(listener);
    let hook = SchemaValidation::over_http(&down, Duration::from_secs(2)).expect("hook");
    let ProduceVerdict::Answer { refusals } = verdict(&hook, 1, &valid).await else {
        panic!("expected an answer");
    };
    let answer = refusals.answer(None);
    assert_eq!(
        summary(&answer),
        [("free".to_owned(), 0, ErrorCode::KafkaStorageError.code(), vec![])]
    );
}
