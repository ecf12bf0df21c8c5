//! Read-modify-write of one state key by compare-and-set: the loop every shared document of
//! the brokers (consumer groups, transactions, Schema Registry subjects, leases) changes by.
//!
//! Read the key, decide what it should become, write it only if nobody changed it in between.
//! A lost race reads again and decides again, after a short jittered backoff so that writers
//! racing for one key spread out instead of colliding again. After [`MAX_ATTEMPTS`] lost races
//! it gives up with a retriable `Unavailable` error.

use std::future::Future;
use std::time::Duration;

use bytes::Bytes;

use crate::{StateStore, StorageError, Versioned};

/// Lost races an update tolerates before giving up.
pub const MAX_ATTEMPTS: u32 = 64;

/// What an update decided after reading the key.
pub enum Change<R> {
    /// Store this value (creating the key if absent) and return `R`.
    Write(Bytes, R),
    /// Delete the key (if present) and return `R`.
    Delete(R),
    /// Leave the key as it is and return `R`.
    Keep(R),
}

/// Reads `key`, lets `decide` compute a [`Change`] from its current value (`None`: absent),
/// and applies it by compare-and-set, deciding again after a lost race: `decide` may run
/// several times, so it must depend on the value it is given only. It may refuse by
/// returning an error, which ends the update.
pub async fn update<R, E, F, Fut>(state: &dyn StateStore, key: &str, mut decide: F) -> Result<R, E>
where
    E: From<StorageError>,
    F: FnMut(Option<Versioned>) -> Fut,
    Fut: Future<Output = Result<Change<R>, E>>,
{
    for attempt in 0..MAX_ATTEMPTS {
        let current = state.get(key).await?;
        let version = current.as_ref().map(|stored| stored.version);
        let outcome = match decide(current).await? {
            Change::Keep(result) => return Ok(result),
            Change::Write(value, result) => state.put(key, value, version).await.map(|_| result),
            Change::Delete(result) => match version {
                None => return Ok(result),
                Some(version) => state.delete(key, version).await.map(|()| result),
            },
        };
        match outcome {
            Ok(result) => return Ok(result),
            // NotFound: deleted since we read it; read again.
            Err(StorageError::Conflict(_) | StorageError::NotFound(_)) => {
                tokio::time::sleep(backoff(attempt)).await;
            }
            Err(error) => return Err(error.into()),
        }
    }
    Err(StorageError::Unavailable(format!("{key}: still contended after {MAX_ATTEMPTS} attempts"))
        .into())
}

/// 1 ms doubling to at most 64 ms, times a random factor in [0.5, 1.5).
fn backoff(attempt: u32) -> Duration {
    let micros = (1u64 << attempt.min(6)) * 1000;
    Duration::from_micros(micros / 2 + fastrand::u64(0..micros))
}

#[cfg(test)]
mod tests {
    use std::sync::{Arc, Mutex};

    use super::*;
    use crate::test_state::Racy;
    use crate::Result;

    async fn increment(state: &Racy) -> Result<u32> {
        update(state, "n", |current| async move {
            let n = current.map(|stored| stored.value.len() as u32).unwrap_or(0) + 1;
            Ok(Change::Write(Bytes::from(vec![0; n as usize]), n))
        })
        .await
    }

    #[tokio::test]
    async fn a_lost_race_reads_and_decides_again() {
        let state = Racy::default();
        assert_eq!(increment(&state).await.expect("update"), 1);
        // Three lost races: four reads and decisions, one write, from the value read last.
        *state.conflicts.lock().expect("lock") = 3;
        let decided = Arc::new(Mutex::new(0));
        let written: Result<u32> = update(&state, "n", |current| {
            *decided.lock().expect("lock") += 1;
            let n = current.map(|stored| stored.value.len() as u32).unwrap_or(0) + 1;
            async move { Ok(Change::Write(Bytes::from(vec![0; n as usize]), n)) }
        })
        .await;
        assert_eq!((written.expect("update"), *decided.lock().expect("lock")), (2, 4));
        let kept: Result<&str> = update(&state, "n", |_| async { Ok(Change::Keep("kept")) }).await;
        assert_eq!(kept.expect("keep"), "kept");
        assert_eq!(state.get("n").await.expect("get").map(|stored| stored.version), Some(2));
        let deleted: Result<()> = update(&state, "n", |_| async { Ok(Change::Delete(())) }).await;
        deleted.expect("delete");
        assert_eq!(state.get("n").await.expect("get"), None);
    }

    #[tokio::test]
    async fn endless_races_end_in_a_retriable_error() {
        let state = Racy { conflicts: Mutex::new(MAX_ATTEMPTS), ..Racy::default() };
        tokio::time::pause();
        let result = increment(&state).await;
        assert!(matches!(result, Err(StorageError::Unavailable(_))), "{result:?}");
    }

    #[tokio::test]
    async fn a_refusal_ends_the_update_without_writing() {
        let state = Racy::default();
        let refused: Result<()> =
            update(&state, "n", |_| async { Err(StorageError::InvalidArgument("no".into())) })
                .await;
        assert!(matches!(refused, Err(StorageError::InvalidArgument(_))));
        assert_eq!(state.get("n").await.expect("get"), None);
    }
}
