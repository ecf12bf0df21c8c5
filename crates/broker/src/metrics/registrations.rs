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

#[cfg(test)]
mod tests {
    use super::*;

    fn created(metrics: &Metrics) -> Option<String> {
        let text = metrics.encode().ok()?;
        let line =
            text.lines().find(|line| line.starts_with("skiff_registry_schemas_created_total"))?;
        line.rsplit(' ').next().map(str::to_owned)
    }

    #[tokio::test]
    async fn only_a_won_create_of_a_schema_key_counts() {
        let metrics = Arc::new(Metrics::new());
        let state = skiff_storage_memory::MemoryEngine::storage().state;
        let counted = Registrations::new(state, metrics.clone());
        let value = || Bytes::from_static(b"{}");
        let version = counted.put("registry/schemas/1", value(), None).await.expect("created");
        assert!(counted.put("registry/schemas/1", value(), None).await.is_err(), "lost race");
        counted.put("registry/schemas/1", value(), Some(version)).await.expect("replaced");
        counted.put("registry/next-id", value(), None).await.expect("not a schema");
        assert_eq!(created(&metrics).as_deref(), Some("1"));
    }
}
