//! The proxy's one error enum.

use thiserror::Error;

/// What can go wrong between a client, the proxy and an upstream broker.
#[derive(Debug, Error)]
#[non_exhaustive]
pub enum ProxyError {
    /// The configuration cannot work (bad address, no upstreams, ports out of range).
    #[error("invalid configuration: {0}")]
    Config(String),
    /// A listening socket could not be bound (the port is taken, or the address is not local).
    #[error("cannot listen on {address} for {purpose} ({hint})")]
    Bind {
        address: String,
        /// What the listener is for: the bootstrap port or an upstream broker.
        purpose: String,
        /// Which flag chose the address, and what to change.
        hint: &'static str,
        source: std::io::Error,
    },
    /// An upstream broker could not be reached or went away.
    #[error("upstream {address} unavailable: {reason}")]
    Unavailable { address: String, reason: String },
    /// A peer sent bytes that are not a valid Kafka frame or message.
    #[error("protocol error: {0}")]
    Protocol(String),
    /// A client on a SASL proxy port sent a request before logging in, or its login failed.
    #[error("SASL: {0}")]
    Sasl(String),
    /// The produce hook refused a request.
    #[error("produce request rejected: {0}")]
    Rejected(String),
}

/// `error` and its sources, `: `-separated, for log lines (a bind error's cause is its source).
pub(crate) fn with_causes(error: &dyn std::error::Error) -> String {
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        source = cause.source();
    }
    text
}
