//! The seam for produce-side checks in the proxy, such as schema validation
//! ([`crate::validate::SchemaValidation`], `--schema-registry`).
//!
//! The default hook is disabled, and a disabled hook costs nothing: Produce requests are
//! forwarded without even looking at their body.

use async_trait::async_trait;
use bytes::Bytes;

use crate::validate::Refusals;

/// A Produce request as the hook sees it. The body is undecoded (Kafka `ProduceRequest` at
/// `api_version`, after the header); a validator decodes what it needs.
pub struct ProduceView<'a> {
    pub api_version: i16,
    pub correlation_id: i32,
    pub client_id: Option<&'a str>,
    pub acks: i16,
    pub body: &'a Bytes,
}

/// What to do with a Produce request.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub enum ProduceVerdict {
    /// Send it upstream unchanged.
    Forward,
    /// Send `body` (the request without the refused partitions) upstream instead, and answer
    /// the client with the upstream's answer and the refusals merged, in request order.
    Split { body: Bytes, refusals: Refusals },
    /// Send nothing upstream: every partition is refused (with acks=0 nothing is answered).
    Answer { refusals: Refusals },
    /// Do not send it: the proxy closes the client's connection with a log line giving
    /// `reason` (a request that cannot even be decoded).
    Reject { reason: String },
}

/// Checks Produce requests before they go upstream. They run on the client connection's task,
/// so the client's next request waits for the verdict (its requests stay in order).
#[async_trait]
pub trait ProduceHook: Send + Sync + 'static {
    /// False means the proxy never calls [`ProduceHook::check`] and skips building the view.
    fn enabled(&self) -> bool;

    /// Decides what happens to one Produce request.
    async fn check(&self, request: &ProduceView<'_>) -> ProduceVerdict;
}

/// The default: no produce-side checks.
#[derive(Debug, Default, Clone, Copy)]
pub struct NoProduceChecks;

#[async_trait]
impl ProduceHook for NoProduceChecks {
    fn enabled(&self) -> bool {
        false
    }

    async fn check(&self, _request: &ProduceView<'_>) -> ProduceVerdict {
        ProduceVerdict::Forward
    }
}
