use async_trait::async_trait;
use bytes::Bytes;

use crate::Result;

/// A stored value and the version that a compare-and-set must name to replace it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Versioned {
    pub value: Bytes,
    pub version: u64,
}

/// Small mutable state (consumer groups, producer epochs, leases) changed only by
/// compare-and-set, so that any number of brokers can share it without locks.
#[async_trait]
pub trait StateStore: Send + Sync {
    /// Reads a key.
    async fn get(&self, key: &str) -> Result<Option<Versioned>>;

    /// Writes `value` if the stored version is `expected` (`None`: the key must not exist).
    /// Returns the new version; `Conflict` if another writer got there first.
    async fn put(&self, key: &str, value: Bytes, expected: Option<u64>) -> Result<u64>;

    /// Deletes a key if its version is `expected`; `Conflict` otherwise, `NotFound` if absent.
    async fn delete(&self, key: &str, expected: u64) -> Result<()>;

    /// Every key starting with `prefix`, ordered by key.
    async fn list(&self, prefix: &str) -> Result<Vec<(String, Versioned)>>;
}
