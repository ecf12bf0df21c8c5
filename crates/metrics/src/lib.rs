//! Prometheus metrics and health endpoints for `skiff broker` and `skiff proxy`
//! (`--metrics-listen`), built on `prometheus-client` (its text encoder writes the exposition
//! format; nothing here formats it by hand).
//!
//! [`Metrics`] owns one registry of metric families, each defined in the module of its concept:
//! - `requests`: Kafka requests by API, version and outcome; latency; bytes; error codes.
//! - `connections`: open connections and connections accepted.
//! - `topics`: record bytes produced and fetched by topic, the topic label capped.
//! - `storage`: [`metered`], a decorator over every storage trait timing each call and counting
//!   its errors by engine and operation.
//! - `events`: transactions completed, schemas created, records refused.
//! - `scraped`: counters another component keeps (S3 requests), read at each scrape.
//! - `names`: Kafka's names for API keys and error codes, the label values.
//! - [`http`]: `/metrics`, `/healthz`, `/readyz` (axum).
//!
//! Code that measures takes an `Option` of [`Metrics`]: without `--metrics-listen` nothing is
//! measured at all, not even the clock read.

mod connections;
mod events;
pub mod http;
mod names;
mod requests;
mod scraped;
mod storage;
mod topics;

#[cfg(test)]
mod tests;

use kafka_protocol::messages::ApiKey;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::registry::Registry;

pub use events::Refusal;
pub use requests::Request;
pub use scraped::Read;
pub use storage::metered;
pub use topics::{MAX_TOPICS, OTHER_TOPICS};

/// Every metric of one process. Built once at start (sources read at scrape time are added
/// before it is shared), then shared as `Arc<Metrics>`; recording takes `&self`.
pub struct Metrics {
    registry: Registry,
    requests: requests::Requests,
    connections: connections::Connections,
    topics: topics::Topics,
    storage: storage::StorageMetrics,
    events: events::Events,
}

impl Default for Metrics {
    fn default() -> Self {
        Self::new()
    }
}

impl Metrics {
    /// Every family registered, under the `skiff_` prefix.
    pub fn new() -> Self {
        let mut registry = Registry::with_prefix("skiff");
        let requests = requests::Requests::register(&mut registry);
        let connections = connections::Connections::register(&mut registry);
        let topics = topics::Topics::register(&mut registry);
        let storage = storage::StorageMetrics::register(&mut registry);
        let events = events::Events::register(&mut registry);
        Self { registry, requests, connections, topics, storage, events }
    }

    /// Adds `skiff_s3_requests_total{kind}`, read from the S3 engine's own request counts at
    /// each scrape.
    pub fn add_s3_requests(&mut self, read: Read) {
        self.registry.register_collector(Box::new(scraped::ScrapedCounters {
            name: "s3_requests",
            help: "Requests the S3 engine made to the object store, by kind",
            label: "kind",
            read,
        }));
    }

    /// The exposition text of every metric.
    pub fn encode(&self) -> Result<String, std::fmt::Error> {
        let mut text = String::with_capacity(16 * 1024);
        prometheus_client::encoding::text::encode(&mut text, &self.registry)?;
        Ok(text)
    }

    /// Records an answered request.
    pub fn request(&self, request: &Request) {
        self.requests.answered(request);
    }

    /// Counts one error code of an answer (0 is not counted).
    pub fn response_error(&self, api: ApiKey, code: i16) {
        self.requests.error_code(api, code);
    }

    /// Counts a request that closed its connection unanswered.
    pub fn request_refused(&self, api: ApiKey) {
        self.requests.refused(api);
    }

    /// Counts a request of `api` as parked (a long poll, a group wait) until the guard is
    /// dropped: `skiff_requests_waiting{api}`.
    pub fn request_waiting(&self, api: ApiKey) -> GaugeGuard {
        self.requests.waiting(api)
    }

    /// Counts an accepted connection, open until the guard is dropped.
    pub fn connection_opened(&self) -> GaugeGuard {
        self.connections.opened()
    }

    /// Counts record batch bytes and records appended to `topic`.
    pub fn produced(&self, topic: &str, bytes: usize, records: u64) {
        self.topics.produced(topic, bytes, records);
    }

    /// Counts record batch bytes returned from `topic`.
    pub fn fetched(&self, topic: &str, bytes: usize) {
        self.topics.fetched(topic, bytes);
    }

    /// Counts a transaction this broker completed.
    pub fn transaction_completed(&self, commit: bool) {
        self.events.transaction_completed(commit);
    }

    /// Counts a schema stored under a new id.
    pub fn schema_created(&self) {
        self.events.schema_created();
    }

    /// Sets the number of consumer groups in storage, as last counted.
    pub fn consumer_groups(&self, count: usize) {
        self.events.consumer_groups(count);
    }

    /// Counts a response throttled for being over the quota named `quota`
    /// (`producer_byte_rate`, `consumer_byte_rate`, `request_percentage`).
    pub fn quota_throttled(&self, quota: &'static str) {
        self.events.quota_throttled(quota);
    }

    /// Counts an operation ACLs denied on a resource of the type (`TOPIC`, `GROUP`, ...).
    pub fn authorization_denied(&self, resource_type: &'static str) {
        self.events.authorization_denied(resource_type);
    }

    /// Counts a log cleaner pass this broker completed.
    pub fn cleaner_pass(&self) {
        self.events.cleaner_pass();
    }

    /// Counts a table commit of `rows` rows to `topic`'s table.
    pub fn table_committed(&self, topic: &str, rows: u64) {
        self.topics.table_committed(topic, rows);
    }

    /// Counts a failure of a table writer of `topic`.
    pub fn table_failed(&self, topic: &str) {
        self.topics.table_failed(topic);
    }

    /// Counts records refused by produce.
    pub fn records_refused(&self, reason: Refusal, count: usize) {
        self.events.records_refused(reason, count);
    }
}

/// Counts something as present (an open connection, a parked request) in a gauge while held:
/// dropping it, however the holder ends (an answer, an error path, a closed connection),
/// counts it gone, so the gauge cannot drift.
#[must_use = "the gauge counts this only while the guard is held"]
pub struct GaugeGuard(Gauge);

impl GaugeGuard {
    pub(crate) fn hold(gauge: Gauge) -> Self {
        gauge.inc();
        Self(gauge)
    }
}

impl Drop for GaugeGuard {
    fn drop(&mut self) {
        self.0.dec();
    }
}
