//! Read-modify-write of one JSON document by compare-and-set, retried with jittered backoff
//! when another writer (on this broker or another) got there first.

use std::future::Future;
use std::time::Duration;

use serde::{Deserialize, Serialize};
use skiff_storage::{StateStore, StorageError};

use crate::error::{RegistryError, Result};
use crate::stored::{decode, encode};

/// How many lost races an update tolerates before giving up with a retriable store error.
const MAX_ATTEMPTS: u32 = 64;

/// What an update decided after reading the current document.
pub(crate) enum Change<T, R> {
    /// Write this document (create it if absent) and return `R`.
    Write(T, R),
    /// Delete the document (if present) and return `R`.
    Delete(R),
    /// Leave the document as it is and return `R`.
    Keep(R),
}

/// Reads `key`, lets `decide` compute a [`Change`] from the current document (`None`: absent),
/// and applies it by compare-and-set. A conflict means another writer changed the document in
/// between: read it again and decide again, after a jittered backoff so racing writers spread
/// out. `decide` may refuse by returning an error, which ends the update.
pub(crate) async fn update<T, R, F, Fut>(
    state: &dyn StateStore,
    key: &str,
    mut decide: F,
) -> Result<R>
where
    T: Serialize + for<'de> Deserialize<'de>,
    F: FnMut(Option<T>) -> Fut,
    Fut: Future<Output = Result<Change<T, R>>>,
{
    for attempt in 0..MAX_ATTEMPTS {
        let current = state.get(key).await?;
        let version = current.as_ref().map(|stored| stored.version);
        let document = match &current {
            Some(stored) => Some(decode::<T>(key, &stored.value)?),
            None => None,
        };
        let outcome = match decide(document).await? {
            Change::Keep(result) => return Ok(result),
            Change::Write(document, result) => {
                state.put(key, encode(&document), version).await.map(|_| result)
            }
            Change::Delete(result) => match version {
                None => return Ok(result),
                Some(version) => state.delete(key, version).await.map(|()| result),
            },
        };
        match outcome {
            Ok(result) => return Ok(result),
            Err(StorageError::Conflict(_) | StorageError::NotFound(_)) => {
                tokio::time::sleep(backoff(attempt)).await;
            }
            Err(error) => return Err(error.into()),
        }
    }
    Err(RegistryError::Store(StorageError::Unavailable(format!(
        "{key}: still contended after {MAX_ATTEMPTS} attempts"
    ))))
}

/// 1 ms doubling to at most 64 ms, times a random factor in [0.5, 1.5).
fn backoff(attempt: u32) -> Duration {
    let base = 1u64 << attempt.min(6);
    let micros = base * 1000;
    Duration::from_micros(micros / 2 + fastrand::u64(0..micros))
}
