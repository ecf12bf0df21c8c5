//! Producer ids, unique across every broker on one storage.
//!
//! Ids are taken from a counter in storage in blocks (compare-and-set on one key), so a broker
//! touches storage once per [`BLOCK`] InitProducerId requests. A broker that stops forgets the
//! rest of its block; ids are plentiful (i64), uniqueness is what matters.

use std::ops::Range;

use bytes::Bytes;
use skiff_storage::{Storage, StorageError};
use tokio::sync::Mutex;

/// State key of the next unallocated producer id.
const NEXT_ID_KEY: &str = "producers/next-id";
/// Ids a broker takes from storage at a time.
const BLOCK: i64 = 100;
/// Compare-and-set attempts before giving up (another broker kept winning).
const ATTEMPTS: usize = 32;

#[derive(Default)]
pub(crate) struct ProducerIds {
    block: Mutex<Range<i64>>,
}

impl ProducerIds {
    /// A producer id no other producer of this cluster has been given.
    pub(crate) async fn next(&self, storage: &Storage) -> Result<i64, StorageError> {
        let mut block = self.block.lock().await;
        if block.is_empty() {
            *block = take_block(storage).await?;
        }
        let id = block.start;
        block.start += 1;
        Ok(id)
    }
}

async fn take_block(storage: &Storage) -> Result<Range<i64>, StorageError> {
    for _ in 0..ATTEMPTS {
        let current = storage.state.get(NEXT_ID_KEY).await?;
        let start = match &current {
            Some(stored) => std::str::from_utf8(&stored.value)
                .ok()
                .and_then(|text| text.parse::<i64>().ok())
                .ok_or_else(|| StorageError::Corrupt(format!("{NEXT_ID_KEY} is not a number")))?,
            None => 0,
        };
        let end = start + BLOCK;
        let expected = current.map(|stored| stored.version);
        match storage.state.put(NEXT_ID_KEY, Bytes::from(end.to_string()), expected).await {
            Ok(_) => return Ok(start..end),
            Err(StorageError::Conflict(_)) => continue,
            Err(other) => return Err(other),
        }
    }
    Err(StorageError::Unavailable("producer id counter kept changing under us".into()))
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeSet;

    use super::*;

    #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
    async fn brokers_sharing_storage_never_hand_out_the_same_id() {
        let storage = skiff_storage_memory::MemoryEngine::storage();
        let mut tasks = Vec::new();
        for _ in 0..4 {
            let storage = storage.clone();
            tasks.push(tokio::spawn(async move {
                let broker = ProducerIds::default();
                let mut ids = Vec::new();
                for _ in 0..250 {
                    ids.push(broker.next(&storage).await.expect("id"));
                }
                ids
            }));
        }
        let mut seen = BTreeSet::new();
        for task in tasks {
            for id in task.await.expect("task") {
                assert!(seen.insert(id), "id {id} handed out twice");
            }
        }
        assert_eq!(seen.len(), 1000);
    }
}
