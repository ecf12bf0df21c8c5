//! The proxy's one error enum.

use thiserror::Error;

/// What can go wrong between a client, the proxy and an upstream broker.
#[derive(Debug, Error)]
#[non_exhaustive]
pub enum ProxyError {
    /// The configuration cannot work (bad address, no upstreams, ports out of range).
    #[error("invalid configuration: {0}")]
    Config(String),
    /// A listening socket could not be bound.
    #[error("cannot listen on {address}")]
    Bind { address: String, source: std::io::Error },
    /// An upstream broker could not be reached or went away.
    #[error("upstream {address} unavailable: {reason}")]
    Unavailable { address: String, reason: String },
    /// A peer sent bytes that are not a valid Kafka frame or message.
    #[error("protocol error: {0}")]
    Protocol(String),
    /// The produce hook refused a request.
    #[error("produce request rejected: {0}")]
    Rejected(String),
}
