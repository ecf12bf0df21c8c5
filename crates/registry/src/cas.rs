//! Read-modify-write of one JSON document by compare-and-set: the storage's own loop
//! ([`skiff_storage::cas`]) with the registry's documents decoded and encoded around it.

use std::future::Future;

use serde::{Deserialize, Serialize};
use skiff_storage::cas::{self, Change as Stored};
use skiff_storage::StateStore;

use crate::error::Result;
use crate::stored::{decode, encode};

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
/// and applies it by compare-and-set; a lost race reads and decides again (after a jittered
/// backoff). `decide` may refuse by returning an error, which ends the update.
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
    cas::update(state, key, |current| {
        let document = current.map(|stored| decode::<T>(key, &stored.value)).transpose();
        let decided = document.map(&mut decide);
        async move {
            Ok(match decided?.await? {
                Change::Write(document, result) => Stored::Write(encode(&document), result),
                Change::Delete(result) => Stored::Delete(result),
                Change::Keep(result) => Stored::Keep(result),
            })
        }
    })
    .await
}
