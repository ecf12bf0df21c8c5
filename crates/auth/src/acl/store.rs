//! The cluster's ACLs in the state store: one document (`acls`), a list of bindings, changed
//! by compare-and-set. One document keeps a broker's view whole (it reads every ACL in one
//! read, to refresh its authorizer) and makes a CreateAcls or DeleteAcls request one atomic
//! change; ACL sets are small and change rarely.

use std::sync::Arc;

use bytes::Bytes;
use skiff_storage::cas::{self, Change};
use skiff_storage::{StateStore, StorageError, Versioned};

use super::model::{AclBinding, AclFilter};

/// The state key of the ACL document.
pub const KEY: &str = "acls";

/// The ACLs of one storage.
#[derive(Clone)]
pub struct AclStore {
    state: Arc<dyn StateStore>,
}

fn decode(stored: Option<&Versioned>) -> Result<Vec<AclBinding>, StorageError> {
    match stored {
        Some(stored) => serde_json::from_slice(&stored.value)
            .map_err(|error| StorageError::Corrupt(format!("the ACL document: {error}"))),
        None => Ok(Vec::new()),
    }
}

fn encode(acls: &[AclBinding]) -> Result<Bytes, StorageError> {
    serde_json::to_vec(acls)
        .map(Bytes::from)
        .map_err(|error| StorageError::Corrupt(format!("encoding the ACLs: {error}")))
}

impl AclStore {
    pub fn new(state: Arc<dyn StateStore>) -> Self {
        Self { state }
    }

    /// Every ACL, in the order they were created.
    pub async fn list(&self) -> Result<Vec<AclBinding>, StorageError> {
        decode(self.state.get(KEY).await?.as_ref())
    }

    /// Adds bindings; one already present is not added twice (Kafka's CreateAcls is
    /// idempotent too).
    pub async fn create(&self, bindings: &[AclBinding]) -> Result<(), StorageError> {
        cas::update(self.state.as_ref(), KEY, |current| async move {
            let mut acls = decode(current.as_ref())?;
            let before = acls.len();
            for binding in bindings {
                if !acls.contains(binding) {
                    acls.push(binding.clone());
                }
            }
            if acls.len() == before {
                return Ok(Change::Keep(()));
            }
            Ok::<_, StorageError>(Change::Write(encode(&acls)?, ()))
        })
        .await
    }

    /// Deletes every binding a filter matches; returns, per filter, the bindings it deleted
    /// (a binding two filters match is reported under the first).
    pub async fn delete(
        &self,
        filters: &[AclFilter],
    ) -> Result<Vec<Vec<AclBinding>>, StorageError> {
        cas::update(self.state.as_ref(), KEY, |current| async move {
            let acls = decode(current.as_ref())?;
            let mut deleted = vec![Vec::new(); filters.len()];
            let mut kept = Vec::with_capacity(acls.len());
            for binding in acls {
                match filters.iter().position(|filter| filter.matches(&binding)) {
                    Some(index) => deleted[index].push(binding),
                    None => kept.push(binding),
                }
            }
            if deleted.iter().all(Vec::is_empty) {
                return Ok(Change::Keep(deleted));
            }
            Ok::<_, StorageError>(Change::Write(encode(&kept)?, deleted))
        })
        .await
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::acl::model::{Operation, PatternType, Permission, ResourceType};

    fn binding(name: &str, principal: &str) -> AclBinding {
        AclBinding {
            resource_type: ResourceType::Topic,
            resource_name: name.to_owned(),
            pattern_type: PatternType::Literal,
            principal: principal.to_owned(),
            host: "*".to_owned(),
            operation: Operation::Read,
            permission: Permission::Allow,
        }
    }

    #[tokio::test]
    async fn acls_are_created_once_and_deleted_by_filter() {
        let storage =
            skiff_storage::Storage::from_engine(skiff_storage_memory::MemoryEngine::new());
        let store = AclStore::new(storage.state);
        assert_eq!(store.list().await.ok(), Some(vec![]));
        let alice = binding("orders", "User:alice");
        let bob = binding("orders", "User:bob");
        store.create(&[alice.clone(), bob.clone()]).await.expect("created");
        store.create(std::slice::from_ref(&alice)).await.expect("created again: a no-op");
        assert_eq!(store.list().await.ok(), Some(vec![alice.clone(), bob.clone()]));

        let of_alice = AclFilter { principal: Some("User:alice".into()), ..AclFilter::any() };
        let nobody = AclFilter { principal: Some("User:carol".into()), ..AclFilter::any() };
        let deleted = store.delete(&[of_alice, nobody]).await.expect("deleted");
        assert_eq!(deleted, vec![vec![alice], vec![]]);
        assert_eq!(store.list().await.ok(), Some(vec![bob.clone()]));
        assert_eq!(store.delete(&[AclFilter::any()]).await.ok(), Some(vec![vec![bob]]));
        assert_eq!(store.list().await.ok(), Some(vec![]));
    }
}
