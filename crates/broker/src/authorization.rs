//! The ACLs every request is checked against (`--authorizer acl`).
//!
//! The cluster's ACLs are one document in storage (`skiff_auth::acl::store`); each broker keeps
//! a snapshot of it and serves every request from that snapshot, so a check is a read of memory,
//! never a storage call. A snapshot older than `--acl-refresh-ms` is still used while one fresh
//! read replaces it in the background (a request never waits for a refresh, and an idle broker
//! reads nothing); a CreateAcls or DeleteAcls on this broker replaces it at once. So an ACL made
//! through one broker is enforced by this one within the refresh period.
//!
//! Without a snapshot (the first read failed) there is nothing to decide with: the request is
//! refused by closing the connection, which clients retry, rather than answered with an
//! authorization error they would give up on.

use std::sync::Arc;
use std::time::Duration;

use skiff_auth::acl::{AclStore, Authorizer, AuthorizerConfig};
use skiff_storage::{StateStore, StorageError};

use crate::cached::Cached;

/// `--authorizer acl` and its settings.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuthorizationConfig {
    /// `super.users` and `allow.everyone.if.no.acl.found`.
    pub rules: AuthorizerConfig,
    /// How old a broker's ACL snapshot may grow before it is read again. Zero: the ACLs are
    /// read for every request (every broker sees a change at once, for a storage read each).
    pub refresh: Duration,
}

/// One broker's ACL snapshot and how to renew it.
pub(crate) struct Authorization {
    store: AclStore,
    snapshot: Arc<Cached<Authorizer>>,
}

impl Authorization {
    pub(crate) fn new(state: Arc<dyn StateStore>, config: AuthorizationConfig) -> Self {
        let store = AclStore::new(state);
        let (reader, rules) = (store.clone(), config.rules);
        let snapshot = Cached::new(
            "ACLs",
            config.refresh,
            Box::new(move || {
                let (reader, rules) = (reader.clone(), rules.clone());
                Box::pin(async move { Ok(Authorizer::new(reader.list().await?, rules)) })
            }),
        );
        Self { store, snapshot: Arc::new(snapshot) }
    }

    /// Where the ACLs are stored (CreateAcls, DescribeAcls, DeleteAcls).
    pub(crate) fn store(&self) -> &AclStore {
        &self.store
    }

    /// The authorizer to check a request with (see the module doc for how fresh it is).
    pub(crate) async fn authorizer(&self) -> Result<Arc<Authorizer>, StorageError> {
        self.snapshot.get().await
    }

    /// The same snapshot for the Schema Registry, which checks subjects against it.
    pub(crate) fn for_registry(self: &Arc<Self>) -> Arc<dyn skiff_registry::http::AclSource> {
        self.clone()
    }

    /// Reads the ACLs now and makes them the snapshot (after this broker changed them).
    pub(crate) async fn reload(&self) -> Result<Arc<Authorizer>, StorageError> {
        self.snapshot.reload().await
    }
}

impl skiff_registry::http::AclSource for Authorization {
    fn authorizer(&self) -> skiff_registry::http::AuthorizerFuture<'_> {
        Box::pin(async move { self.snapshot.get().await.map_err(|error| error.to_string()) })
    }
}
