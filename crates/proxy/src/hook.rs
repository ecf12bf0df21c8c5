//! The seam for produce-side checks (schema validation, later) in the proxy.
//!
//! The broker will validate records against topic schemas; the same validator can run here, in
//! front of a cluster Skiff does not own. Until then the default hook is disabled, and a disabled
//! hook costs nothing: Produce requests are forwarded without even looking at their body.

use bytes::Bytes;

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
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum ProduceVerdict {
    /// Send it upstream unchanged.
    Forward,
    /// Do not send it. For now the proxy closes the client's connection with a log line giving
    /// `reason`; answering INVALID_RECORD per partition instead is the validator's follow-up.
    Reject { reason: String },
}

/// Checks Produce requests before they go upstream. Implementations must be cheap or
/// offload work: they run on the client connection's task.
pub trait ProduceHook: Send + Sync + 'static {
    /// False means the proxy never calls [`ProduceHook::check`] and skips building the view.
    fn enabled(&self) -> bool;

    /// Decides what happens to one Produce request.
    fn check(&self, request: &ProduceView<'_>) -> ProduceVerdict;
}

/// The default: no produce-side checks.
#[derive(Debug, Default, Clone, Copy)]
pub struct NoProduceChecks;

impl ProduceHook for NoProduceChecks {
    fn enabled(&self) -> bool {
        false
    }

    fn check(&self, _request: &ProduceView<'_>) -> ProduceVerdict {
        ProduceVerdict::Forward
    }
}
