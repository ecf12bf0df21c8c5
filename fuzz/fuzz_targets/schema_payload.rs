//! Record values as produce validation sees them: Confluent's wire header, then a payload
//! checked against a fixed schema of each format (with records, arrays, maps, unions, nested
//! messages and a recursive Avro type, where decoders are most likely to go wrong).
#![no_main]

use std::sync::OnceLock;

use libfuzzer_sys::fuzz_target;
use skiff_schema::{wire, Schema, SchemaType};

const AVRO: &str = r#"{"type": "record", "name": "Node", "fields": [
    {"name": "id", "type": "long"},
    {"name": "label", "type": ["null", "string"]},
    {"name": "tags", "type": {"type": "array", "items": "string"}},
    {"name": "attributes", "type": {"type": "map", "values": "bytes"}},
    {"name": "amount", "type": {"type": "bytes", "logicalType": "decimal", "precision": 10, "scale": 2}},
    {"name": "children", "type": {"type": "array", "items": "Node"}}]}"#;
const JSON: &str = r##"{"type": "object", "properties": {
    "id": {"type": "integer"}, "tags": {"type": "array", "items": {"type": "string"}},
    "child": {"$ref": "#"}}, "required": ["id"]}"##;
const PROTO: &str = r#"syntax = "proto3";
message Order { string id = 1; repeated Line lines = 2; map<string, int64> totals = 3; oneof pay { string card = 4; int64 points = 5; } }
message Line { string sku = 1; sint32 units = 2; Order parent = 3; }"#;

fn schemas() -> &'static [(SchemaType, Schema)] {
    static SCHEMAS: OnceLock<Vec<(SchemaType, Schema)>> = OnceLock::new();
    SCHEMAS.get_or_init(|| {
        [(SchemaType::Avro, AVRO), (SchemaType::Json, JSON), (SchemaType::Protobuf, PROTO)]
            .into_iter()
            .map(|(kind, text)| {
                (kind, Schema::parse(kind, text, &[]).expect("the fixed schemas parse"))
            })
            .collect()
    })
}

fuzz_target!(|data: &[u8]| {
    let Some((&kind, value)) = data.split_first() else { return };
    let (schema_type, schema) = &schemas()[usize::from(kind % 3)];
    match wire::parse(value, *schema_type) {
        Ok(framed) => {
            let _ = schema.validate(framed.payload, &framed.message_indexes);
        }
        Err(_) => {
            let _ = schema.validate(value, &[0]);
        }
    }
});
