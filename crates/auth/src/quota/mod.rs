//! Kafka's client quotas: how many bytes a second a user or client id may produce or fetch,
//! and how much of a broker's request time it may take, and how long a client over its quota
//! is held back.
//!
//! - [`model`]: quota entities (`user`, `client-id`, each a name or the default) and the
//!   lookup that finds the quota a connection is held to, in Kafka's order of precedence.
//! - [`store`]: every quota of a cluster as one state-store document, like the ACLs, so every
//!   broker holds clients to the same quotas.
//! - [`rate`]: the sampled rate a broker measures per quota entity and the throttle time it
//!   answers with (Kafka's `throttle_time_ms`, then the channel is muted for that long).
//!
//! Quotas are enforced per broker, as in Kafka: a client connected to two brokers may use its
//! quota on each.

pub mod model;
pub mod rate;
pub mod store;

pub use model::{EntityPart, QuotaEntity, QuotaKind, Quotas};
pub use rate::SampledRate;
pub use store::QuotaStore;
