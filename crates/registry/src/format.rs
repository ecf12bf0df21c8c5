//! The one module that touches `skiff-schema`: parsing, canonical forms and compatibility.

pub(crate) use skiff_schema::compatibility;
pub(crate) use skiff_schema::ResolvedReference;
pub use skiff_schema::{Reference, Schema, SchemaType};

/// Parses a schema; the error is the parser's message (answered as 42201).
pub(crate) fn parse(
    schema_type: SchemaType,
    text: &str,
    references: &[ResolvedReference],
) -> Result<Schema, String> {
    Schema::parse(schema_type, text, references).map_err(|error| error.to_string())
}
