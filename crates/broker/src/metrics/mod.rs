//! What the broker measures when started with `--metrics-listen` (the families themselves are
//! `skiff-metrics`'): each request as the dispatcher answers it ([`Measure`]), the error codes
//! of every answer ([`ErrorCodes`]); the schemas the registry creates are counted by the
//! decorator over the registry's state store (`crate::validation::ChangeCounter`).
//! Handlers record topic bytes, refusals and transactions through [`crate::Broker::metrics`].

mod error_codes;

use std::time::Instant;

use kafka_protocol::messages::ApiKey;
use skiff_metrics::{Metrics, Request};

pub(crate) use error_codes::ErrorCodes;

/// One request being measured, from its decoded header to its encoded answer.
pub(crate) struct Measure<'a> {
    metrics: &'a Metrics,
    started: Instant,
    api: ApiKey,
    version: i16,
    request_bytes: usize,
}

impl<'a> Measure<'a> {
    /// Starts measuring, or `None` (and no clock read) without metrics.
    pub(crate) fn start(
        metrics: Option<&'a Metrics>,
        api: ApiKey,
        version: i16,
        request_bytes: usize,
    ) -> Option<Self> {
        let metrics = metrics?;
        Some(Self { metrics, started: Instant::now(), api, version, request_bytes })
    }

    /// Labels the request with `version` instead of the one asked for.
    pub(crate) fn answering_version(self, version: i16) -> Self {
        Self { version, ..self }
    }

    /// Records the request as answered with `response_bytes` encoded bytes (0: nothing sent,
    /// acks=0), and each non-zero error code of the answer, in answer order.
    pub(crate) fn answered(self, error_codes: &[i16], response_bytes: usize) {
        for &code in error_codes {
            self.metrics.response_error(self.api, code);
        }
        self.metrics.request(&Request {
            api: self.api,
            version: self.version,
            error: error_codes.first().copied().unwrap_or(0),
            duration: self.started.elapsed(),
            request_bytes: self.request_bytes,
            response_bytes,
        });
    }

    /// Records a request that ends its connection unanswered.
    pub(crate) fn refused(self) {
        self.metrics.request_refused(self.api);
    }
}
