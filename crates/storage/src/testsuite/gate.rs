//! A storage decorator for tests that must order events across brokers deterministically: reads
//! of the state store can be held at a gate until the test opens it, as if the storage were
//! slow at exactly that moment. Writes and every other store pass straight through.

use std::sync::Arc;

use async_trait::async_trait;
use bytes::Bytes;
use tokio::sync::watch;

use crate::{Result, StateStore, Storage, Versioned};

/// Opens and closes the gate, and tells how many reads are waiting at it.
#[derive(Clone)]
pub struct Gate {
    open: watch::Sender<bool>,
    held: watch::Sender<usize>,
}

impl Default for Gate {
    fn default() -> Self {
        Self { open: watch::Sender::new(true), held: watch::Sender::new(0) }
    }
}

impl Gate {
    /// Reads that start from now on wait until [`Gate::open`].
    pub fn close(&self) {
        self.open.send_replace(false);
    }

    /// Lets every waiting read, and every later one, through.
    pub fn open(&self) {
        self.open.send_replace(true);
    }

    /// Waits until at least `count` reads are held at the gate.
    pub async fn wait_held(&self, count: usize) {
        let mut held = self.held.subscribe();
        // The sender lives in `self`, so the channel cannot close while we wait.
        let _ = held.wait_for(|held| *held >= count).await;
    }

    async fn pass(&self) {
        let mut open = self.open.subscribe();
        if *open.borrow_and_update() {
            return;
        }
        self.held.send_modify(|held| *held += 1);
        let _ = open.wait_for(|open| *open).await;
        self.held.send_modify(|held| *held -= 1);
    }
}

/// `storage` with its state-store reads going through `gate`.
pub fn gated(storage: Storage, gate: Gate) -> Storage {
    let state = Arc::new(GatedState { inner: storage.state.clone(), gate });
    Storage { state, ..storage }
}

struct GatedState {
    inner: Arc<dyn StateStore>,
    gate: Gate,
}

#[async_trait]
impl StateStore for GatedState {
    async fn get(&self, key: &str) -> Result<Option<Versioned>> {
        self.gate.pass().await;
        self.inner.get(key).await
    }

    async fn put(&self, key: &str, value: Bytes, expected: Option<u64>) -> Result<u64> {
        self.inner.put(key, value, expected).await
    }

    async fn delete(&self, key: &str, expected: u64) -> Result<()> {
        self.inner.delete(key, expected).await
    }

    async fn list(&self, prefix: &str) -> Result<Vec<(String, Versioned)>> {
        self.inner.list(prefix).await
    }
}
