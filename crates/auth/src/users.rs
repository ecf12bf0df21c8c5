//! The users a cluster knows, in the state store: one key per user (`users/<name>`), holding
//! a JSON document with the user's SCRAM credentials by mechanism. Every broker on the storage
//! URL reads the same users, and `skiff user` writes them with no broker running.

use std::collections::BTreeMap;
use std::sync::Arc;

use bytes::Bytes;
use serde::{Deserialize, Serialize};
use skiff_storage::cas::{self, Change};
use skiff_storage::{StateStore, StorageError, Versioned};

use crate::scram::{ScramCredential, ScramMechanism};

/// State keys of users.
pub const PREFIX: &str = "users/";

/// One user: a credential per SCRAM mechanism it may log in with (PLAIN uses any of them).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct User {
    /// By mechanism name (`SCRAM-SHA-256`, `SCRAM-SHA-512`).
    pub scram: BTreeMap<String, ScramCredential>,
}

impl User {
    pub fn credential(&self, mechanism: ScramMechanism) -> Option<&ScramCredential> {
        self.scram.get(mechanism.name())
    }

    /// The mechanisms the user has a credential for, with their iteration counts.
    pub fn mechanisms(&self) -> Vec<(ScramMechanism, u32)> {
        ScramMechanism::ALL
            .into_iter()
            .filter_map(|mechanism| Some((mechanism, self.credential(mechanism)?.iterations)))
            .collect()
    }

    /// Whether `password` is the user's (SASL PLAIN): checked against the strongest credential
    /// the user has.
    pub fn matches_password(&self, password: &str) -> bool {
        ScramMechanism::ALL.into_iter().rev().find_map(|mechanism| {
            Some(self.credential(mechanism)?.matches_password(mechanism, password))
        }) == Some(true)
    }
}

/// The users of one storage.
#[derive(Clone)]
pub struct Users {
    state: Arc<dyn StateStore>,
}

fn key(name: &str) -> String {
    format!("{PREFIX}{name}")
}

fn decode(name: &str, stored: &Versioned) -> Result<User, StorageError> {
    serde_json::from_slice(&stored.value)
        .map_err(|error| StorageError::Corrupt(format!("user {name}: {error}")))
}

fn encode(user: &User) -> Result<Bytes, StorageError> {
    serde_json::to_vec(user)
        .map(Bytes::from)
        .map_err(|error| StorageError::Corrupt(format!("encoding a user: {error}")))
}

impl Users {
    pub fn new(state: Arc<dyn StateStore>) -> Self {
        Self { state }
    }

    pub async fn get(&self, name: &str) -> Result<Option<User>, StorageError> {
        match self.state.get(&key(name)).await? {
            Some(stored) => decode(name, &stored).map(Some),
            None => Ok(None),
        }
    }

    /// Every user, ordered by name.
    pub async fn list(&self) -> Result<Vec<(String, User)>, StorageError> {
        let mut users = Vec::new();
        for (key, stored) in self.state.list(PREFIX).await? {
            let name = key.strip_prefix(PREFIX).unwrap_or(&key).to_owned();
            let user = decode(&name, &stored)?;
            users.push((name, user));
        }
        Ok(users)
    }

    /// Sets the user's credential for `mechanism`, creating the user if new.
    pub async fn upsert(
        &self,
        name: &str,
        mechanism: ScramMechanism,
        credential: ScramCredential,
    ) -> Result<(), StorageError> {
        cas::update(self.state.as_ref(), &key(name), |current| {
            let credential = credential.clone();
            async move {
                let mut user = match &current {
                    Some(stored) => decode(name, stored)?,
                    None => User::default(),
                };
                user.scram.insert(mechanism.name().to_owned(), credential);
                Ok::<_, StorageError>(Change::Write(encode(&user)?, ()))
            }
        })
        .await
    }

    /// Removes the user's credential for `mechanism` (and the user with its last one).
    /// Returns whether there was one.
    pub async fn remove(
        &self,
        name: &str,
        mechanism: ScramMechanism,
    ) -> Result<bool, StorageError> {
        cas::update(self.state.as_ref(), &key(name), |current| async move {
            let Some(stored) = current else { return Ok(Change::Keep(false)) };
            let mut user = decode(name, &stored)?;
            if user.scram.remove(mechanism.name()).is_none() {
                return Ok(Change::Keep(false));
            }
            if user.scram.is_empty() {
                return Ok(Change::Delete(true));
            }
            Ok::<_, StorageError>(Change::Write(encode(&user)?, true))
        })
        .await
    }

    /// Deletes the user with all its credentials. Returns whether it existed.
    pub async fn delete(&self, name: &str) -> Result<bool, StorageError> {
        cas::update(self.state.as_ref(), &key(name), |current| async move {
            Ok::<_, StorageError>(match current {
                Some(_) => Change::Delete(true),
                None => Change::Keep(false),
            })
        })
        .await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn users() -> Users {
        let storage =
            skiff_storage::Storage::from_engine(skiff_storage_memory::MemoryEngine::new());
        Users::new(storage.state)
    }

    #[tokio::test]
    async fn users_gain_and_lose_credentials_per_mechanism() {
        let users = users();
        assert_eq!(users.get("alice").await.ok(), Some(None));
        let sha256 = ScramCredential::new(ScramMechanism::Sha256, "pw-256", 4096);
        let sha512 = ScramCredential::new(ScramMechanism::Sha512, "pw-512", 8192);
        users.upsert("alice", ScramMechanism::Sha256, sha256.clone()).await.expect("added");
        users.upsert("alice", ScramMechanism::Sha512, sha512).await.expect("added");
        users.upsert("bob", ScramMechanism::Sha256, sha256).await.expect("added");
        let alice = users.get("alice").await.expect("read").expect("exists");
        assert_eq!(
            alice.mechanisms(),
            [(ScramMechanism::Sha256, 4096), (ScramMechanism::Sha512, 8192)]
        );
        // PLAIN checks the strongest credential.
        assert!(alice.matches_password("pw-512"));
        assert!(!alice.matches_password("pw-256"));
        let names: Vec<String> =
            users.list().await.expect("listed").into_iter().map(|(name, _)| name).collect();
        assert_eq!(names, ["alice", "bob"]);

        assert_eq!(users.remove("alice", ScramMechanism::Sha512).await.ok(), Some(true));
        assert_eq!(users.remove("alice", ScramMechanism::Sha512).await.ok(), Some(false));
        let alice = users.get("alice").await.expect("read").expect("still exists");
        assert!(alice.matches_password("pw-256"));
        assert_eq!(users.remove("alice", ScramMechanism::Sha256).await.ok(), Some(true));
        assert_eq!(users.get("alice").await.ok(), Some(None), "gone with its last credential");
        assert_eq!(users.delete("bob").await.ok(), Some(true));
        assert_eq!(users.delete("bob").await.ok(), Some(false));
        assert!(users.list().await.expect("listed").is_empty());
    }
}
