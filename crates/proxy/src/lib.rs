//! `skiff proxy`: a Kafka protocol proxy in front of any Kafka-compatible cluster.
//!
//! Clients connect to one stable address; the proxy forwards their requests as bytes and
//! rewrites only what clients must not see (upstream broker addresses). See `docs/proxy.md`.
//!
//! Layout:
//! - [`server`]: listeners (the bootstrap port and one port per upstream broker), accept loops,
//!   graceful shutdown.
//! - `client`: one client connection: forward requests, answer in request order.
//! - `upstream`: one upstream connection, pipelined, correlation ids remapped.
//! - `pool`: shared upstream connections per broker, and dedicated ones for long waits.
//! - `routing`: which connection a request uses; whether a Produce expects an answer.
//! - `topology`: which proxy port stands for which upstream broker.
//! - `ports`: which port each listener binds (`--broker-ports`, `--broker-port-base`), binding.
//! - `rewrite`: the responses that are decoded and changed (one file per API).
//! - [`sasl`]: SASL toward clients (answered by the proxy, users from storage) and the proxy's
//!   own login to upstream brokers.
//! - [`hook`]: the seam for produce-side checks.
//! - [`validate`]: schema validation of Produce requests (`--schema-registry`), the registry
//!   over HTTP.

mod client;
mod error;
mod frame;
pub mod hook;
mod pool;
mod ports;
mod rewrite;
mod routing;
pub mod sasl;
pub mod server;
mod topology;
mod upstream;
pub mod validate;

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

pub use error::ProxyError;
pub use hook::{NoProduceChecks, ProduceHook, ProduceVerdict, ProduceView};
pub use ports::BrokerPorts;
pub use sasl::{ClientSasl, UpstreamSasl};
pub use server::{bind, serve, Listeners};
pub use validate::SchemaValidation;

/// How the proxy runs.
#[derive(Debug, Clone)]
pub struct ProxyConfig {
    /// The bootstrap listener. The per-broker listeners use its IP address and the ports of
    /// `broker_ports`.
    pub listen: SocketAddr,
    /// Host clients are told to connect to; each upstream broker is advertised at this host
    /// with the port its proxy listener actually bound.
    pub advertised_host: String,
    /// Which port the proxy listens on for each upstream broker.
    pub broker_ports: BrokerPorts,
    /// Upstream bootstrap brokers, HOST:PORT.
    pub upstreams: Vec<String>,
    /// Largest client request frame accepted.
    pub max_request_bytes: usize,
    /// Most client connections served at once.
    pub max_connections: usize,
    /// Shared (pipelined) upstream connections per upstream broker.
    pub shared_connections: usize,
    /// How long to wait for an upstream broker to accept a connection.
    pub connect_timeout: Duration,
    /// A shared upstream connection whose oldest request waits longer than this is closed.
    pub request_timeout: Duration,
    /// Most upstream brokers (and so extra proxy ports) the proxy serves.
    pub max_upstream_brokers: usize,
    /// With a certificate and key, every proxy port speaks TLS to clients (SSL), whatever the
    /// upstream cluster speaks: a plaintext cluster gets TLS from outside.
    pub tls: Option<skiff_net::TlsFiles>,
    /// With users, every proxy port is a SASL listener: clients log in to the proxy (SASL_PLAINTEXT,
    /// or SASL_SSL with `tls`), and their SASL exchange never goes upstream.
    pub sasl: Option<ClientSasl>,
    /// The proxy's own login to every upstream connection it opens.
    pub upstream_sasl: Option<UpstreamSasl>,
}

/// What every connection task shares.
pub(crate) struct Context {
    pub(crate) config: ProxyConfig,
    pub(crate) topology: topology::Topology,
    pub(crate) pool: pool::UpstreamPool,
    pub(crate) hook: Arc<dyn ProduceHook>,
}
