//! Schema texts as the Schema Registry receives them over HTTP: the first byte picks Avro,
//! JSON Schema or Protobuf, the rest is the schema. Parsing must fail cleanly, never panic or
//! recurse without bound.
#![no_main]

use libfuzzer_sys::fuzz_target;
use skiff_schema::{Schema, SchemaType};

fuzz_target!(|data: &[u8]| {
    let Some((&kind, text)) = data.split_first() else { return };
    let Ok(text) = std::str::from_utf8(text) else { return };
    let schema_type = match kind % 3 {
        0 => SchemaType::Avro,
        1 => SchemaType::Json,
        _ => SchemaType::Protobuf,
    };
    if let Ok(schema) = Schema::parse(schema_type, text, &[]) {
        let _ = schema.canonical();
    }
});
