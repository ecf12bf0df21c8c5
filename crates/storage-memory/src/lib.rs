//! `memory://`: everything in one process's memory, lost at exit.
//!
//! The reference engine: the simplest code that passes the conformance suite, used for quick
//! starts, doc tests and as the yardstick for the broker's own overhead. Batches are kept as the
//! producer sent them (only the base offset rewritten); nothing is decoded on produce or fetch.

mod log;
mod meta;
mod offsets;
mod state;

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex, MutexGuard, RwLock};

use skiff_storage::{Storage, TopicMeta};

pub(crate) use log::PartitionLog;

/// The memory engine. Cheap to clone handles are made with [`MemoryEngine::storage`].
#[derive(Default)]
pub struct MemoryEngine {
    topics: RwLock<BTreeMap<String, Topic>>,
    state: Mutex<BTreeMap<String, (bytes::Bytes, u64)>>,
    offsets: Mutex<offsets::Offsets>,
    next_version: std::sync::atomic::AtomicU64,
}

struct Topic {
    meta: TopicMeta,
    partitions: Vec<Arc<Mutex<PartitionLog>>>,
}

impl MemoryEngine {
    pub fn new() -> Self {
        Self::default()
    }

    /// A [`Storage`] backed by a new, empty memory engine.
    pub fn storage() -> Storage {
        Storage::from_engine(Self::new())
    }
}

/// Locks a mutex even if a panicking thread poisoned it: the data is plain values that stay
/// consistent at every await-free step, so a poison carries no extra meaning here.
pub(crate) fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

#[cfg(test)]
mod conformance {
    skiff_storage::conformance_tests!(async { crate::MemoryEngine::storage() });
}
