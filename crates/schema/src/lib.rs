//! Schemas for topics: parse Avro, JSON Schema and Protobuf schemas, validate payloads against
//! them, read the Schema Registry wire format, and check whether a new version of a schema is
//! compatible with the previous ones.
//!
//! A pure library: no network, no I/O, no async runtime (the validator's schema lookups are
//! `async` trait methods that the caller implements). The registry (REST API and storage)
//! looks schemas up and hands their texts to [`Schema::parse`]; the broker and the proxy parse
//! each record with [`wire::parse`] and check it with [`Schema::validate`].
//!
//! # Layout
//! - `lib.rs`: [`SchemaType`], [`Reference`], [`ResolvedReference`] and [`Schema`], which
//!   dispatches to one module per format:
//!   - `avro.rs` (`apache-avro`): named types of referenced schemas are available to the main
//!     schema; validation decodes the payload as one datum of the schema.
//!   - `json.rs` (`jsonschema`, without its HTTP and file retrieval): references are registered
//!     under their names so `$ref` resolves offline; drafts 4, 6, 7, 2019-09 and 2020-12, draft 7
//!     when the schema names none (as Confluent does).
//!   - `protobuf.rs` (`protox` compiles the text, `prost-reflect` decodes): imports resolve to
//!     the referenced files by their import path, and to the well-known `google/protobuf/*.proto`.
//! - [`Schema::encode_json`] / [`Schema::decode_json`]: plain JSON to and from payloads, for
//!   tools that produce and consume JSON (`skiff produce|consume --format json`).
//! - [`Schema::avro_schema`], [`Schema::decode_avro`], [`Schema::protobuf_message`],
//!   [`Schema::json_schema`]: the parsed schema and decoded values in their libraries' own types,
//!   for the table sinks (`skiff-sink`), which map them onto Arrow. Arrow stays out of this
//!   crate: the proxy depends on it and must stay small.
//! - [`wire`]: Confluent's wire format (magic byte, schema id, Protobuf message indexes).
//! - [`compatibility`]: compatibility levels and the checks behind them (see below).
//! - [`validator`]: the per-batch validator the broker and the proxy share: every record of a
//!   Kafka record batch checked against the subjects of its topic, schemas looked up through a
//!   [`validator::SchemaSource`] (the broker's storage-backed registry, or a registry over HTTP).
//! - `error.rs`: [`SchemaError`], [`ValidationError`], [`WireError`].
//!
//! # Validation
//! [`Schema::validate`] takes one payload without the wire header:
//! - **Avro**: the payload must decode as exactly one datum of the schema: a truncated payload
//!   and trailing bytes are both errors. The error names the record field that failed to decode
//!   (`field `address.zip`: ...`), found by decoding the record's fields one by one.
//! - **JSON Schema**: the payload must be UTF-8 JSON valid under the schema; the error names the
//!   instance path and the reason, with the offending value masked (`field `age`: value is not
//!   of type "integer"`).
//! - **Protobuf**: the payload must decode as the message type the message indexes select, and
//!   carry no field the schema does not declare (at any depth): a record framed with a schema id
//!   was written with exactly that schema, so an unknown field means it was not.
//!
//! Null payloads (tombstones) are the caller's business: `validate` only sees bytes.
//!
//! # Compatibility
//! [`compatibility::check`] answers whether a new schema may follow the previous versions of a
//! subject. *Backward* means the new schema can read data written with the old one, *forward*
//! the reverse, *full* both; the transitive levels check every previous version, the others only
//! the latest. What "can read" means per format:
//! - **Avro**: Avro's schema resolution rules, as `apache-avro`'s
//!   `SchemaCompatibility::can_read` implements them (fields without defaults, type promotions,
//!   enum symbols, union branches, names). A reader that can read only some of the writer's data
//!   (a missing enum symbol or union branch) is incompatible, as in Confluent's registry.
//! - **JSON Schema**: a conservative structural subset of Confluent's rules, compared along
//!   `properties` and `items` from the root. The reader cannot read the writer's data when
//!   - the set of `type`s the reader accepts does not include every type the writer's accepts
//!     (`integer` is read as `number`);
//!   - the reader requires a property the writer does not require;
//!   - the reader's content model is closed (`additionalProperties: false`) and the writer's
//!     is open, or the writer declares a property the closed reader does not;
//!   - the writer's `enum` allows a value the reader's does not, or the reader adds an `enum`;
//!   - a property's sub-schema is a different `$ref`.
//!
//!   Not compared: `allOf`/`anyOf`/`oneOf`/`not`, conditionals, `patternProperties`,
//!   `dependencies`, numeric and string bounds, `format`, and what a `$ref` points to.
//! - **Protobuf**: compared by message full name and field number. The reader cannot read the
//!   writer's data when
//!   - a message type of the writer's schema is missing from the reader's (message indexes and
//!     type names in `Any` would point nowhere);
//!   - a field number is declared by both with types that are not wire-compatible (the groups
//!     `int32 uint32 int64 uint64 bool`, `sint32 sint64`, `fixed32 sfixed32`,
//!     `fixed64 sfixed64`, `string bytes` are compatible within; messages and enums by full name);
//!   - a field changes between singular and repeated, or into or out of a map;
//!   - the reader declares a `required` (proto2) field the writer lacks.
//!
//!   Adding or removing fields is compatible (a removed field's number reused with another type
//!   is the changed-type case above). Not compared: oneof membership, enum values, options.
//!
//! # Limits
//! Decoding garbage never panics (property-tested). Avro allocations are bounded by
//! [`AVRO_MAX_ALLOCATION_BYTES`]; Protobuf nesting by prost's recursion limit (100); JSON nesting
//! by `serde_json`'s (128).
//!
//! # Build cost
//! Cold debug build of this crate's new dependencies (`apache-avro`, `jsonschema`,
//! `prost-reflect`, `protox` and what they pull in) on the shared 2-core machine: about 3 min 20 s.

mod avro;
pub mod compatibility;
mod error;
mod json;
mod protobuf;
pub mod validator;
pub mod wire;

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

pub use error::{SchemaError, ValidationError, WireError};

/// The most bytes one Avro string, bytes or collection may claim while decoding: garbage whose
/// length prefix claims more is refused before anything is allocated. It is process-wide (the
/// setting belongs to `apache-avro`) and set the first time an Avro schema is parsed, unless
/// something else in the process set it first. No Kafka record can exceed a request, whose
/// default limit is 100 MiB.
pub const AVRO_MAX_ALLOCATION_BYTES: usize = 100 * 1024 * 1024;

/// The format of a schema, with the names Confluent's Schema Registry uses.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize, Deserialize)]
#[serde(rename_all = "UPPERCASE")]
pub enum SchemaType {
    /// Apache Avro, Confluent's default.
    #[default]
    Avro,
    /// JSON Schema.
    Json,
    /// Protocol Buffers (proto2 and proto3 source text).
    Protobuf,
}

impl SchemaType {
    /// Confluent's name for the type: `AVRO`, `JSON` or `PROTOBUF`.
    pub fn as_str(self) -> &'static str {
        match self {
            SchemaType::Avro => "AVRO",
            SchemaType::Json => "JSON",
            SchemaType::Protobuf => "PROTOBUF",
        }
    }
}

impl fmt::Display for SchemaType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for SchemaType {
    type Err = SchemaError;

    /// Confluent's names, in any letter case.
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s.to_ascii_uppercase().as_str() {
            "AVRO" => Ok(SchemaType::Avro),
            "JSON" => Ok(SchemaType::Json),
            "PROTOBUF" => Ok(SchemaType::Protobuf),
            _ => Err(SchemaError::UnknownSchemaType(s.to_owned())),
        }
    }
}

/// A schema's reference to another registered schema, as Confluent's REST API spells it.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Reference {
    /// The name the referencing schema uses: an Avro full name, a Protobuf import path, a JSON
    /// `$ref`.
    pub name: String,
    /// The subject the referenced schema is registered under.
    pub subject: String,
    /// The version of that subject.
    pub version: i32,
}

/// A referenced schema's text, already looked up by the registry.
///
/// The registry passes the transitive closure (every schema reachable through references), each
/// under the `name` it is imported by (Avro: the full name of the named type it defines;
/// Protobuf: the import path, e.g. "other.proto"; JSON: the `$ref` URL or name).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ResolvedReference {
    /// The name the schema is imported by.
    pub name: String,
    /// The referenced schema's format; it must be the referencing schema's.
    pub schema_type: SchemaType,
    /// The referenced schema's text.
    pub text: String,
}

/// A parsed and compiled schema, ready to validate payloads. `Send + Sync`: share it as
/// `Arc<Schema>`.
pub struct Schema {
    format: Format,
}

enum Format {
    Avro(avro::AvroSchema),
    Json(json::JsonSchema),
    Protobuf(protobuf::ProtobufSchema),
}

impl Schema {
    /// Parses and compiles `text`, resolving its references from `references` (see
    /// [`ResolvedReference`]).
    ///
    /// The error says what is wrong and where; Confluent's registry answers it with 42201
    /// "Invalid schema".
    pub fn parse(
        schema_type: SchemaType,
        text: &str,
        references: &[ResolvedReference],
    ) -> Result<Schema, SchemaError> {
        if let Some(other) = references.iter().find(|r| r.schema_type != schema_type) {
            return Err(SchemaError::Reference {
                name: other.name.clone(),
                reason: format!(
                    "is a {} schema, but the schema referencing it is {schema_type}",
                    other.schema_type
                ),
            });
        }
        let format = match schema_type {
            SchemaType::Avro => Format::Avro(avro::AvroSchema::parse(text, references)?),
            SchemaType::Json => Format::Json(json::JsonSchema::parse(text, references)?),
            SchemaType::Protobuf => {
                Format::Protobuf(protobuf::ProtobufSchema::parse(text, references)?)
            }
        };
        Ok(Schema { format })
    }

    /// The schema's format.
    pub fn schema_type(&self) -> SchemaType {
        match self.format {
            Format::Avro(_) => SchemaType::Avro,
            Format::Json(_) => SchemaType::Json,
            Format::Protobuf(_) => SchemaType::Protobuf,
        }
    }

    /// A normalized form: two texts of the same schema (whitespace, key order in JSON and Avro,
    /// comments in Protobuf) give the same string. The registry uses it to give an identical
    /// schema the same id.
    ///
    /// It covers the schema's own text, not the schemas it references: the registry keys on the
    /// canonical form together with the references.
    /// - Avro: the parsed schema as compact JSON with sorted keys (`doc`, defaults and aliases
    ///   kept: they change what the schema means to readers).
    /// - JSON: the schema as compact JSON with sorted keys.
    /// - Protobuf: the compiled file descriptor (no source positions or comments), hex-encoded:
    ///   an opaque string.
    pub fn canonical(&self) -> String {
        match &self.format {
            Format::Avro(schema) => schema.canonical(),
            Format::Json(schema) => schema.canonical(),
            Format::Protobuf(schema) => schema.canonical(),
        }
    }

    /// The schema as Confluent's `format=serialized` gives it: for Protobuf a base64-encoded
    /// serialized `FileDescriptorProto` (what confluent-kafka's `ProtobufDeserializer` reads);
    /// `None` for the other formats, which have one form only.
    pub fn serialized(&self) -> Option<String> {
        match &self.format {
            Format::Protobuf(schema) => Some(schema.serialized()),
            Format::Avro(_) | Format::Json(_) => None,
        }
    }

    /// The record name Confluent's `RecordNameStrategy` and `TopicRecordNameStrategy` name
    /// subjects after: the full name of an Avro schema's named type, the full name of the
    /// Protobuf message `message_indexes` select, a JSON Schema's `title`.
    pub fn record_name(&self, message_indexes: &[i32]) -> Result<String, ValidationError> {
        let unnamed = |what: &str| ValidationError::mismatch("", format!("the schema {what}"));
        match &self.format {
            Format::Avro(schema) => schema
                .record_name()
                .ok_or_else(|| unnamed("is not a named Avro type (record, enum or fixed)")),
            Format::Json(schema) => {
                schema.record_name().ok_or_else(|| unnamed("has no `title` to name its records"))
            }
            Format::Protobuf(schema) => schema.record_name(message_indexes),
        }
    }

    /// Whether a null record (no bytes at all) is a value of the schema: Avro `null` or a
    /// union with `null`, JSON Schema that accepts `null`; never a Protobuf message.
    pub fn accepts_null(&self) -> bool {
        match &self.format {
            Format::Avro(schema) => schema.accepts_null(),
            Format::Json(schema) => schema.validate(b"null").is_ok(),
            Format::Protobuf(_) => false,
        }
    }

    /// Checks one payload, without the wire header.
    ///
    /// `message_indexes` selects the Protobuf message type (Confluent's message indexes: `[]` or
    /// `[0]` is the first message in the file, `[1, 0]` the first message nested in the second
    /// top-level message, ...); Avro and JSON ignore it.
    pub fn validate(&self, payload: &[u8], message_indexes: &[i32]) -> Result<(), ValidationError> {
        match &self.format {
            Format::Avro(schema) => schema.validate(payload),
            Format::Json(schema) => schema.validate(payload),
            Format::Protobuf(schema) => schema.validate(payload, message_indexes),
        }
    }

    /// The parsed Avro schema (`None` for other formats), for code that maps the schema onto
    /// something else (the table sinks map it onto Arrow columns). Self-contained: referenced
    /// named types are inlined where first used; later uses are `Schema::Ref`s by full name.
    /// It exposes `apache-avro`'s type, so users must build with this workspace's version.
    pub fn avro_schema(&self) -> Option<&apache_avro::Schema> {
        match &self.format {
            Format::Avro(schema) => Some(schema.resolved()),
            Format::Json(_) | Format::Protobuf(_) => None,
        }
    }

    /// Decodes an Avro payload (without the wire header) into `apache-avro`'s value, checked as
    /// [`Schema::validate`] checks it and with its limits (allocation and nesting), in one
    /// decode. An error for the other formats.
    pub fn decode_avro(
        &self,
        payload: &[u8],
    ) -> Result<apache_avro::types::Value, ValidationError> {
        match &self.format {
            Format::Avro(schema) => schema.decode(payload),
            Format::Json(_) | Format::Protobuf(_) => Err(ValidationError::mismatch(
                "",
                format!("not an Avro schema but {}", self.schema_type()),
            )),
        }
    }

    /// The Protobuf message type `message_indexes` select (see [`Schema::validate`]), to decode
    /// payloads with `prost-reflect` and to walk the message's fields. An error for the other
    /// formats.
    pub fn protobuf_message(
        &self,
        message_indexes: &[i32],
    ) -> Result<prost_reflect::MessageDescriptor, ValidationError> {
        match &self.format {
            Format::Protobuf(schema) => schema.message(message_indexes),
            Format::Avro(_) | Format::Json(_) => Err(ValidationError::UnknownMessage {
                indexes: message_indexes.to_vec(),
                reason: format!("not a Protobuf schema but {}", self.schema_type()),
            }),
        }
    }

    /// The JSON Schema document as parsed (`None` for other formats), for code that maps the
    /// schema onto something else. References to other registered schemas are not inlined.
    pub fn json_schema(&self) -> Option<&serde_json::Value> {
        match &self.format {
            Format::Json(schema) => Some(schema.value()),
            Format::Avro(_) | Format::Protobuf(_) => None,
        }
    }

    /// Encodes a JSON document as a payload of this schema, without the wire header (see
    /// [`wire::encode_header`]); what producers of plain JSON need.
    /// - **Avro**: plain JSON (not Avro's JSON encoding): objects become records, fields left
    ///   out take their defaults, numbers take the field's type, a union takes the first branch
    ///   the value fits.
    /// - **JSON Schema**: the document's bytes, once it is valid under the schema.
    /// - **Protobuf**: protobuf's canonical JSON mapping, as the message `message_indexes`
    ///   selects (see [`Schema::validate`]); unknown fields are refused.
    pub fn encode_json(
        &self,
        json: &serde_json::Value,
        message_indexes: &[i32],
    ) -> Result<Vec<u8>, ValidationError> {
        match &self.format {
            Format::Avro(schema) => schema.encode_json(json),
            Format::Json(schema) => schema.encode_json(json),
            Format::Protobuf(schema) => schema.encode_json(json, message_indexes),
        }
    }

    /// Decodes a payload (without the wire header) into a JSON document: the inverse of
    /// [`Schema::encode_json`]. The payload is checked as [`Schema::validate`] checks it.
    /// Avro bytes and fixed values become arrays of numbers, enums their symbols.
    pub fn decode_json(
        &self,
        payload: &[u8],
        message_indexes: &[i32],
    ) -> Result<serde_json::Value, ValidationError> {
        match &self.format {
            Format::Avro(schema) => schema.decode_json(payload),
            Format::Json(schema) => schema.decode_json(payload),
            Format::Protobuf(schema) => schema.decode_json(payload, message_indexes),
        }
    }
}

impl fmt::Debug for Schema {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Schema").field("schema_type", &self.schema_type()).finish_non_exhaustive()
    }
}

/// Renders `value` as compact JSON with object keys sorted, whatever order the parser kept.
pub(crate) fn sorted_json(value: &serde_json::Value) -> String {
    let mut out = String::new();
    write_sorted_json(value, &mut out);
    out
}

fn write_sorted_json(value: &serde_json::Value, out: &mut String) {
    match value {
        serde_json::Value::Object(map) => {
            let mut entries: Vec<_> = map.iter().collect();
            entries.sort_by(|a, b| a.0.cmp(b.0));
            out.push('{');
            for (i, (key, value)) in entries.into_iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                out.push_str(&serde_json::Value::String(key.clone()).to_string());
                out.push(':');
                write_sorted_json(value, out);
            }
            out.push('}');
        }
        serde_json::Value::Array(items) => {
            out.push('[');
            for (i, item) in items.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                write_sorted_json(item, out);
            }
            out.push(']');
        }
        scalar => out.push_str(&scalar.to_string()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn schema_is_send_and_sync() {
        fn assert_send_sync<T: Send + Sync>() {}
        assert_send_sync::<Schema>();
    }

    #[test]
    fn schema_type_names_are_confluents() {
        for (name, schema_type) in [
            ("AVRO", SchemaType::Avro),
            ("JSON", SchemaType::Json),
            ("PROTOBUF", SchemaType::Protobuf),
        ] {
            assert_eq!(name.parse::<SchemaType>().ok(), Some(schema_type));
            assert_eq!(schema_type.to_string(), name);
            assert_eq!(serde_json::to_string(&schema_type).ok(), Some(format!("\"{name}\"")));
        }
        assert_eq!("avro".parse::<SchemaType>().ok(), Some(SchemaType::Avro));
        assert_eq!(SchemaType::default(), SchemaType::Avro);
        let error = "XML".parse::<SchemaType>().err().map(|e| e.to_string());
        assert_eq!(
            error.as_deref(),
            Some("unknown schema type `XML`: expected AVRO, JSON or PROTOBUF")
        );
    }

    #[test]
    fn reference_uses_confluents_field_names() {
        let reference: Reference =
            serde_json::from_str(r#"{"name":"com.acme.Address","subject":"address","version":2}"#)
                .expect("reference parses");
        assert_eq!(
            reference,
            Reference { name: "com.acme.Address".into(), subject: "address".into(), version: 2 }
        );
    }

    #[test]
    fn references_of_another_format_are_refused() {
        let references = [ResolvedReference {
            name: "other.proto".into(),
            schema_type: SchemaType::Protobuf,
            text: "syntax = \"proto3\";".into(),
        }];
        let error =
            Schema::parse(SchemaType::Avro, "\"string\"", &references).err().map(|e| e.to_string());
        assert_eq!(
            error.as_deref(),
            Some("reference `other.proto`: is a PROTOBUF schema, but the schema referencing it is AVRO")
        );
    }

    #[test]
    fn sorted_json_sorts_keys_at_every_depth() {
        let value: serde_json::Value =
            serde_json::from_str(r#"{"b": [ {"z": 1, "a": null} ], "a": "x\"y"}"#)
                .expect("json parses");
        assert_eq!(sorted_json(&value), r#"{"a":"x\"y","b":[{"a":null,"z":1}]}"#);
    }
}
