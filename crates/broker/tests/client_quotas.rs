//! Client quotas at the wire: AlterClientQuotas and DescribeClientQuotas with Kafka's entity
//! filters and checks, and a produce over its quota answered with `throttle_time_ms` while
//! another client's is not. Real clients held to their rates: tests/e2e/test_quotas.py.

mod common;

use common::{call_as as call, start, text};
use kafka_protocol::messages::produce_request::{PartitionProduceData, TopicProduceData};
use kafka_protocol::messages::*;
use tokio::net::TcpStream;

const INVALID_REQUEST: i16 = 42;

fn entity(parts: &[(&str, Option<&str>)]) -> Vec<alter_client_quotas_request::EntityData> {
    parts
        .iter()
        .map(|(entity_type, name)| {
            alter_client_quotas_request::EntityData::default()
                .with_entity_type(text(entity_type))
                .with_entity_name(name.map(text))
        })
        .collect()
}

fn set(
    parts: &[(&str, Option<&str>)],
    key: &str,
    value: f64,
) -> alter_client_quotas_request::EntryData {
    alter_client_quotas_request::EntryData::default().with_entity(entity(parts)).with_ops(vec![
        alter_client_quotas_request::OpData::default().with_key(text(key)).with_value(value),
    ])
}

fn filter(components: &[(&str, i8, Option<&str>)], strict: bool) -> DescribeClientQuotasRequest {
    DescribeClientQuotasRequest::default().with_strict(strict).with_components(
        components
            .iter()
            .map(|(entity_type, match_type, name)| {
                describe_client_quotas_request::ComponentData::default()
                    .with_entity_type(text(entity_type))
                    .with_match_type(*match_type)
                    .with_match(name.map(text))
            })
            .collect(),
    )
}

/// Each matched entry as `type=name` parts (`<default>` for a default) and its values.
fn entries(response: &DescribeClientQuotasResponse) -> Vec<(String, Vec<(String, f64)>)> {
    let mut found: Vec<(String, Vec<(String, f64)>)> = response
        .entries
        .iter()
        .flatten()
        .map(|entry| {
            let entity: Vec<String> = entry
                .entity
                .iter()
                .map(|part| {
                    let name = part.entity_name.as_deref().unwrap_or("<default>");
                    format!("{}={name}", part.entity_type.as_str())
                })
                .collect();
            let values =
                entry.values.iter().map(|value| (value.key.to_string(), value.value)).collect();
            (entity.join(","), values)
        })
        .collect();
    found.sort_by(|a, b| a.0.cmp(&b.0));
    found
}

#[tokio::test]
async fn quotas_are_altered_and_described_with_kafkas_filters() {
    let mut stream = TcpStream::connect(start().await).await.expect("connect");
    let alter = AlterClientQuotasRequest::default().with_entries(vec![
        set(&[("user", Some("alice"))], "producer_byte_rate", 1024.0),
        set(&[("user", Some("alice")), ("client-id", None)], "consumer_byte_rate", 2048.0),
        set(&[("client-id", Some("loader"))], "producer_byte_rate", 4096.0),
        set(&[("client-id", Some("x"))], "request_percentage", 50.0),
        set(&[("client-id", Some("x"))], "connection_creation_rate", 5.0),
        set(&[("ip", Some("10.0.0.1"))], "producer_byte_rate", 1.0),
        set(&[("user", Some("bob"))], "producer_byte_rate", -5.0),
    ]);
    let response = call(&mut stream, &alter, 1, "admin").await;
    let codes: Vec<i16> = response.entries.iter().map(|entry| entry.error_code).collect();
    let invalid = INVALID_REQUEST;
    assert_eq!(codes, vec![0, 0, 0, 0, invalid, invalid, invalid]);

    let all = call(&mut stream, &filter(&[], false), 1, "admin").await;
    assert_eq!(all.error_code, 0);
    assert_eq!(
        entries(&all),
        vec![
            ("client-id=loader".into(), vec![("producer_byte_rate".into(), 4096.0)]),
            ("client-id=x".into(), vec![("request_percentage".into(), 50.0)]),
            ("user=alice".into(), vec![("producer_byte_rate".into(), 1024.0)]),
            ("user=alice,client-id=<default>".into(), vec![("consumer_byte_rate".into(), 2048.0)]),
        ]
    );
    let alice_only = call(&mut stream, &filter(&[("user", 0, Some("alice"))], true), 1, "a").await;
    assert_eq!(entries(&alice_only).len(), 1, "strict: no other part");
    let alice_any = call(&mut stream, &filter(&[("user", 0, Some("alice"))], false), 1, "a").await;
    assert_eq!(entries(&alice_any).len(), 2);
    let defaults = call(&mut stream, &filter(&[("client-id", 1, None)], false), 1, "a").await;
    assert_eq!(entries(&defaults)[0].0, "user=alice,client-id=<default>");
    let named = call(&mut stream, &filter(&[("client-id", 2, None)], true), 1, "a").await;
    assert_eq!(entries(&named).len(), 2, "loader and x");
    assert_eq!(entries(&named)[0].0, "client-id=loader");

    let remove = AlterClientQuotasRequest::default().with_entries(vec![
        alter_client_quotas_request::EntryData::default()
            .with_entity(entity(&[("user", Some("alice"))]))
            .with_ops(vec![alter_client_quotas_request::OpData::default()
                .with_key(text("producer_byte_rate"))
                .with_remove(true)]),
    ]);
    assert_eq!(call(&mut stream, &remove, 1, "admin").await.entries[0].error_code, 0);
    let after = call(&mut stream, &filter(&[("user", 0, Some("alice"))], true), 1, "a").await;
    assert!(entries(&after).is_empty(), "the entity without quotas is gone");
}

fn produce(topic: &str, bytes: usize) -> ProduceRequest {
    let values: Vec<String> = (0..bytes / 100).map(|_| "v".repeat(100)).collect();
    let refs: Vec<&str> = values.iter().map(String::as_str).collect();
    let timestamps: Vec<i64> = (0..refs.len() as i64).collect();
    let batch = skiff_storage::testsuite::batch_with(
        &refs,
        &timestamps,
        kafka_protocol::records::Compression::None,
    );
    ProduceRequest::default().with_acks(-1).with_timeout_ms(1000).with_topic_data(vec![
        TopicProduceData::default().with_name(TopicName(text(topic))).with_partition_data(vec![
            PartitionProduceData::default().with_index(0).with_records(Some(batch.bytes)),
        ]),
    ])
}

#[tokio::test]
async fn a_produce_over_its_quota_is_told_to_wait_and_another_client_is_not() {
    let address = start().await;
    let mut admin = TcpStream::connect(address).await.expect("connect");
    let create = CreateTopicsRequest::default().with_topics(vec![
        create_topics_request::CreatableTopic::default()
            .with_name(TopicName(text("metered")))
            .with_num_partitions(1)
            .with_replication_factor(1),
    ]);
    assert_eq!(call(&mut admin, &create, 7, "admin").await.topics[0].error_code, 0);
    let alter = AlterClientQuotasRequest::default().with_entries(vec![set(
        &[("client-id", Some("slow"))],
        "producer_byte_rate",
        1000.0,
    )]);
    assert_eq!(call(&mut admin, &alter, 1, "admin").await.entries[0].error_code, 0);

    // 50 KB against 1,000 B/s over the ten-second floor of an eleven-second window: five
    // times the quota, so the client is told to wait (at most one window).
    let mut slow = TcpStream::connect(address).await.expect("connect");
    let response = call(&mut slow, &produce("metered", 50_000), 9, "slow").await;
    assert_eq!(response.responses[0].partition_responses[0].error_code, 0, "stored anyway");
    assert!(
        (1..=11_000).contains(&response.throttle_time_ms),
        "throttle {}",
        response.throttle_time_ms
    );
    let mut fast = TcpStream::connect(address).await.expect("connect");
    let response = call(&mut fast, &produce("metered", 50_000), 9, "fast").await;
    assert_eq!(response.throttle_time_ms, 0, "no quota for this client id");
}

#[tokio::test]
async fn a_default_quota_gives_every_client_id_its_own_rate() {
    let address = start().await;
    let mut admin = TcpStream::connect(address).await.expect("connect");
    let create = CreateTopicsRequest::default().with_topics(vec![
        create_topics_request::CreatableTopic::default()
            .with_name(TopicName(text("shared")))
            .with_num_partitions(1)
            .with_replication_factor(1),
    ]);
    assert_eq!(call(&mut admin, &create, 7, "admin").await.topics[0].error_code, 0);
    let alter = AlterClientQuotasRequest::default().with_entries(vec![set(
        &[("client-id", None)],
        "producer_byte_rate",
        1000.0,
    )]);
    assert_eq!(call(&mut admin, &alter, 1, "admin").await.entries[0].error_code, 0);

    // 50 KB is over 1,000 B/s for client a; 6 KB of values (under 1,000 B/s over the
    // ten-second floor, record framing included) is within it for client b, whose rate is
    // its own: a shared rate would hold b to a's 56 KB.
    let mut a = TcpStream::connect(address).await.expect("connect");
    assert!(call(&mut a, &produce("shared", 50_000), 9, "a").await.throttle_time_ms > 0);
    let mut b = TcpStream::connect(address).await.expect("connect");
    assert_eq!(call(&mut b, &produce("shared", 6_000), 9, "b").await.throttle_time_ms, 0);
}

#[tokio::test]
async fn a_client_over_its_request_percentage_is_told_to_wait_and_another_is_not() {
    let address = start().await;
    let mut admin = TcpStream::connect(address).await.expect("connect");
    // A millionth of a thread: any request at all is over it.
    let alter = AlterClientQuotasRequest::default().with_entries(vec![set(
        &[("client-id", Some("busy"))],
        "request_percentage",
        0.000_001,
    )]);
    assert_eq!(call(&mut admin, &alter, 1, "admin").await.entries[0].error_code, 0);

    // Any API is charged the time the broker spent on it, not only Produce and Fetch.
    let mut busy = TcpStream::connect(address).await.expect("connect");
    let metadata = MetadataRequest::default().with_topics(Some(Vec::new()));
    let response = call(&mut busy, &metadata, 9, "busy").await;
    assert!(
        (1..=11_000).contains(&response.throttle_time_ms),
        "throttle {}",
        response.throttle_time_ms
    );
    let mut other = TcpStream::connect(address).await.expect("connect");
    assert_eq!(call(&mut other, &metadata, 9, "other").await.throttle_time_ms, 0);
}
