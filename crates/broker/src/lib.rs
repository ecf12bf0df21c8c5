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
//! - `cached`: a broker's copy of a cluster-wide document (ACLs, quotas), refreshed in the
//!   background.
//! - `authorization`: the ACL snapshot each request is checked against (`--authorizer acl`);
//!   handlers ask their request context whether the principal may act on a resource.
//! - `quotas`: client quotas (produce and fetch byte rates) charged per request; a client over
//!   its quota is told to wait and its connection is muted that long.
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

mod authorization;
mod broker;
mod busy;
mod cached;
mod cleaner;
mod config;
mod connection;
mod errors;
mod groups;
mod handlers;
mod log_scan;
mod metrics;
mod producer_ids;
mod quotas;
pub mod server;
mod session;
pub mod tables;
mod topic_config;
mod topics;
mod transactions;
mod validation;

pub use authorization::AuthorizationConfig;
pub use broker::Broker;
pub use config::{BrokerConfig, ListenerConfig, SaslConfig};
pub use quotas::QuotaConfig;
pub use server::serve;
pub use skiff_coordinator::consumer::{AssignorName, ConsumerConfig};
