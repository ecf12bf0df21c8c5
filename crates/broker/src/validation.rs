//! Broker-side schema validation: a topic whose subject `<topic>-value` (or `<topic>-key`) has
//! a schema in the registry accepts only records that decode under it; one invalid record
//! refuses its partition's batch with INVALID_RECORD, every invalid record named in
//! `record_errors`, and nothing of that batch is stored.
//!
//! Records in Confluent's wire format (magic 0, schema id, Protobuf message indexes) must carry
//! an id registered under the subject; with `skiff.<side>.schema.framing=raw` payloads carry no
//! header and are checked against the subject's latest version. What a broker learned about a
//! subject is trusted for [`SUBJECT_TTL`] (or until this broker's registry changes), so a
//! schema registered through another broker is enforced here within that time; schemas by id
//! are immutable and cached by the registry.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use async_trait::async_trait;
use bytes::Bytes;
use skiff_protocol::records;
use skiff_protocol::ErrorCode;
use skiff_registry::{RegisteredSchema, Registry, RegistryError, SchemaType};
use skiff_schema::wire;
use skiff_storage::{Batch, StateStore, TopicMeta, Versioned};

use crate::topic_config;

/// How long what this broker read about a subject is trusted.
const SUBJECT_TTL: Duration = Duration::from_secs(1);
/// Subjects remembered at most; the cache is emptied beyond.
const CACHE_SUBJECTS: usize = 10_000;

/// Which part of a record a subject describes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Side {
    Key,
    Value,
}

impl Side {
    fn name(self) -> &'static str {
        match self {
            Side::Key => "key",
            Side::Value => "value",
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Framing {
    /// Confluent's wire format: magic byte, schema id, message indexes, payload.
    Wire,
    /// The bare payload, checked against the subject's latest version.
    Raw,
}

/// A subject's live versions as this broker last read them.
struct SubjectInfo {
    ids: Vec<i32>,
    latest: Option<Arc<RegisteredSchema>>,
}

/// A subject as read: when, at which count of this broker's registry writes, and what.
struct Cached {
    read_at: Instant,
    generation: u64,
    info: Arc<SubjectInfo>,
}

/// One side of a topic's records and the subject that governs it.
struct Rule {
    side: Side,
    subject: String,
    framing: Framing,
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
pub(crate) struct ChangeCounter {
    inner: Arc<dyn StateStore>,
    writes: AtomicU64,
}

impl ChangeCounter {
    pub(crate) fn new(inner: Arc<dyn StateStore>) -> Self {
        Self { inner, writes: AtomicU64::new(0) }
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

pub(crate) struct Validator {
    registry: Arc<Registry>,
    changes: Arc<ChangeCounter>,
    subjects: Mutex<HashMap<String, Cached>>,
}

impl Validator {
    pub(crate) fn new(registry: Arc<Registry>, changes: Arc<ChangeCounter>) -> Self {
        Self { registry, changes, subjects: Mutex::new(HashMap::new()) }
    }

    /// Checks every record of `batches` (control batches aside) for `topic`. `Ok` with the
    /// invalid records, empty when all are valid or the topic has no schema.
    pub(crate) async fn check(
        &self,
        topic: &TopicMeta,
        batches: &[Batch],
        inflate_limit: usize,
        batch_code: impl Fn(&skiff_protocol::batch::BatchError) -> ErrorCode,
    ) -> Result<Invalid, Unchecked> {
        let rules = self.rules(topic).await?;
        if rules.is_empty() {
            return Ok(Vec::new());
        }
        let compacted = crate::cleaner::has_policy(topic, "compact");
        let mut invalid = Vec::new();
        for batch in batches.iter().filter(|batch| !batch.header.is_control()) {
            let decoded = records::decode_within(batch, inflate_limit).map_err(|error| {
                Unchecked { code: batch_code(&error), message: error.to_string() }
            })?;
            for (record, index) in decoded.iter().zip(0..) {
                for rule in &rules {
                    let payload = match rule.side {
                        Side::Key => record.key.as_ref(),
                        Side::Value => record.value.as_ref(),
                    };
                    let tombstone = compacted && rule.side == Side::Value;
                    if let Err(reason) = self.check_payload(rule, payload, tombstone).await? {
                        invalid.push((index, format!("{}: {reason}", rule.side.name())));
                    }
                }
            }
        }
        Ok(invalid)
    }

    /// The rules for `topic`: one per side whose subject has a live version.
    async fn rules(&self, topic: &TopicMeta) -> Result<Vec<Rule>, Unchecked> {
        let enabled = topic_config::effective(&topic.configs, "skiff.schema.validation");
        if enabled == Some("false") {
            return Ok(Vec::new());
        }
        let mut rules = Vec::new();
        for side in [Side::Key, Side::Value] {
            let subject = format!("{}-{}", topic.name, side.name());
            let info = self.subject(&subject).await?;
            if info.ids.is_empty() {
                continue;
            }
            let framing_config = format!("skiff.{}.schema.framing", side.name());
            let framing = match topic_config::effective(&topic.configs, &framing_config) {
                Some("raw") => Framing::Raw,
                _ => Framing::Wire,
            };
            rules.push(Rule { side, subject, framing, info });
        }
        Ok(rules)
    }

    /// What the registry says about a subject, read at most once per [`SUBJECT_TTL`] unless
    /// this broker's registry changed meanwhile.
    async fn subject(&self, subject: &str) -> Result<Arc<SubjectInfo>, Unchecked> {
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
            Some(&(_, id)) => self.registry.schema_by_id(id).await.map_err(unavailable)?,
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

    /// `Ok(Err(reason))` for an invalid payload; `Err` when it could not be checked.
    async fn check_payload(
        &self,
        rule: &Rule,
        payload: Option<&Bytes>,
        tombstone: bool,
    ) -> Result<Result<(), String>, Unchecked> {
        let Some(latest) = rule.info.latest.as_ref() else { return Ok(Ok(())) };
        let Some(payload) = payload else {
            if tombstone || accepts_null(latest) {
                return Ok(Ok(()));
            }
            return Ok(Err(format!(
                "null, which the schema of subject {} does not allow",
                rule.subject
            )));
        };
        if rule.framing == Framing::Raw {
            return Ok(latest.schema.validate(payload, &[]).map_err(|error| error.to_string()));
        }
        let framed = match wire::parse(payload, latest.schema_type) {
            Ok(framed) => framed,
            Err(error) => return Ok(Err(error.to_string())),
        };
        let Ok(id) = i32::try_from(framed.schema_id) else {
            return Ok(Err(format!("schema id {} does not exist", framed.schema_id)));
        };
        if !rule.info.ids.contains(&id) {
            let known = self.registry.schema_by_id(id).await.map_err(unavailable)?;
            return Ok(Err(match known {
                Some(_) => {
                    format!("schema id {id} is not registered under subject {}", rule.subject)
                }
                None => format!("schema id {id} does not exist"),
            }));
        }
        let Some(schema) = self.registry.schema_by_id(id).await.map_err(unavailable)? else {
            return Ok(Err(format!("schema id {id} does not exist")));
        };
        Ok(schema
            .schema
            .validate(framed.payload, &framed.message_indexes)
            .map_err(|error| format!("schema id {id}: {error}")))
    }
}

/// Whether a null payload is a valid value of the schema: JSON Schema that accepts `null`,
/// Avro `null` or a union with `null`; never a Protobuf message.
fn accepts_null(registered: &RegisteredSchema) -> bool {
    match registered.schema_type {
        SchemaType::Json => registered.schema.validate(b"null", &[]).is_ok(),
        SchemaType::Avro => {
            let Ok(parsed) = serde_json::from_str::<serde_json::Value>(&registered.text) else {
                return false;
            };
            let is_null = |value: &serde_json::Value| {
                value == "null" || value.get("type").is_some_and(|kind| kind == "null")
            };
            is_null(&parsed)
                || parsed.as_array().is_some_and(|branches| branches.iter().any(is_null))
        }
        _ => false,
    }
}

fn unavailable(error: RegistryError) -> Unchecked {
    tracing::warn!(%error, "schema registry read failed");
    Unchecked { code: ErrorCode::KafkaStorageError, message: format!("schema registry: {error}") }
}
