//! Random bytes must give errors, never panics (nor aborts: the Avro schemas include a
//! recursive one).

use proptest::prelude::*;
use skiff_schema::{wire, Schema, SchemaType};

const AVRO_SCHEMAS: &[&str] = &[
    r#"{"type":"record","name":"Node","fields":[{"name":"value","type":"int"},
        {"name":"children","type":{"type":"array","items":"Node"}},
        {"name":"next","type":["null","Node"]}]}"#,
    r#"{"type":"record","name":"All","fields":[{"name":"s","type":"string"},
        {"name":"b","type":"bytes"},{"name":"m","type":{"type":"map","values":"double"}},
        {"name":"f","type":{"type":"fixed","name":"F","size":4}},
        {"name":"e","type":{"type":"enum","name":"E","symbols":["A","B"]}},
        {"name":"d","type":{"type":"bytes","logicalType":"decimal","precision":4,"scale":2}},
        {"name":"u","type":{"type":"string","logicalType":"uuid"}},
        {"name":"l","type":["null","long","float","boolean"]}]}"#,
];

const JSON_SCHEMA: &str = r##"{"type":"object","properties":{"a":{"type":"array",
    "items":{"$ref":"#"}},"b":{"type":"string","pattern":"^x+$"}},"required":["b"]}"##;

const PROTO: &str = r#"syntax = "proto3";
message Tree { string name = 1; repeated Tree children = 2; map<string, Tree> index = 3;
  oneof value { int64 n = 4; double d = 5; bytes raw = 6; } }
message Other { message Inner { sint32 z = 1; } Inner inner = 1; }"#;

fn schemas() -> Vec<Schema> {
    let mut all: Vec<Schema> = AVRO_SCHEMAS
        .iter()
        .map(|text| Schema::parse(SchemaType::Avro, text, &[]).expect("avro"))
        .collect();
    all.push(Schema::parse(SchemaType::Json, JSON_SCHEMA, &[]).expect("json"));
    all.push(Schema::parse(SchemaType::Protobuf, PROTO, &[]).expect("protobuf"));
    all
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(2000))]

    #[test]
    fn wire_parse_never_panics(bytes in proptest::collection::vec(any::<u8>(), 0..64)) {
        for schema_type in [SchemaType::Avro, SchemaType::Json, SchemaType::Protobuf] {
            let _ = wire::parse(&bytes, schema_type);
        }
    }

    #[test]
    fn validate_never_panics(
        bytes in proptest::collection::vec(any::<u8>(), 0..512),
        indexes in proptest::collection::vec(-2i32..4, 0..3),
    ) {
        for schema in schemas() {
            let _ = schema.validate(&bytes, &indexes);
        }
    }

    #[test]
    fn framed_garbage_never_panics(bytes in proptest::collection::vec(any::<u8>(), 0..256)) {
        let mut framed = vec![0, 0, 0, 0, 1];
        framed.extend_from_slice(&bytes);
        for schema in schemas() {
            if let Ok(parsed) = wire::parse(&framed, schema.schema_type()) {
                let _ = schema.validate(parsed.payload, &parsed.message_indexes);
            }
        }
    }

    #[test]
    fn schema_parse_never_panics(text in "\\PC{0,200}") {
        for schema_type in [SchemaType::Avro, SchemaType::Json, SchemaType::Protobuf] {
            let _ = Schema::parse(schema_type, &text, &[]);
        }
    }
}

#[test]
fn long_runs_of_one_byte_never_panic() {
    for byte in [0x00, 0x01, 0x02, 0x7f, 0x80, 0xfe, 0xff] {
        let payload = vec![byte; 300_000];
        for schema in schemas() {
            let _ = schema.validate(&payload, &[]);
        }
    }
}
