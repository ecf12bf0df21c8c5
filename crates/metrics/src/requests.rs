//! Kafka requests: how many, by API, version and outcome; how long they took to handle; how
//! many bytes came in and went out; and every error code the answers carried.
//!
//! Every label value is an API name or an error name from [`crate::names`], so the number of
//! series is bounded by Kafka's protocol, not by what clients send.

use std::time::Duration;

use kafka_protocol::messages::ApiKey;
use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{exponential_buckets, Histogram};
use prometheus_client::registry::{Registry, Unit};

use crate::names::{api_name, error_name};
use crate::GaugeGuard;

/// One answered request, as the broker (or proxy) saw it.
#[derive(Debug, Clone, Copy)]
pub struct Request {
    pub api: ApiKey,
    pub version: i16,
    /// The request's outcome: the first non-zero error code of its answer (top level first,
    /// then per topic or partition in answer order), or 0.
    pub error: i16,
    /// From the decoded header to the encoded answer (reading and writing the frame aside).
    pub duration: Duration,
    /// Bytes of the request body (after the request header).
    pub request_bytes: usize,
    /// Bytes of the response body (0 when no answer is sent, e.g. Produce with acks=0).
    pub response_bytes: usize,
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct RequestLabels {
    api: &'static str,
    version: i16,
    error: &'static str,
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ApiLabels {
    api: &'static str,
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ApiErrorLabels {
    api: &'static str,
    error: &'static str,
}

/// Request durations: 100 µs doubling up to ~13 s (long polls and group joins wait for seconds).
fn duration_histogram() -> Histogram {
    Histogram::new(exponential_buckets(0.0001, 2.0, 18))
}

pub(crate) struct Requests {
    total: Family<RequestLabels, Counter>,
    duration: Family<ApiLabels, Histogram, fn() -> Histogram>,
    request_bytes: Family<ApiLabels, Counter>,
    response_bytes: Family<ApiLabels, Counter>,
    error_codes: Family<ApiErrorLabels, Counter>,
    refused: Family<ApiLabels, Counter>,
    waiting: Family<ApiLabels, Gauge>,
}

impl Requests {
    pub(crate) fn register(registry: &mut Registry) -> Self {
        let requests = Self {
            total: Family::default(),
            duration: Family::new_with_constructor(duration_histogram),
            request_bytes: Family::default(),
            response_bytes: Family::default(),
            error_codes: Family::default(),
            refused: Family::default(),
            waiting: Family::default(),
        };
        registry.register(
            "requests",
            "Kafka requests answered, by API, API version and outcome (the first error code of the answer, NONE without one)",
            requests.total.clone(),
        );
        registry.register_with_unit(
            "request_duration",
            "Time to handle a Kafka request, from its decoded header to its encoded answer, by API",
            Unit::Seconds,
            requests.duration.clone(),
        );
        registry.register_with_unit(
            "request",
            "Request body bytes received, by API",
            Unit::Bytes,
            requests.request_bytes.clone(),
        );
        registry.register_with_unit(
            "response",
            "Response body bytes sent, by API",
            Unit::Bytes,
            requests.response_bytes.clone(),
        );
        registry.register(
            "response_errors",
            "Error codes in answers, top level and per topic or partition, by API and error",
            requests.error_codes.clone(),
        );
        registry.register(
            "requests_refused",
            "Requests that closed their connection unanswered (unsupported version, undecodable body), by API",
            requests.refused.clone(),
        );
        registry.register(
            "requests_waiting",
            "Requests parked now until something happens or their time is up (Fetch long polls, JoinGroup and SyncGroup waiting for the group), by API",
            requests.waiting.clone(),
        );
        requests
    }

    pub(crate) fn answered(&self, request: &Request) {
        let api = api_name(request.api);
        let labels =
            RequestLabels { api, version: request.version, error: error_name(request.error) };
        self.total.get_or_create(&labels).inc();
        let api = ApiLabels { api };
        self.duration.get_or_create(&api).observe(request.duration.as_secs_f64());
        self.request_bytes.get_or_create(&api).inc_by(request.request_bytes as u64);
        self.response_bytes.get_or_create(&api).inc_by(request.response_bytes as u64);
    }

    pub(crate) fn error_code(&self, api: ApiKey, code: i16) {
        if code != 0 {
            let labels = ApiErrorLabels { api: api_name(api), error: error_name(code) };
            self.error_codes.get_or_create(&labels).inc();
        }
    }

    pub(crate) fn refused(&self, api: ApiKey) {
        self.refused.get_or_create(&ApiLabels { api: api_name(api) }).inc();
    }

    /// Held by a request while it is parked.
    pub(crate) fn waiting(&self, api: ApiKey) -> GaugeGuard {
        GaugeGuard::hold(self.waiting.get_or_create(&ApiLabels { api: api_name(api) }).clone())
    }
}
