use std::sync::atomic::Ordering;

use async_trait::async_trait;
use bytes::Bytes;
use skiff_storage::{Result, StateStore, StorageError, Versioned};

use crate::{lock, MemoryEngine};

#[async_trait]
impl StateStore for MemoryEngine {
    async fn get(&self, key: &str) -> Result<Option<Versioned>> {
        Ok(lock(&self.state)
            .get(key)
            .map(|(value, version)| Versioned { value: value.clone(), version: *version }))
    }

    async fn put(&self, key: &str, value: Bytes, expected: Option<u64>) -> Result<u64> {
        let mut state = lock(&self.state);
        let current = state.get(key).map(|(_, version)| *version);
        if current != expected {
            return Err(StorageError::Conflict(format!(
                "{key}: expected version {expected:?}, found {current:?}"
            )));
        }
        let version = self.next_version.fetch_add(1, Ordering::Relaxed) + 1;
        state.insert(key.to_owned(), (value, version));
        Ok(version)
    }

    async fn delete(&self, key: &str, expected: u64) -> Result<()> {
        let mut state = lock(&self.state);
        match state.get(key) {
            None => Err(StorageError::NotFound(key.to_owned())),
            Some((_, version)) if *version != expected => Err(StorageError::Conflict(format!(
                "{key}: expected version {expected}, found {version}"
            ))),
            Some(_) => {
                state.remove(key);
                Ok(())
            }
        }
    }

    async fn list(&self, prefix: &str) -> Result<Vec<(String, Versioned)>> {
        Ok(lock(&self.state)
            .range(prefix.to_owned()..)
            .take_while(|(key, _)| key.starts_with(prefix))
            .map(|(key, (value, version))| {
                (key.clone(), Versioned { value: value.clone(), version: *version })
            })
            .collect())
    }
}
