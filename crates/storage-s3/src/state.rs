//! `StateStore`: one object per key, `state/<hex of the key>` (hex keeps any key a single safe
//! path segment and preserves byte order), body = 8-byte version, 1-byte liveness, value.
//!
//! The `u64` version lives in the body and the compare-and-set is done on the object's ETag:
//! read, compare the stored version with the expected one, write with `If-Match` on the ETag
//! just read. Deleting writes a tombstone (also `If-Match`) rather than removing the object,
//! because S3 offers no conditional delete: a blind delete could erase a racing update.

use async_trait::async_trait;
use bytes::{BufMut, Bytes, BytesMut};
use futures::stream::{self, StreamExt, TryStreamExt};
use object_store::path::Path;
use skiff_storage::{Result, StateStore, StorageError, Versioned};

use crate::store::{Tagged, WriteError};
use crate::S3Engine;

/// A stored state object.
struct Stored {
    version: u64,
    /// `None` for a tombstone (a deleted key).
    value: Option<Bytes>,
}

fn decode(key: &str, tagged: &Tagged) -> Result<Stored> {
    let bytes = &tagged.bytes;
    let (version, rest) = bytes
        .split_first_chunk::<8>()
        .ok_or_else(|| StorageError::Corrupt(format!("state {key} is truncated")))?;
    let (live, _) = rest
        .split_first()
        .ok_or_else(|| StorageError::Corrupt(format!("state {key} is truncated")))?;
    let value = (*live == 1).then(|| bytes.slice(9..));
    Ok(Stored { version: u64::from_be_bytes(*version), value })
}

fn encode(version: u64, value: Option<&Bytes>) -> Bytes {
    let mut bytes = BytesMut::with_capacity(9 + value.map_or(0, Bytes::len));
    bytes.put_u64(version);
    bytes.put_u8(u8::from(value.is_some()));
    if let Some(value) = value {
        bytes.extend_from_slice(value);
    }
    bytes.freeze()
}

/// A version no other write has used: random, so a key deleted and created again never
/// repeats a version an old reader may still hold.
fn fresh_version() -> u64 {
    (uuid::Uuid::new_v4().as_u64_pair().0 >> 1).max(1)
}

pub(crate) fn hex(key: &str) -> String {
    key.bytes().map(|byte| format!("{byte:02x}")).collect()
}

pub(crate) fn unhex(name: &str) -> Option<String> {
    let bytes: Option<Vec<u8>> = (0..name.len())
        .step_by(2)
        .map(|at| name.get(at..at + 2).and_then(|pair| u8::from_str_radix(pair, 16).ok()))
        .collect();
    String::from_utf8(bytes?).ok()
}

fn conflict(key: &str, expected: Option<u64>, found: Option<u64>) -> StorageError {
    StorageError::Conflict(format!("{key}: expected version {expected:?}, found {found:?}"))
}

impl S3Engine {
    fn state_path(&self, key: &str) -> Path {
        self.store.path(&["state", &hex(key)])
    }

    async fn read_state(&self, key: &str) -> Result<Option<(Stored, Tagged)>> {
        let Some(tagged) = self.store.get(&self.state_path(key)).await? else { return Ok(None) };
        Ok(Some((decode(key, &tagged)?, tagged)))
    }
}

#[async_trait]
impl StateStore for S3Engine {
    async fn get(&self, key: &str) -> Result<Option<Versioned>> {
        Ok(self.read_state(key).await?.and_then(|(stored, _)| {
            stored.value.map(|value| Versioned { value, version: stored.version })
        }))
    }

    async fn put(&self, key: &str, value: Bytes, expected: Option<u64>) -> Result<u64> {
        let version = fresh_version();
        let body = encode(version, Some(&value));
        let path = self.state_path(key);
        let outcome = match expected {
            None => match self.store.create(&path, body.clone()).await {
                Err(WriteError::Conflict) => {
                    // It exists: only a tombstone may be replaced by a create.
                    match self.read_state(key).await? {
                        Some((stored, tagged)) if stored.value.is_none() => {
                            self.store.replace(&path, body, tagged.e_tag).await
                        }
                        Some((stored, _)) => return Err(conflict(key, None, Some(stored.version))),
                        None => Err(WriteError::Conflict),
                    }
                }
                other => other,
            },
            Some(expected) => match self.read_state(key).await? {
                Some((stored, tagged)) if stored.value.is_some() && stored.version == expected => {
                    self.store.replace(&path, body, tagged.e_tag).await
                }
                Some((stored, _)) => {
                    return Err(conflict(key, Some(expected), stored.value.map(|_| stored.version)))
                }
                None => return Err(conflict(key, Some(expected), None)),
            },
        };
        outcome.map(|_| version).map_err(|error| match error {
            WriteError::Conflict => conflict(key, expected, None),
            WriteError::Failed(error) => error,
        })
    }

    async fn delete(&self, key: &str, expected: u64) -> Result<()> {
        let (stored, tagged) = match self.read_state(key).await? {
            Some((stored, tagged)) if stored.value.is_some() => (stored, tagged),
            _ => return Err(StorageError::NotFound(key.to_owned())),
        };
        if stored.version != expected {
            return Err(conflict(key, Some(expected), Some(stored.version)));
        }
        let tombstone = encode(fresh_version(), None);
        self.store
            .replace(&self.state_path(key), tombstone, tagged.e_tag)
            .await
            .map(|_| ())
            .map_err(|error| error.into_storage(key))
    }

    async fn list(&self, prefix: &str) -> Result<Vec<(String, Versioned)>> {
        let paths = self.store.list(&self.store.path(&["state"])).await?;
        let keys: Vec<String> = paths
            .iter()
            .filter_map(|path| path.filename().and_then(unhex))
            .filter(|key| key.starts_with(prefix))
            .collect();
        let mut found: Vec<(String, Versioned)> = stream::iter(keys)
            .map(|key| async move {
                let value = StateStore::get(self, &key).await?;
                Ok::<_, StorageError>(value.map(|value| (key, value)))
            })
            .buffered(16)
            .try_filter_map(|found| async move { Ok(found) })
            .try_collect()
            .await?;
        found.sort_by(|a, b| a.0.cmp(&b.0));
        Ok(found)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hex_keys_round_trip_and_keep_order() {
        for key in ["groups/g1", "", "ü/x y"] {
            assert_eq!(unhex(&hex(key)).as_deref(), Some(key));
        }
        assert!(hex("a/b") < hex("a/c"));
        assert_eq!(unhex("zz"), None);
    }
}
