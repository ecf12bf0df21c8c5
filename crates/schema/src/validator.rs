//! The per-batch record validator shared by the broker and the proxy.
//!
//! A topic whose subject `<topic>-value` (or `<topic>-key`, Confluent's TopicNameStrategy) has a
//! live version accepts only records that decode under it. [`Validator::check`] inflates each
//! batch (bounded), checks every record and returns every invalid one with its index within its
//! batch and the reason, which is what Kafka's INVALID_RECORD `record_errors` (KIP-467) carry.
//!
//! Where schemas come from is a [`SchemaSource`]: the broker reads its storage-backed registry,
//! the proxy a registry over HTTP. The source owns caching: the validator asks it for every
//! subject of every batch and every schema id it meets.
//!
//! What is checked per side with a live subject version:
//! - [`Framing::Wire`]: the payload is in Confluent's wire format; its id must be one of the
//!   subject's live versions and the payload must decode under that schema.
//! - [`Framing::Raw`]: the bare payload must decode under the subject's latest version.
//! - A null payload passes if the latest version accepts null (Avro `null` unions, JSON Schema
//!   allowing `null`), or for values when the caller says null values pass (tombstones).
//!
//! With the record name strategies ([`SubjectStrategy::Record`], [`SubjectStrategy::TopicRecord`])
//! a topic carries records of several types, so its values have no one subject: every non-null
//! value must be in the wire format, and its schema id must be registered under the subject its
//! own schema names (the record's full name, or `<topic>-<full name>`). Keys keep their
//! `<topic>-key` subject: keys are rarely records.

use std::sync::Arc;

use async_trait::async_trait;
use bytes::Bytes;
use skiff_protocol::batch::{Batch, BatchError};
use skiff_protocol::records;

use crate::{wire, Schema};

/// Why a batch could not be checked (as opposed to holding invalid records).
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum CheckError {
    /// The batch does not decode (corrupt, or inflates beyond the limit).
    #[error(transparent)]
    Batch(#[from] BatchError),
    /// The schema source failed: the records are neither valid nor invalid, retry later.
    #[error("schema registry unavailable: {0}")]
    Unavailable(String),
}

/// A subject's live versions as a [`SchemaSource`] knows them.
#[derive(Debug, Clone, Default)]
pub struct SubjectInfo {
    /// The schema ids of the live versions, oldest first; empty when the subject does not exist
    /// or has no live version.
    pub ids: Vec<i32>,
    /// The latest live version's schema.
    pub latest: Option<Arc<Schema>>,
}

impl SubjectInfo {
    /// Whether the wire header's schema id is one of the live versions.
    fn has(&self, id: u32) -> bool {
        self.ids.iter().any(|&known| u32::try_from(known).is_ok_and(|known| known == id))
    }
}

/// The last checks of a framed payload whose schema and subject are known: the id must be one
/// of the subject's live versions and the payload must decode under the schema.
fn registered_and_valid(
    schema: &Schema,
    framed: &wire::Framed<'_>,
    subject: &str,
    info: &SubjectInfo,
) -> Result<(), String> {
    let id = framed.schema_id;
    if !info.has(id) {
        return Err(format!("schema id {id} is not registered under subject {subject}"));
    }
    schema
        .validate(framed.payload, &framed.message_indexes)
        .map_err(|error| format!("schema id {id}: {error}"))
}

/// Where the validator looks schemas up.
#[async_trait]
pub trait SchemaSource: Send + Sync {
    /// The schema registered under `id`, `None` if there is none. A schema id never changes
    /// meaning, so implementations may cache answers forever.
    async fn by_id(&self, id: i32) -> Result<Option<Arc<Schema>>, CheckError>;

    /// The subject's live versions. A subject that does not exist is `Ok` with no ids. An
    /// implementation may answer from a cache, as long as what it answers was true a short,
    /// documented while ago.
    async fn subject(&self, subject: &str) -> Result<Arc<SubjectInfo>, CheckError>;
}

/// How one side of a topic's records is framed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Framing {
    /// Confluent's wire format: magic byte, schema id, message indexes, payload.
    #[default]
    Wire,
    /// The bare payload, checked against the subject's latest version.
    Raw,
}

/// How the subject of a topic's values is named: Confluent's subject name strategies.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum SubjectStrategy {
    /// `TopicNameStrategy`: `<topic>-value`.
    #[default]
    Topic,
    /// `RecordNameStrategy`: the record's full name (Avro named type, Protobuf message, JSON
    /// Schema `title`).
    Record,
    /// `TopicRecordNameStrategy`: `<topic>-<the record's full name>`.
    TopicRecord,
}

/// How a topic's records are checked.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct TopicRules {
    pub key: Framing,
    pub value: Framing,
    /// Null values pass whatever the schema says: tombstones of a compacted topic.
    pub null_values_pass: bool,
    /// How the values' subject is named.
    pub value_subject: SubjectStrategy,
}

/// An invalid record: its index within its batch (what `record_errors` name) and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InvalidRecord {
    pub index: i32,
    pub reason: String,
}

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

/// The subject that governs one side of a topic's records.
struct Rule {
    subject: String,
    framing: Framing,
    info: Arc<SubjectInfo>,
    latest: Arc<Schema>,
}

/// What governs one side of a topic's records.
enum Governed {
    /// One subject, named after the topic.
    Subject(Rule),
    /// Each record's own subject, named after its record (values only).
    ByRecord { strategy: SubjectStrategy, framing: Framing },
}

/// Checks record batches against the subjects of their topic.
pub struct Validator {
    source: Arc<dyn SchemaSource>,
}

impl Validator {
    pub fn new(source: Arc<dyn SchemaSource>) -> Self {
        Self { source }
    }

    /// Checks every record of `batches` (control batches aside) of `topic`, inflating each
    /// batch to at most `inflate_limit` bytes. `Ok` with the invalid records, empty when all
    /// are valid or the topic has no subject.
    pub async fn check(
        &self,
        topic: &str,
        rules: &TopicRules,
        batches: &[Batch],
        inflate_limit: usize,
    ) -> Result<Vec<InvalidRecord>, CheckError> {
        let mut active = Vec::new();
        for (side, framing) in [(Side::Key, rules.key), (Side::Value, rules.value)] {
            let strategy = match side {
                Side::Key => SubjectStrategy::Topic,
                Side::Value => rules.value_subject,
            };
            if strategy != SubjectStrategy::Topic {
                active.push((side, Governed::ByRecord { strategy, framing }));
                continue;
            }
            let subject = format!("{topic}-{}", side.name());
            let info = self.source.subject(&subject).await?;
            let Some(latest) = info.latest.clone() else { continue };
            if info.ids.is_empty() {
                continue;
            }
            active.push((side, Governed::Subject(Rule { subject, framing, info, latest })));
        }
        if active.is_empty() {
            return Ok(Vec::new());
        }
        let mut invalid = Vec::new();
        for batch in batches.iter().filter(|batch| !batch.header.is_control()) {
            let decoded = records::decode_within(batch, inflate_limit)?;
            for (record, index) in decoded.iter().zip(0..) {
                for (side, governed) in &active {
                    let (payload, null_passes) = match side {
                        Side::Key => (record.key.as_ref(), false),
                        Side::Value => (record.value.as_ref(), rules.null_values_pass),
                    };
                    let checked = match governed {
                        Governed::Subject(rule) => {
                            self.check_payload(rule, payload, null_passes).await?
                        }
                        Governed::ByRecord { strategy, framing } => {
                            self.check_by_record(topic, *strategy, *framing, payload).await?
                        }
                    };
                    if let Err(reason) = checked {
                        invalid.push(InvalidRecord {
                            index,
                            reason: format!("{}: {reason}", side.name()),
                        });
                    }
                }
            }
        }
        Ok(invalid)
    }

    /// Checks a value under a record name strategy: the subject is the one its own schema
    /// names. A null value passes: there is no one schema to ask whether it may be null.
    async fn check_by_record(
        &self,
        topic: &str,
        strategy: SubjectStrategy,
        framing: Framing,
        payload: Option<&Bytes>,
    ) -> Result<Result<(), String>, CheckError> {
        let Some(payload) = payload else { return Ok(Ok(())) };
        if framing == Framing::Raw {
            return Ok(Err("a bare payload names no record: the record name strategies need \
                 the wire format"
                .to_owned()));
        }
        // The id comes before anything type-specific; the type says how the rest is framed.
        let id = match wire::parse(payload, crate::SchemaType::Avro) {
            Ok(framed) => framed.schema_id,
            Err(error) => return Ok(Err(error.to_string())),
        };
        let Some(schema) = self.schema_by_wire_id(id).await? else {
            return Ok(Err(format!("schema id {id} does not exist")));
        };
        let framed = match wire::parse(payload, schema.schema_type()) {
            Ok(framed) => framed,
            Err(error) => return Ok(Err(error.to_string())),
        };
        let record = match schema.record_name(&framed.message_indexes) {
            Ok(record) => record,
            Err(error) => return Ok(Err(format!("schema id {id}: {error}"))),
        };
        let subject = match strategy {
            SubjectStrategy::TopicRecord => format!("{topic}-{record}"),
            SubjectStrategy::Record | SubjectStrategy::Topic => record,
        };
        let info = self.source.subject(&subject).await?;
        Ok(registered_and_valid(&schema, &framed, &subject, &info))
    }

    /// The schema a wire header's id names, if any.
    async fn schema_by_wire_id(&self, id: u32) -> Result<Option<Arc<Schema>>, CheckError> {
        match i32::try_from(id) {
            Ok(id) => self.source.by_id(id).await,
            Err(_) => Ok(None),
        }
    }

    /// `Ok(Err(reason))` for an invalid payload; `Err` when it could not be checked.
    async fn check_payload(
        &self,
        rule: &Rule,
        payload: Option<&Bytes>,
        null_passes: bool,
    ) -> Result<Result<(), String>, CheckError> {
        let Some(payload) = payload else {
            if null_passes || rule.latest.accepts_null() {
                return Ok(Ok(()));
            }
            return Ok(Err(format!(
                "null, which the schema of subject {} does not allow",
                rule.subject
            )));
        };
        if rule.framing == Framing::Raw {
            return Ok(rule.latest.validate(payload, &[]).map_err(|error| error.to_string()));
        }
        let framed = match wire::parse(payload, rule.latest.schema_type()) {
            Ok(framed) => framed,
            Err(error) => return Ok(Err(error.to_string())),
        };
        let id = framed.schema_id;
        let Some(schema) = self.schema_by_wire_id(id).await? else {
            return Ok(Err(format!("schema id {id} does not exist")));
        };
        Ok(registered_and_valid(&schema, &framed, &rule.subject, &rule.info))
    }
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;

    use skiff_protocol::batch::split_batches;
    use skiff_protocol::records::{self, BatchFields, Record};

    use super::*;
    use crate::SchemaType;

    const USER: &str = r#"{"type":"record","name":"User","fields":[{"name":"age","type":"int"}]}"#;

    /// Subjects and ids in memory; `down` makes every look-up fail.
    #[derive(Default)]
    struct FakeSource {
        schemas: HashMap<i32, Arc<Schema>>,
        subjects: HashMap<String, Vec<i32>>,
        down: bool,
    }

    impl FakeSource {
        fn with(mut self, subject: &str, id: i32, text: &str) -> Self {
            let schema = Schema::parse(SchemaType::Avro, text, &[]).expect("schema parses");
            self.schemas.insert(id, Arc::new(schema));
            self.subjects.entry(subject.to_owned()).or_default().push(id);
            self
        }
    }

    #[async_trait]
    impl SchemaSource for FakeSource {
        async fn by_id(&self, id: i32) -> Result<Option<Arc<Schema>>, CheckError> {
            if self.down {
                return Err(CheckError::Unavailable("down".to_owned()));
            }
            Ok(self.schemas.get(&id).cloned())
        }

        async fn subject(&self, subject: &str) -> Result<Arc<SubjectInfo>, CheckError> {
            if self.down {
                return Err(CheckError::Unavailable("down".to_owned()));
            }
            let ids = self.subjects.get(subject).cloned().unwrap_or_default();
            let latest = ids.last().and_then(|id| self.schemas.get(id).cloned());
            Ok(Arc::new(SubjectInfo { ids, latest }))
        }
    }

    fn framed(id: u32, payload: &[u8]) -> Bytes {
        let mut bytes = wire::encode_header(id, SchemaType::Avro, &[]);
        bytes.extend_from_slice(payload);
        Bytes::from(bytes)
    }

    fn batches(values: Vec<Option<Bytes>>) -> Vec<Batch> {
        let records: Vec<Record> = values
            .into_iter()
            .zip(0..)
            .map(|(value, offset_delta)| Record {
                offset_delta,
                timestamp: 0,
                key: None,
                value,
                headers: Vec::new(),
            })
            .collect();
        let fields = BatchFields::producerless(records.len(), 0);
        let bytes = records::encode(&fields, &records, 1).expect("batch encodes");
        split_batches(&bytes).expect("batch splits")
    }

    fn check(source: FakeSource, rules: TopicRules, values: Vec<Option<Bytes>>) -> Vec<String> {
        let validator = Validator::new(Arc::new(source));
        let found = futures::executor::block_on(validator.check(
            "users",
            &rules,
            &batches(values),
            1 << 20,
        ));
        match found {
            Ok(invalid) => {
                invalid.into_iter().map(|i| format!("{}: {}", i.index, i.reason)).collect()
            }
            Err(error) => vec![format!("unchecked: {error}")],
        }
    }

    #[test]
    fn every_invalid_record_is_named_with_its_index() {
        let source =
            FakeSource::default().with("users-value", 1, USER).with("other-value", 2, USER);
        let values = vec![
            Some(framed(1, &[0x54])),
            Some(framed(1, &[])),
            Some(framed(9, &[0x54])),
            Some(framed(2, &[0x54])),
            Some(Bytes::from_static(b"{\"age\": 42}")),
            None,
        ];
        let found = check(source, TopicRules::default(), values);
        assert_eq!(found.len(), 5, "{found:?}");
        assert!(found[0].starts_with("1: value: schema id 1: "), "{found:?}");
        assert_eq!(found[1], "2: value: schema id 9 does not exist");
        assert_eq!(found[2], "3: value: schema id 2 is not registered under subject users-value");
        assert!(found[3].starts_with("4: value: "), "{found:?}");
        assert_eq!(
            found[4],
            "5: value: null, which the schema of subject users-value does not allow"
        );
    }

    #[test]
    fn raw_framing_and_tombstones() {
        let source = FakeSource::default().with("users-value", 1, USER);
        let rules =
            TopicRules { value: Framing::Raw, null_values_pass: true, ..TopicRules::default() };
        let found = check(source, rules, vec![Some(Bytes::from_static(&[0x54])), None]);
        assert!(found.is_empty(), "{found:?}");
    }

    #[test]
    fn record_name_strategies_take_the_subject_from_the_record() {
        const ORDER: &str = r#"{"type":"record","name":"Order","namespace":"shop","fields":[]}"#;
        let source = || {
            FakeSource::default()
                .with("shop.Order", 1, ORDER)
                .with("users-shop.Order", 2, ORDER)
                .with("users-value", 3, USER)
        };
        let values = || {
            vec![
                Some(framed(1, &[])),
                Some(framed(2, &[])),
                Some(framed(3, &[0x54])),
                Some(Bytes::from_static(b"{}")),
                None,
            ]
        };
        let record = TopicRules { value_subject: SubjectStrategy::Record, ..TopicRules::default() };
        let found = check(source(), record, values());
        assert_eq!(found.len(), 3, "{found:?}");
        assert_eq!(found[0], "1: value: schema id 2 is not registered under subject shop.Order");
        // The User schema names its record `User`, a subject that does not exist.
        assert_eq!(found[1], "2: value: schema id 3 is not registered under subject User");
        assert!(found[2].starts_with("3: value: "), "{found:?}");

        let topic_record =
            TopicRules { value_subject: SubjectStrategy::TopicRecord, ..TopicRules::default() };
        let found = check(source(), topic_record, values());
        assert_eq!(found.len(), 3, "{found:?}");
        assert_eq!(
            found[0],
            "0: value: schema id 1 is not registered under subject users-shop.Order"
        );

        let raw = TopicRules { value: Framing::Raw, ..record };
        let found = check(source(), raw, vec![Some(Bytes::from_static(&[0x54]))]);
        assert_eq!(
            found,
            ["0: value: a bare payload names no record: the record name strategies need the wire format"]
        );
    }

    #[test]
    fn a_topic_without_subjects_is_not_checked() {
        let source = FakeSource::default().with("other-value", 1, USER);
        let found = check(source, TopicRules::default(), vec![Some(Bytes::from_static(b"x"))]);
        assert!(found.is_empty(), "{found:?}");
    }

    #[test]
    fn a_failing_source_leaves_the_batch_unchecked() {
        let source = FakeSource { down: true, ..FakeSource::default() };
        let found = check(source, TopicRules::default(), vec![Some(Bytes::from_static(b"x"))]);
        assert_eq!(found, ["unchecked: schema registry unavailable: down"]);
    }
}
