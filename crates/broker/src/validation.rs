//! Broker-side schema validation: a topic whose subject `<topic>-value` (or `<topic>-key`) has
//! a schema in the registry accepts only records that decode under it; one invalid record
//! refuses its partition's batch with INVALID_RECORD, every invalid record named in
//! `record_errors`, and nothing of that batch is stored.
//!
//! Records in Confluent's wire format (magic 0, schema id, Protobuf message indexes) must carry
//! an id registered under the subject; with `skiff.<side>.schema.framing=raw` payloads carry no
//! header and are checked against the subject's latest version. With
//! `skiff.subject.name.strategy=record|topic_record` every value must be framed, its subject
//! named after the record its schema describes. What a broker learned about a
//! subject is trusted for [`SUBJECT_TTL`] (or until this broker's registry changes), so a
//! schema registered through another broker is enforced here within that time; schemas by id
//! are immutable and cached by the registry.
//!
//! The checking itself is `skiff_schema::validator`, shared with the proxy; this module is its
//! [`SchemaSource`] over the broker's registry and the topic configs that choose its rules.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use async_trait::async_trait;
use bytes::Bytes;
use skiff_protocol::produce::code_for_batch_error;
use skiff_protocol::ErrorCode;
use skiff_registry::{Registry, RegistryError};
use skiff_schema::validator::{
    CheckError, Framing, InvalidRecord, SchemaSource, SubjectInfo, SubjectStrategy, TopicRules,
};
use skiff_schema::Schema;
use skiff_storage::{Batch, StateStore, TopicMeta, Versioned};

use crate::topic_config;

/// How long what this broker read about a subject is trusted.
const SUBJECT_TTL: Duration = Duration::from_secs(1);
/// Subjects remembered at most; the cache is emptied beyond.
const CACHE_SUBJECTS: usize = 10_000;

/// A subject as read: when, at which count of this broker's registry writes, and what.
struct Cached {
    read_at: Instant,
    generation: u64,
    info: Arc<SubjectInfo>,
}

/// Why a batch could not be checked at all (not an invalid record): the partition's error.
pub(crate) struct Unchecked {
    pub(crate) code: ErrorCode,
    pub(crate) message: String,
}

/// The invalid records of a partition's batches: (index within its batch, reason).
pub(crate) type Invalid = Vec<(i32, String)>;

/// The registry's state store, counting this broker's writes to it: a change made here
/// (a schema registered through this broker's REST API) is seen by the next produce at once.
/// With metrics it also counts the schemas created (a won create-only write of a schema key,
/// whichever REST call caused it), so the registry itself holds no counting code.
pub(crate) struct ChangeCounter {
    inner: Arc<dyn StateStore>,
    writes: AtomicU64,
    metrics: Option<Arc<skiff_metrics::Metrics>>,
}

impl ChangeCounter {
    pub(crate) fn new(
        inner: Arc<dyn StateStore>,
        metrics: Option<Arc<skiff_metrics::Metrics>>,
    ) -> Self {
        Self { inner, writes: AtomicU64::new(0), metrics }
    }

    fn generation(&self) -> u64 {
        self.writes.load(Ordering::Acquire)
    }

    fn count<T>(&self, result: skiff_storage::Result<T>) -> skiff_storage::Result<T> {
        // Counted whether or not the write won: a lost race means someone else changed it.
        self.writes.fetch_add(1, Ordering::AcqRel);
        result
    }
}

#[async_trait]
impl StateStore for ChangeCounter {
    async fn get(&self, key: &str) -> skiff_storage::Result<Option<Versioned>> {
        self.inner.get(key).await
    }

    async fn put(
        &self,
        key: &str,
        value: Bytes,
        expected: Option<u64>,
    ) -> skiff_storage::Result<u64> {
        let result = self.inner.put(key, value, expected).await;
        if result.is_ok() && expected.is_none() && skiff_registry::is_schema_key(key) {
            if let Some(metrics) = &self.metrics {
                metrics.schema_created();
            }
        }
        self.count(result)
    }

    async fn delete(&self, key: &str, expected: u64) -> skiff_storage::Result<()> {
        let result = self.inner.delete(key, expected).await;
        self.count(result)
    }

    async fn list(&self, prefix: &str) -> skiff_storage::Result<Vec<(String, Versioned)>> {
        self.inner.list(prefix).await
    }
}

/// The registry in this broker's storage as a schema source: schemas by id come from the
/// registry's own cache (ids are immutable); subjects are re-read after [`SUBJECT_TTL`] or as
/// soon as this broker's registry changed.
struct RegistrySource {
    registry: Arc<Registry>,
    changes: Arc<ChangeCounter>,
    subjects: Mutex<HashMap<String, Cached>>,
}

#[async_trait]
impl SchemaSource for RegistrySource {
    async fn by_id(&self, id: i32) -> Result<Option<Arc<Schema>>, CheckError> {
        let found = self.registry.schema_by_id(id).await.map_err(unavailable)?;
        Ok(found.map(|registered| registered.schema.clone()))
    }

    async fn subject(&self, subject: &str) -> Result<Arc<SubjectInfo>, CheckError> {
        let generation = self.changes.generation();
        {
            let cache = self.subjects.lock().unwrap_or_else(PoisonError::into_inner);
            if let Some(cached) = cache.get(subject) {
                if cached.generation == generation && cached.read_at.elapsed() < SUBJECT_TTL {
                    return Ok(cached.info.clone());
                }
            }
        }
        let read_at = Instant::now();
        let versions = self.registry.version_ids(subject).await.map_err(unavailable)?;
        let latest = match versions.last() {
            Some(&(_, id)) => self.by_id(id).await?,
            None => None,
        };
        let info =
            Arc::new(SubjectInfo { ids: versions.iter().map(|&(_, id)| id).collect(), latest });
        let mut cache = self.subjects.lock().unwrap_or_else(PoisonError::into_inner);
        if cache.len() >= CACHE_SUBJECTS {
            cache.clear();
        }
        cache.insert(subject.to_owned(), Cached { read_at, generation, info: info.clone() });
        Ok(info)
    }
}

/// The shared validator with each topic's rules read from its configs.
pub(crate) struct Validator {
    inner: skiff_schema::validator::Validator,
}

impl Validator {
    pub(crate) fn new(registry: Arc<Registry>, changes: Arc<ChangeCounter>) -> Self {
        let source = RegistrySource { registry, changes, subjects: Mutex::new(HashMap::new()) };
        Self { inner: skiff_schema::validator::Validator::new(Arc::new(source)) }
    }

    /// Checks every record of `batches` (control batches aside) for `topic`. `Ok` with the
    /// invalid records, empty when all are valid or the topic has no schema.
    pub(crate) async fn check(
        &self,
        topic: &TopicMeta,
        batches: &[Batch],
        inflate_limit: usize,
    ) -> Result<Invalid, Unchecked> {
        let enabled = topic_config::effective(&topic.configs, "skiff.schema.validation");
        if enabled == Some("false") {
            return Ok(Vec::new());
        }
        let framing = |side: &str| match topic_config::effective(
            &topic.configs,
            &format!("skiff.{side}.schema.framing"),
        ) {
            Some("raw") => Framing::Raw,
            _ => Framing::Wire,
        };
        let rules = TopicRules {
            key: framing("key"),
            value: framing("value"),
            null_values_pass: crate::cleaner::has_policy(topic, "compact"),
            value_subject: match topic_config::effective(
                &topic.configs,
                "skiff.subject.name.strategy",
            ) {
                Some("record") => SubjectStrategy::Record,
                Some("topic_record") => SubjectStrategy::TopicRecord,
                _ => SubjectStrategy::Topic,
            },
        };
        match self.inner.check(&topic.name, &rules, batches, inflate_limit).await {
            Ok(invalid) => Ok(invalid
                .into_iter()
                .map(|InvalidRecord { index, reason }| (index, reason))
                .collect()),
            Err(CheckError::Batch(error)) => {
                Err(Unchecked { code: code_for_batch_error(&error), message: error.to_string() })
            }
            Err(error) => {
                Err(Unchecked { code: ErrorCode::KafkaStorageError, message: error.to_string() })
            }
        }
    }
}

fn unavailable(error: RegistryError) -> CheckError {
    tracing::warn!(%error, "schema registry read failed");
    CheckError::Unavailable(error.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn created(metrics: &skiff_metrics::Metrics) -> Option<String> {
        let text = metrics.encode().ok()?;
        let line =
            text.lines().find(|line| line.starts_with("skiff_registry_schemas_created_total"))?;
        line.rsplit(' ').next().map(str::to_owned)
    }

    #[tokio::test]
    async fn only_a_won_create_of_a_schema_key_counts_as_a_schema_created() {
        let metrics = Arc::new(skiff_metrics::Metrics::new());
        let state = skiff_storage_memory::MemoryEngine::storage().state;
        let counted = ChangeCounter::new(state, Some(metrics.clone()));
        let value = || Bytes::from_static(b"{}");
        let version = counted.put("registry/schemas/1", value(), None).await.expect("created");
        assert!(counted.put("registry/schemas/1", value(), None).await.is_err(), "lost race");
        counted.put("registry/schemas/1", value(), Some(version)).await.expect("replaced");
        counted.put("registry/next-id", value(), None).await.expect("not a schema");
        assert_eq!(created(&metrics).as_deref(), Some("1"));
        assert_eq!(counted.generation(), 4, "every write counts as a change, won or not");
    }
}
