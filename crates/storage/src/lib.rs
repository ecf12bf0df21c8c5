//! The storage contract of Skiff.
//!
//! A broker is a pure function of (request, storage): every fact another broker would need lives
//! behind these traits. They are split by concern and used as `Arc<dyn …>` through [`Storage`]:
//!
//! - [`MetaStore`]: topics, their ids, partition counts and config overrides.
//! - [`LogStore`]: partition logs of raw v2 record batches; atomic, ordered appends.
//! - [`StateStore`]: small values changed by compare-and-set (groups, producers, leases).
//! - [`OffsetStore`]: consumer groups' committed offsets.
//!
//! [`cas`] is the compare-and-set loop every shared document changes by, and [`lease`] the
//! leases brokers hold for background jobs, both over a [`StateStore`]. [`faults`] is a
//! decorator for tests that injects errors, latency and lost replies into any engine.
//!
//! [`producers`] holds the idempotent-producer sequence rules that every engine applies inside
//! its atomic append; [`compaction`] the batch rewriting that engines keeping whole batches
//! share.
//!
//! Every engine runs the shared [`testsuite`] (feature `testsuite`) through
//! [`conformance_tests!`]; an engine that does not pass all of it is not done.

pub mod cas;
pub mod compaction;
mod error;
pub mod faults;
pub mod lease;
mod log;
mod meta;
mod offsets;
pub mod producers;
mod state;
pub mod timestamps;
mod types;

#[cfg(test)]
mod test_state;
#[cfg(feature = "testsuite")]
pub mod testsuite;

use std::sync::Arc;

pub use error::{Result, StorageError};
pub use log::{
    AbortedTransaction, AppendResult, LogStore, ProducerSnapshot, QueuedAppend, ReadResult,
    TimestampOffset, Watermarks,
};
pub use meta::{ConfigChange, MetaStore};
pub use offsets::{CommittedOffset, OffsetStore};
pub use state::{StateStore, Versioned};
pub use types::{TopicMeta, TopicPartition, TopicSpec};

pub use skiff_protocol::batch::Batch;

/// One engine seen through its concerns.
#[derive(Clone)]
pub struct Storage {
    pub meta: Arc<dyn MetaStore>,
    pub log: Arc<dyn LogStore>,
    pub state: Arc<dyn StateStore>,
    pub offsets: Arc<dyn OffsetStore>,
}

impl Storage {
    /// Bundles an engine that implements every trait.
    pub fn from_engine<E>(engine: E) -> Self
    where
        E: MetaStore + LogStore + StateStore + OffsetStore + 'static,
    {
        let engine = Arc::new(engine);
        Self { meta: engine.clone(), log: engine.clone(), state: engine.clone(), offsets: engine }
    }
}
