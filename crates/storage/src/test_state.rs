//! A small in-memory state store for this crate's own tests (the engines live in other crates).

use std::collections::BTreeMap;
use std::sync::Mutex;

use async_trait::async_trait;
use bytes::Bytes;

use crate::{Result, StateStore, StorageError, Versioned};

/// A state store that loses the first `conflicts` writes.
#[derive(Default)]
pub(crate) struct Racy {
    pub(crate) values: Mutex<BTreeMap<String, Versioned>>,
    pub(crate) conflicts: Mutex<u32>,
}

#[async_trait]
impl StateStore for Racy {
    async fn get(&self, key: &str) -> Result<Option<Versioned>> {
        Ok(self.values.lock().expect("lock").get(key).cloned())
    }

    async fn put(&self, key: &str, value: Bytes, expected: Option<u64>) -> Result<u64> {
        let mut conflicts = self.conflicts.lock().expect("lock");
        if *conflicts > 0 {
            *conflicts -= 1;
            return Err(StorageError::Conflict(key.into()));
        }
        let mut values = self.values.lock().expect("lock");
        let current = values.get(key).map(|stored| stored.version);
        if current != expected {
            return Err(StorageError::Conflict(key.into()));
        }
        let version = current.unwrap_or(0) + 1;
        values.insert(key.into(), Versioned { value, version });
        Ok(version)
    }

    async fn delete(&self, key: &str, expected: u64) -> Result<()> {
        let mut values = self.values.lock().expect("lock");
        match values.get(key) {
            Some(stored) if stored.version == expected => {
                values.remove(key);
                Ok(())
            }
            Some(_) => Err(StorageError::Conflict(key.into())),
            None => Err(StorageError::NotFound(key.into())),
        }
    }

    async fn list(&self, _prefix: &str) -> Result<Vec<(String, Versioned)>> {
        Ok(Vec::new())
    }
}
