//! Counts schemas the registry creates through this broker: a decorator over the registry's
//! state store that sees each schema document stored under a new id (a create-only write of
//! a schema key that won), whichever REST call caused it, with no counting code in the
//! registry itself.

use std::sync::Arc;

use async_trait::async_trait;
use bytes::Bytes;
use skiff_metrics::Metrics;
use skiff_storage::{Result, StateStore, Versioned};

pub(crate) struct Registrations {
    inner: Arc<dyn StateStore>,
    metrics: Arc<Metrics>,
}

impl Registrations {
    pub(crate) fn new(inner: Arc<dyn StateStore>, metrics: Arc<Metrics>) -> Self {
        Self { inner, metrics }
    }
}

#[async_trait]
impl StateStore for Registrations {
    async fn get(&self, key: &str) -> Result<Option<Versioned>> {
        self.inner.get(key).await
    }

    async fn put(&self, key: &str, value: Bytes, expected: Option<u64>) -> Result<u64> {
        let result = self.inner.put(key, value, expected).await;
        if result.is_ok() && expected.is_none() && skiff_registry::is_schema_key(key) {
            self.metrics.schema_created();
        }
        result
    }

    async fn delete(&self, key: &str, expected: u64) -> Result<()> {
        self.inner.delete(key, expected).await
    }

    async fn list(&self, prefix: &str) -> Result<Vec<(String, Versioned)>> {
        self.inner.list(prefix).await
    }
}
