//! The Skiff broker: a Kafka protocol server that is a pure function of (request, storage).
//!
//! Layout, following the request path:
//! - [`server`]: binds the listeners (or takes them from a socket activator) and serves them
//!   with the shared network layer (`skiff-net`: TLS, connection limit, graceful stop, idle
//!   exit).
//! - `connection`: one task per client; reads frames with hard limits, answers in order, and
//!   hands the handlers that need it a request context (peer, listener, client id, session).
//! - `session`: who is on a connection: SASL authentication (PLAIN, SCRAM) against the users
//!   in storage, and the check that a SASL listener's clients authenticated first.
//! - `handlers/`: one file per Kafka API, plus the table that ApiVersions is generated from.
//! - [`Broker`]: what every handler gets: storage, configuration, the append notifier.
//! - `groups`: consumer groups in storage: read, pure transition (`skiff-coordinator`),
//!   compare-and-set.
//! - `topic_config`: topic config names, defaults and validation.
//! - `transactions/`: the transaction state machine kept in storage, markers, the sweeper.
//! - `cleaner/`: retention and compaction, run by whichever broker holds the cleaner lease.
//! - [`tables`]: topics written as tables (`skiff.table.format`), one writer per partition
//!   under a lease.
//! - `lease`: the leases background jobs are shared out with; `log_scan`: reading a
//!   partition's committed records (compaction, tables).
//! - `metrics`: what `--metrics-listen` measures per request, and the registry's schema count.
//! - `validation`: records of topics with a schema in the registry are checked before produce
//!   stores them.

mod broker;
mod cleaner;
mod config;
mod connection;
mod errors;
mod groups;
mod handlers;
mod log_scan;
mod metrics;
mod producer_ids;
pub mod server;
mod session;
pub mod tables;
mod topic_config;
mod topics;
mod transactions;
mod validation;

pub use broker::Broker;
pub use config::{BrokerConfig, ListenerConfig, SaslConfig};
pub use server::serve;
