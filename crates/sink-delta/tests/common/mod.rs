//! Shared by the integration tests: Parquet files of orders as skiff-sink writes them, and
//! table locations in a temporary directory and on moto S3.

#![allow(dead_code, unreachable_pub)]

use std::path::PathBuf;
use std::sync::Arc;

use skiff_schema::{Schema, SchemaType};
use skiff_sink::parquet::{write_with_metadata, ParquetFile};
use skiff_sink::table::{CommitFacts, Location};
use skiff_sink::{Rows, TableSchema};

/// Orders, version 1: a struct, a list and a map besides scalars.
pub const ORDER_V1: &str = r#"{
  "type": "object",
  "properties": {
    "id": {"type": "integer"},
    "customer": {"type": "object", "properties": {"name": {"type": "string"}}},
    "tags": {"type": "array", "items": {"type": "string"}},
    "attributes": {"type": "object", "additionalProperties": {"type": "integer"}}
  },
  "required": ["id"]
}"#;

/// Orders, version 2: a `note` column added.
pub const ORDER_V2: &str = r#"{
  "type": "object",
  "properties": {
    "id": {"type": "integer"},
    "customer": {"type": "object", "properties": {"name": {"type": "string"}}},
    "tags": {"type": "array", "items": {"type": "string"}},
    "attributes": {"type": "object", "additionalProperties": {"type": "integer"}},
    "note": {"type": "string"}
  },
  "required": ["id"]
}"#;

/// When every test file says it was committed.
pub const COMMITTED_AT_MS: i64 = 1_700_000_000_999;

/// A file of one order per offset in `offsets` of `partition`, covering `from..next`, with the
/// JSON Schema `schema` (the offset is the order id).
pub fn file(schema: &str, partition: i32, from: i64, next: i64, offsets: &[i64]) -> ParquetFile {
    let parsed = Schema::parse(SchemaType::Json, schema, &[]).expect("parses");
    let table = TableSchema::new(Arc::new(parsed), &[]).expect("columns");
    let mut rows = Rows::new(&table).expect("rows");
    for offset in offsets {
        let value = format!(
            r#"{{"id": {offset}, "customer": {{"name": "c{offset}"}}, "tags": ["a", "b"],
                "attributes": {{"x": 1}}, "note": "n{offset}"}}"#
        );
        rows.push(partition, *offset, 1_700_000_000_000, Some(b"k"), &[], value.as_bytes())
            .expect("fits");
    }
    let batch = rows.finish().expect("batch");
    let facts = CommitFacts {
        topic: "orders".to_owned(),
        topic_id: "id-1".to_owned(),
        partition,
        from,
        next,
        schema_id: 7,
        committed_at_ms: COMMITTED_AT_MS,
    };
    write_with_metadata(&table.arrow_schema(), &[batch], &facts.to_metadata()).expect("written")
}

/// A new temporary directory and its `file://` location.
pub fn local() -> (PathBuf, Location) {
    let dir = std::env::temp_dir().join(format!("skiff-delta-{}", uuid::Uuid::new_v4().simple()));
    let url = format!("file://{}", dir.display());
    (dir, Location::open(&url).expect("a directory location"))
}

/// A new prefix of the moto bucket as a location.
pub fn s3() -> Location {
    let endpoint = std::env::var("SKIFF_TEST_S3_ENDPOINT").unwrap_or_else(|_| {
        panic!("SKIFF_TEST_S3_ENDPOINT is not set: run `eval \"$(scripts/services.sh)\"` first")
    });
    let prefix = uuid::Uuid::new_v4().simple();
    let url = format!("s3://skiff-test/delta-{prefix}?endpoint={endpoint}");
    Location::open(&url).expect("an s3 location")
}

/// The test venv's python, if there is one (scripts/test.sh creates it).
pub fn venv_python() -> Option<PathBuf> {
    let venv = std::env::var_os("SKIFF_VENV").map(PathBuf::from).unwrap_or_else(|| {
        PathBuf::from(std::env::var_os("HOME").unwrap_or_default()).join(".cache/skiff-venv")
    });
    let python = venv.join("bin/python");
    python.exists().then_some(python)
}
