//! The crate's public API per format: validation, references, canonical forms, compatibility,
//! and garbage that must never panic.

mod avro;
mod garbage;
mod json;
mod json_codec;
mod protobuf;

use skiff_schema::{Schema, SchemaType};

/// The message `Schema::parse` refuses `text` with (empty if it parses).
fn parse_error(schema_type: SchemaType, text: &str) -> String {
    Schema::parse(schema_type, text, &[]).err().map(|e| e.to_string()).unwrap_or_default()
}
