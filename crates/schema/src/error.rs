//! The crate's errors: one for schemas, one for payloads, one for the wire format.

use crate::SchemaType;

/// A schema that cannot be used: it does not parse or compile, or a reference is wrong.
///
/// Confluent's registry answers these with 42201 "Invalid schema" and the message.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum SchemaError {
    /// The schema text is not a valid schema of its type.
    #[error("invalid {schema_type} schema: {reason}")]
    Invalid {
        /// The type the text was parsed as.
        schema_type: SchemaType,
        /// What is wrong, and where when the library says.
        reason: String,
    },
    /// A referenced schema is missing, of another type, or invalid.
    #[error("reference `{name}`: {reason}")]
    Reference {
        /// The reference's name.
        name: String,
        /// What is wrong with it.
        reason: String,
    },
    /// A schema type other than Confluent's three.
    #[error("unknown schema type `{0}`: expected AVRO, JSON or PROTOBUF")]
    UnknownSchemaType(String),
    /// A compatibility level other than Confluent's seven.
    #[error(
        "unknown compatibility level `{0}`: expected NONE, BACKWARD, BACKWARD_TRANSITIVE, \
         FORWARD, FORWARD_TRANSITIVE, FULL or FULL_TRANSITIVE"
    )]
    UnknownCompatibilityLevel(String),
}

impl SchemaError {
    pub(crate) fn invalid(schema_type: SchemaType, reason: impl ToString) -> SchemaError {
        SchemaError::Invalid { schema_type, reason: reason.to_string() }
    }
}

/// A payload that does not match its schema. The message names the field (or instance path)
/// and the reason; the broker puts it in INVALID_RECORD's error message.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ValidationError {
    /// The payload does not match the schema at `path` (empty: at the root).
    #[error("{}", mismatch_message(path, reason))]
    Mismatch {
        /// Dotted field path (`address.zip`, `items[2].name`), empty for the whole payload.
        path: String,
        /// Why it does not match.
        reason: String,
    },
    /// A complete datum was decoded but bytes are left over.
    #[error("{trailing} bytes left over after the datum (payload of {len} bytes)")]
    TrailingBytes {
        /// How many bytes follow the datum.
        trailing: usize,
        /// The payload's length.
        len: usize,
    },
    /// A JSON Schema payload that is not UTF-8 JSON.
    #[error("not JSON: {0}")]
    NotJson(String),
    /// Protobuf message indexes that select no message type of the schema.
    #[error("message indexes {indexes:?} select no message type of the schema: {reason}")]
    UnknownMessage {
        /// The indexes as given.
        indexes: Vec<i32>,
        /// Which index is out of range.
        reason: String,
    },
}

fn mismatch_message(path: &str, reason: &str) -> String {
    if path.is_empty() {
        reason.to_owned()
    } else {
        format!("field `{path}`: {reason}")
    }
}

impl ValidationError {
    pub(crate) fn mismatch(path: impl Into<String>, reason: impl ToString) -> ValidationError {
        ValidationError::Mismatch { path: path.into(), reason: reason.to_string() }
    }
}

/// Bytes that are not in Confluent's wire format.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum WireError {
    /// Fewer bytes than the magic byte and the schema id need.
    #[error(
        "{len} bytes is too short for the schema registry's wire format \
         (a magic byte and a 4-byte schema id)"
    )]
    TooShort {
        /// The length of what was given.
        len: usize,
    },
    /// The first byte is not the wire format's magic byte 0.
    #[error("magic byte {0:#04x} is not 0: not in the schema registry's wire format")]
    MagicByte(u8),
    /// The Protobuf message indexes after the schema id do not decode.
    #[error("protobuf message indexes: {0}")]
    MessageIndexes(String),
}
