//! The cluster's quotas in the state store: one document (`quotas`), changed by
//! compare-and-set, so a change of several entities is one atomic write and every broker reads
//! all quotas in one read.

use std::sync::Arc;

use bytes::Bytes;
use skiff_storage::cas::{self, Change};
use skiff_storage::{StateStore, StorageError, Versioned};

use super::model::{QuotaEntity, QuotaKind, Quotas};

/// The state key of the quota document.
pub const KEY: &str = "quotas";

/// One change of one entity's quota: a new value, or `None` to remove it.
pub type QuotaChange = (QuotaEntity, QuotaKind, Option<f64>);

#[derive(Clone)]
pub struct QuotaStore {
    state: Arc<dyn StateStore>,
}

fn decode(stored: Option<&Versioned>) -> Result<Quotas, StorageError> {
    let Some(stored) = stored else { return Ok(Quotas::default()) };
    let entries: Vec<(QuotaEntity, Vec<(QuotaKind, f64)>)> = serde_json::from_slice(&stored.value)
        .map_err(|error| StorageError::Corrupt(format!("the quota document: {error}")))?;
    let entries = entries
        .into_iter()
        .map(|(entity, values)| (entity, values.into_iter().collect()))
        .collect();
    Ok(Quotas { entries })
}

fn encode(quotas: &Quotas) -> Result<Bytes, StorageError> {
    // A list of pairs: JSON objects cannot have an entity as a key.
    let entries: Vec<(&QuotaEntity, Vec<(&QuotaKind, &f64)>)> =
        quotas.entries.iter().map(|(entity, values)| (entity, values.iter().collect())).collect();
    serde_json::to_vec(&entries)
        .map(Bytes::from)
        .map_err(|error| StorageError::Corrupt(format!("encoding the quotas: {error}")))
}

impl QuotaStore {
    pub fn new(state: Arc<dyn StateStore>) -> Self {
        Self { state }
    }

    pub async fn get(&self) -> Result<Quotas, StorageError> {
        decode(self.state.get(KEY).await?.as_ref())
    }

    /// Applies every change at once; an entity left with no quota is removed.
    pub async fn alter(&self, changes: &[QuotaChange]) -> Result<(), StorageError> {
        cas::update(self.state.as_ref(), KEY, |current| async move {
            let mut quotas = decode(current.as_ref())?;
            for (entity, kind, value) in changes {
                let values = quotas.entries.entry(entity.clone()).or_default();
                match value {
                    Some(value) => values.insert(*kind, *value),
                    None => values.remove(kind),
                };
                if values.is_empty() {
                    quotas.entries.remove(entity);
                }
            }
            Ok::<_, StorageError>(Change::Write(encode(&quotas)?, ()))
        })
        .await
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::quota::model::EntityPart;

    #[tokio::test]
    async fn quotas_are_set_replaced_and_removed_as_one_document() {
        let storage =
            skiff_storage::Storage::from_engine(skiff_storage_memory::MemoryEngine::new());
        let store = QuotaStore::new(storage.state);
        let alice = QuotaEntity { user: Some(EntityPart::Named("alice".into())), client_id: None };
        let clients = QuotaEntity { user: None, client_id: Some(EntityPart::Default) };
        store
            .alter(&[
                (alice.clone(), QuotaKind::ProducerByteRate, Some(1024.0)),
                (clients.clone(), QuotaKind::RequestPercentage, Some(25.0)),
            ])
            .await
            .expect("stored");
        let quotas = store.get().await.expect("read");
        assert_eq!(
            quotas.lookup(QuotaKind::ProducerByteRate, "alice", "x").map(|q| q.1),
            Some(1024.0)
        );
        assert_eq!(
            quotas.lookup(QuotaKind::RequestPercentage, "bob", "x").map(|q| q.1),
            Some(25.0)
        );

        store.alter(&[(alice.clone(), QuotaKind::ProducerByteRate, None)]).await.expect("removed");
        let quotas = store.get().await.expect("read");
        assert!(!quotas.entries.contains_key(&alice), "an entity without quotas is gone");
        assert!(quotas.entries.contains_key(&clients));
    }
}
