//! The exposition as Prometheus sees it after recording, and the storage decorator under the
//! conformance suite (it must change nothing but the numbers).

use std::time::Duration;

use kafka_protocol::messages::ApiKey;
use skiff_storage::TopicSpec;
use skiff_storage_memory::MemoryEngine;

use crate::{metered, Metrics, Refusal, Request};

/// The value of the sample named `sample` (with its labels exactly as encoded), if present.
fn sample(text: &str, sample: &str) -> Option<f64> {
    text.lines().find_map(|line| {
        let (name, value) = line.rsplit_once(' ')?;
        (name == sample).then(|| value.parse().ok()).flatten()
    })
}

#[test]
fn requests_are_counted_by_api_version_and_outcome() {
    let metrics = Metrics::new();
    let produce = Request {
        api: ApiKey::Produce,
        version: 9,
        error: 0,
        duration: Duration::from_millis(3),
        request_bytes: 100,
        response_bytes: 40,
    };
    metrics.request(&produce);
    metrics.request(&produce);
    metrics.request(&Request { error: 3, ..produce });
    metrics.response_error(ApiKey::Produce, 3);
    metrics.response_error(ApiKey::Produce, 0);
    metrics.request_refused(ApiKey::Fetch);
    let text = metrics.encode().expect("encodes");
    let total = |error: &str| {
        sample(
            &text,
            &format!("skiff_requests_total{{api=\"Produce\",version=\"9\",error=\"{error}\"}}"),
        )
    };
    assert_eq!(total("NONE"), Some(2.0));
    assert_eq!(total("UNKNOWN_TOPIC_OR_PARTITION"), Some(1.0));
    assert_eq!(
        sample(
            &text,
            "skiff_response_errors_total{api=\"Produce\",error=\"UNKNOWN_TOPIC_OR_PARTITION\"}"
        ),
        Some(1.0),
        "{text}"
    );
    assert_eq!(sample(&text, "skiff_request_bytes_total{api=\"Produce\"}"), Some(300.0));
    assert_eq!(sample(&text, "skiff_response_bytes_total{api=\"Produce\"}"), Some(120.0));
    assert_eq!(sample(&text, "skiff_request_duration_seconds_count{api=\"Produce\"}"), Some(3.0));
    assert_eq!(sample(&text, "skiff_requests_refused_total{api=\"Fetch\"}"), Some(1.0));
}

#[test]
fn the_waiting_gauge_follows_the_guards() {
    let metrics = Metrics::new();
    let fetch = metrics.request_waiting(ApiKey::Fetch);
    let join = metrics.request_waiting(ApiKey::JoinGroup);
    let text = metrics.encode().expect("encodes");
    assert_eq!(sample(&text, "skiff_requests_waiting{api=\"Fetch\"}"), Some(1.0));
    assert_eq!(sample(&text, "skiff_requests_waiting{api=\"JoinGroup\"}"), Some(1.0));
    drop(fetch);
    drop(join);
    let text = metrics.encode().expect("encodes");
    assert_eq!(sample(&text, "skiff_requests_waiting{api=\"Fetch\"}"), Some(0.0));
}

#[test]
fn the_connection_gauge_follows_the_guards() {
    let metrics = Metrics::new();
    let first = metrics.connection_opened();
    let second = metrics.connection_opened();
    drop(first);
    let text = metrics.encode().expect("encodes");
    assert_eq!(sample(&text, "skiff_connections_open"), Some(1.0));
    assert_eq!(sample(&text, "skiff_connections_accepted_total"), Some(2.0));
    drop(second);
    let text = metrics.encode().expect("encodes");
    assert_eq!(sample(&text, "skiff_connections_open"), Some(0.0));
}

#[test]
fn topic_and_event_counters_are_exposed() {
    let metrics = Metrics::new();
    metrics.produced("orders", 500, 10);
    metrics.fetched("orders", 250);
    metrics.fetched("orders", 0);
    metrics.transaction_completed(true);
    metrics.transaction_completed(false);
    metrics.schema_created();
    metrics.records_refused(Refusal::Schema, 2);
    metrics.quota_throttled("producer_byte_rate");
    metrics.authorization_denied("TOPIC");
    metrics.authorization_denied("TOPIC");
    let text = metrics.encode().expect("encodes");
    assert_eq!(sample(&text, "skiff_produced_bytes_total{topic=\"orders\"}"), Some(500.0));
    assert_eq!(sample(&text, "skiff_produced_records_total{topic=\"orders\"}"), Some(10.0));
    assert_eq!(sample(&text, "skiff_fetched_bytes_total{topic=\"orders\"}"), Some(250.0));
    assert_eq!(sample(&text, "skiff_transactions_completed_total{outcome=\"commit\"}"), Some(1.0));
    assert_eq!(sample(&text, "skiff_transactions_completed_total{outcome=\"abort\"}"), Some(1.0));
    assert_eq!(sample(&text, "skiff_registry_schemas_created_total"), Some(1.0));
    assert_eq!(sample(&text, "skiff_records_refused_total{reason=\"schema\"}"), Some(2.0));
    let throttled = "skiff_quota_throttles_total{quota=\"producer_byte_rate\"}";
    assert_eq!(sample(&text, throttled), Some(1.0));
    let denied = "skiff_authorization_denials_total{resource_type=\"TOPIC\"}";
    assert_eq!(sample(&text, denied), Some(2.0));
}

#[test]
fn scraped_counters_are_read_at_each_scrape() {
    let mut metrics = Metrics::new();
    let count = std::sync::Arc::new(std::sync::atomic::AtomicU64::new(1));
    let read = count.clone();
    metrics.add_s3_requests(Box::new(move || {
        vec![("get", read.load(std::sync::atomic::Ordering::Relaxed)), ("put", 0)]
    }));
    let text = metrics.encode().expect("encodes");
    assert_eq!(sample(&text, "skiff_s3_requests_total{kind=\"get\"}"), Some(1.0), "{text}");
    count.store(5, std::sync::atomic::Ordering::Relaxed);
    let text = metrics.encode().expect("encodes");
    assert_eq!(sample(&text, "skiff_s3_requests_total{kind=\"get\"}"), Some(5.0));
    assert_eq!(sample(&text, "skiff_s3_requests_total{kind=\"put\"}"), Some(0.0));
}

#[tokio::test]
async fn storage_calls_are_timed_and_errors_counted() {
    let metrics = Metrics::new();
    let storage = metered(MemoryEngine::storage(), "memory", &metrics);
    let spec = TopicSpec { name: "t".into(), partitions: 1, configs: Default::default() };
    storage.meta.create_topic(spec.clone()).await.expect("created");
    let again = storage.meta.create_topic(spec).await;
    assert!(again.is_err());
    let text = metrics.encode().expect("encodes");
    let count = "skiff_storage_operation_duration_seconds_count{engine=\"memory\",operation=\"meta.create_topic\"}";
    assert_eq!(sample(&text, count), Some(2.0), "{text}");
    let errors = "skiff_storage_errors_total{engine=\"memory\",operation=\"meta.create_topic\",kind=\"already_exists\"}";
    assert_eq!(sample(&text, errors), Some(1.0));
}

mod conformance {
    use super::*;

    skiff_storage::conformance_tests!(async {
        metered(MemoryEngine::storage(), "memory", &Metrics::new())
    });
}
