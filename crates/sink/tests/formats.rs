//! Schemas of each format onto columns, and payloads into rows: nested records, lists, maps,
//! nullable fields, logical types, the Kafka columns with duplicate header keys, and rows that
//! do not fit.

mod common;

use std::sync::Arc;

use apache_avro::types::Value as Avro;
use arrow_array::RecordBatch;
use arrow_schema::{DataType, TimeUnit};
use common::{avro_orders, avro_payload, cell, field_id, AVRO_ORDER};
use skiff_schema::{Schema, SchemaType};
use skiff_sink::{RecordHeader, Rows, SinkError, TableSchema};

fn table(schema_type: SchemaType, text: &str) -> TableSchema {
    let schema = Schema::parse(schema_type, text, &[]).expect("schema parses");
    TableSchema::new(Arc::new(schema), &[]).expect("schema has columns")
}

/// Pushes `payloads` as offsets 100, 101, ... of partition 3; the first carries headers with
/// a repeated key and a null value.
fn rows_of(table: &TableSchema, payloads: &[Vec<u8>]) -> RecordBatch {
    let mut rows = Rows::new(table).expect("rows");
    let headers = [
        RecordHeader { key: "h", value: Some(b"1") },
        RecordHeader { key: "h", value: Some(b"2") },
        RecordHeader { key: "trace", value: None },
    ];
    for (i, payload) in payloads.iter().enumerate() {
        let offset = 100 + i64::try_from(i).expect("small");
        let (key, headers) =
            if i == 0 { (Some(&b"k1"[..]), &headers[..]) } else { (None, &[][..]) };
        rows.push(3, offset, 1_700_000_000_000 + offset, key, headers, payload)
            .expect("payload fits");
    }
    assert_eq!(rows.len(), payloads.len());
    rows.finish().expect("batch")
}

#[test]
fn avro_records_become_columns() {
    let table = table(SchemaType::Avro, AVRO_ORDER);
    let schema = Schema::parse(SchemaType::Avro, AVRO_ORDER, &[]).expect("schema parses");
    let batch = rows_of(&table, &avro_orders(&schema));
    let arrow = table.arrow_schema();
    let names: Vec<&str> = arrow.fields().iter().map(|f| f.name().as_str()).collect();
    assert_eq!(
        names,
        [
            "_partition",
            "_offset",
            "_timestamp",
            "_key",
            "_headers",
            "id",
            "note",
            "customer",
            "referrer",
            "tags",
            "attributes",
            "status",
            "placed",
            "placed_us",
            "day",
            "amount",
            "amount_fixed",
            "uid",
            "hash",
            "choice",
            "ratio"
        ]
    );
    let field = |name: &str| arrow.field_with_name(name).expect("field").clone();
    assert!(!field("id").is_nullable());
    assert!(field("note").is_nullable());
    assert!(field("referrer").is_nullable());
    assert!(!field("customer").is_nullable());
    assert_eq!(
        field("placed").data_type(),
        &DataType::Timestamp(TimeUnit::Millisecond, Some("UTC".into()))
    );
    assert_eq!(
        field("placed_us").data_type(),
        &DataType::Timestamp(TimeUnit::Microsecond, Some("UTC".into()))
    );
    assert_eq!(field("day").data_type(), &DataType::Date32);
    assert_eq!(field("amount").data_type(), &DataType::Decimal128(10, 2));
    assert_eq!(field("amount_fixed").data_type(), &DataType::Decimal128(18, 4));
    assert_eq!(field("uid").data_type(), &DataType::Utf8);
    assert_eq!(field("status").data_type(), &DataType::Utf8);
    assert_eq!(field("hash").data_type(), &DataType::FixedSizeBinary(4));
    // Field ids: depth-first pre-order, the Kafka columns (with the header struct) first.
    assert_eq!(field_id(&field("_partition")), Some(1));
    assert_eq!(field_id(&field("_headers")), Some(5));
    assert_eq!(field_id(&field("id")), Some(9));
    assert_eq!(field_id(&field("customer")), Some(11));
    assert_eq!(field_id(&field("referrer")), Some(14));
    assert_eq!(field_id(&field("tags")), Some(17));
    assert_eq!(field_id(&field("attributes")), Some(19));
    assert_eq!(field_id(&field("status")), Some(22));
    let DataType::Struct(customer) = field("customer").data_type().clone() else {
        panic!("customer is a struct");
    };
    assert_eq!(customer.iter().map(|f| field_id(f)).collect::<Vec<_>>(), [Some(12), Some(13)]);

    assert_eq!(batch.num_rows(), 2);
    let row0 = |name| cell(&batch, name, 0);
    let row1 = |name| cell(&batch, name, 1);
    assert_eq!(row0("_partition"), "3");
    assert_eq!(row0("_offset"), "100");
    assert_eq!(row1("_offset"), "101");
    assert_eq!(row0("_timestamp"), "1700000000100 ms");
    assert_eq!(row0("_key"), "0x6b31");
    assert_eq!(row1("_key"), "null");
    assert_eq!(
        row0("_headers"),
        r#"[{key: "h", value: 0x31}, {key: "h", value: 0x32}, {key: "trace", value: null}]"#
    );
    assert_eq!(row1("_headers"), "[]");
    assert_eq!(row0("id"), "7");
    assert_eq!(row0("note"), r#""fragile""#);
    assert_eq!(row1("note"), "null");
    assert_eq!(row0("customer"), r#"{name: "Ann", vip: true}"#);
    assert_eq!(row0("referrer"), r#"{name: "Bob", vip: true}"#);
    assert_eq!(row1("referrer"), "null");
    assert_eq!(row0("tags"), r#"["a", "b"]"#);
    assert_eq!(row1("tags"), "[]");
    assert_eq!(row0("attributes"), r#"{"x" => 1, "y" => 2}"#);
    assert_eq!(row1("attributes"), "{}");
    assert_eq!(row0("status"), r#""PAID""#);
    assert_eq!(row0("placed"), "1700000000123 ms");
    assert_eq!(row0("placed_us"), "1700000000123456 us");
    assert_eq!(row1("placed_us"), "-1 us");
    assert_eq!(row0("day"), "day 19723");
    assert_eq!(row0("amount"), "123.45");
    assert_eq!(row1("amount"), "-0.01");
    assert_eq!(row0("amount_fixed"), "-0.0005");
    assert_eq!(row0("uid"), r#""6f1c2a52-3b4d-4e5f-8a9b-0c1d2e3f4a5b""#);
    assert_eq!(row0("hash"), "0xdeadbeef");
    assert_eq!(row0("choice"), "{member0: 42, member1: null}");
    assert_eq!(row1("choice"), r#"{member0: null, member1: "many"}"#);
    assert_eq!(row1("ratio"), "-2");
}

#[test]
fn avro_non_record_schema_is_one_value_column() {
    let table = table(SchemaType::Avro, r#"["null", {"type": "array", "items": "long"}]"#);
    let schema =
        Schema::parse(SchemaType::Avro, r#"["null", {"type": "array", "items": "long"}]"#, &[])
            .expect("schema parses");
    let payload = avro_payload(
        &schema,
        Avro::Union(1, Box::new(Avro::Array(vec![Avro::Long(1), Avro::Long(2)]))),
    );
    let null = avro_payload(&schema, Avro::Union(0, Box::new(Avro::Null)));
    let batch = rows_of(&table, &[payload, null]);
    assert_eq!(cell(&batch, "value", 0), "[1, 2]");
    assert_eq!(cell(&batch, "value", 1), "null");
}

#[test]
fn avro_recursive_and_too_precise_schemas_are_refused() {
    let recursive = r#"{"type": "record", "name": "Node", "fields": [
        {"name": "next", "type": ["null", "Node"]}]}"#;
    let schema = Schema::parse(SchemaType::Avro, recursive, &[]).expect("schema parses");
    let error = TableSchema::new(Arc::new(schema), &[]).expect_err("recursive");
    assert!(error.to_string().contains("recursive"), "{error}");

    let wide = r#"{"type": "record", "name": "Wide", "fields": [
        {"name": "d", "type": {"type": "bytes", "logicalType": "decimal", "precision": 40}}]}"#;
    let schema = Schema::parse(SchemaType::Avro, wide, &[]).expect("schema parses");
    let error = TableSchema::new(Arc::new(schema), &[]).expect_err("precision 40");
    assert!(matches!(&error, SinkError::UnsupportedSchema { path, .. } if path == "d"), "{error}");
}

const PROTO_ORDER: &str = r#"
syntax = "proto3";
package shop;
import "google/protobuf/timestamp.proto";
import "google/protobuf/wrappers.proto";

message Order {
  int64 id = 1;
  optional string note = 2;
  Customer customer = 3;
  repeated string tags = 4;
  map<string, int32> attributes = 5;
  Status status = 6;
  google.protobuf.Timestamp placed = 7;
  bytes blob = 8;
  uint64 big = 9;
  google.protobuf.StringValue nickname = 10;
  repeated Customer contacts = 11;
  oneof pick { int32 number = 12; string word = 13; }
  uint32 small = 14;
}
message Customer { string name = 1; bool vip = 2; }
enum Status { NEW = 0; PAID = 1; }
"#;

#[test]
fn protobuf_messages_become_columns() {
    let schema = Schema::parse(SchemaType::Protobuf, PROTO_ORDER, &[]).expect("schema parses");
    let full = serde_json::json!({
        "id": "7", "note": "hi", "customer": {"name": "Ann", "vip": true}, "tags": ["a", "b"],
        "attributes": {"y": 2, "x": 1}, "status": "PAID",
        "placed": "2024-01-02T03:04:05.123456789Z", "blob": "AQI=",
        "big": "18446744073709551615", "nickname": "annie",
        "contacts": [{"name": "Bob"}, {"name": "Cy", "vip": true}], "word": "w", "small": 4000000000u32
    });
    let payloads = [
        schema.encode_json(&full, &[]).expect("encodes"),
        schema.encode_json(&serde_json::json!({}), &[]).expect("encodes"),
    ];
    let table = TableSchema::new(Arc::new(schema), &[]).expect("columns");
    let arrow = table.arrow_schema();
    let field = |name: &str| arrow.field_with_name(name).expect("field").clone();
    assert!(!field("id").is_nullable(), "proto3 scalars have defaults");
    assert!(field("note").is_nullable(), "proto3 optional");
    assert!(field("customer").is_nullable(), "message fields have presence");
    assert!(field("nickname").is_nullable(), "wrappers are nullable");
    assert!(field("number").is_nullable() && field("word").is_nullable(), "oneof members");
    assert!(!field("tags").is_nullable());
    assert_eq!(
        field("placed").data_type(),
        &DataType::Timestamp(TimeUnit::Microsecond, Some("UTC".into()))
    );
    assert_eq!(field("big").data_type(), &DataType::Decimal128(20, 0));
    assert_eq!(field("small").data_type(), &DataType::Int64);
    assert_eq!(field("nickname").data_type(), &DataType::Utf8);
    assert!(matches!(field("attributes").data_type(), DataType::Map(_, false)));

    let batch = rows_of(&table, &payloads);
    let row0 = |name| cell(&batch, name, 0);
    let row1 = |name| cell(&batch, name, 1);
    assert_eq!(row0("id"), "7");
    assert_eq!(row0("note"), r#""hi""#);
    assert_eq!(row0("customer"), r#"{name: "Ann", vip: true}"#);
    assert_eq!(row0("tags"), r#"["a", "b"]"#);
    assert_eq!(row0("attributes"), r#"{"x" => 1, "y" => 2}"#);
    assert_eq!(row0("status"), r#""PAID""#);
    assert_eq!(row0("placed"), "1704164645123456 us");
    assert_eq!(row0("blob"), "0x0102");
    assert_eq!(row0("big"), "18446744073709551615");
    assert_eq!(row0("nickname"), r#""annie""#);
    assert_eq!(row0("contacts"), r#"[{name: "Bob", vip: false}, {name: "Cy", vip: true}]"#);
    assert_eq!(row0("number"), "null");
    assert_eq!(row0("word"), r#""w""#);
    assert_eq!(row0("small"), "4000000000");
    assert_eq!(
        row0("_headers"),
        r#"[{key: "h", value: 0x31}, {key: "h", value: 0x32}, {key: "trace", value: null}]"#
    );
    // The empty message: defaults for proto3 scalars, null where there is presence.
    assert_eq!(row1("id"), "0");
    assert_eq!(row1("note"), "null");
    assert_eq!(row1("customer"), "null");
    assert_eq!(row1("tags"), "[]");
    assert_eq!(row1("attributes"), "{}");
    assert_eq!(row1("status"), r#""NEW""#);
    assert_eq!(row1("placed"), "null");
    assert_eq!(row1("blob"), "0x");
    assert_eq!(row1("big"), "0");
    assert_eq!(row1("nickname"), "null");
    assert_eq!(row1("word"), "null");
}

#[test]
fn protobuf_message_indexes_select_the_message() {
    let schema = Schema::parse(SchemaType::Protobuf, PROTO_ORDER, &[]).expect("schema parses");
    let payload = schema.encode_json(&serde_json::json!({"name": "Dee"}), &[1]).expect("encodes");
    let table = TableSchema::new(Arc::new(schema), &[1]).expect("columns");
    let names: Vec<String> =
        table.arrow_schema().fields().iter().skip(5).map(|f| f.name().clone()).collect();
    assert_eq!(names, ["name", "vip"]);
    let batch = rows_of(&table, &[payload]);
    assert_eq!(cell(&batch, "name", 0), r#""Dee""#);
    assert_eq!(cell(&batch, "vip", 0), "false");
}

const JSON_ORDER: &str = r##"{
  "type": "object",
  "properties": {
    "id": {"type": "integer"},
    "name": {"type": "string"},
    "score": {"type": ["number", "null"]},
    "when": {"type": "string", "format": "date-time"},
    "day": {"type": "string", "format": "date"},
    "address": {"$ref": "#/definitions/Address"},
    "tags": {"type": "array", "items": {"type": "string"}},
    "labels": {"type": "object", "additionalProperties": {"type": "integer"}},
    "anything": {},
    "maybe": {"oneOf": [{"type": "null"}, {"type": "boolean"}]}
  },
  "required": ["id", "name", "tags"],
  "definitions": {
    "Address": {"type": "object", "required": ["city"],
      "properties": {"city": {"type": "string"}, "zip": {"type": "string"}}}
  }
}"##;

#[test]
fn json_objects_become_columns() {
    let table = table(SchemaType::Json, JSON_ORDER);
    let arrow = table.arrow_schema();
    let field = |name: &str| arrow.field_with_name(name).expect("field").clone();
    assert!(!field("id").is_nullable() && !field("name").is_nullable());
    assert!(field("score").is_nullable() && field("address").is_nullable());
    assert_eq!(field("id").data_type(), &DataType::Int64);
    assert_eq!(field("score").data_type(), &DataType::Float64);
    assert_eq!(
        field("when").data_type(),
        &DataType::Timestamp(TimeUnit::Microsecond, Some("UTC".into()))
    );
    assert_eq!(field("day").data_type(), &DataType::Date32);
    assert_eq!(field("anything").data_type(), &DataType::Utf8);
    assert_eq!(field("maybe").data_type(), &DataType::Boolean);
    assert!(matches!(field("labels").data_type(), DataType::Map(_, _)));
    let DataType::Struct(address) = field("address").data_type().clone() else {
        panic!("address is a struct");
    };
    assert!(!address[0].is_nullable() && address[1].is_nullable(), "city required, zip not");

    let payloads = [
        serde_json::json!({
            "id": 1, "name": "Ann", "score": 2.5, "when": "2024-01-02T03:04:05.5+01:00",
            "day": "1970-01-02", "address": {"city": "Oslo", "zip": "0150"}, "tags": ["a"],
            "labels": {"b": 2, "a": 1}, "anything": {"x": [1, null]}, "maybe": true
        }),
        serde_json::json!({"id": 2.0, "name": "Bo", "tags": [], "address": {"city": "Rome"}}),
    ]
    .map(|value| serde_json::to_vec(&value).expect("json"));
    let batch = rows_of(&table, &payloads);
    let row0 = |name| cell(&batch, name, 0);
    let row1 = |name| cell(&batch, name, 1);
    assert_eq!(row0("id"), "1");
    assert_eq!(row0("score"), "2.5");
    assert_eq!(row0("when"), "1704161045500000 us");
    assert_eq!(row0("day"), "day 1");
    assert_eq!(row0("address"), r#"{city: "Oslo", zip: "0150"}"#);
    assert_eq!(row0("tags"), r#"["a"]"#);
    assert_eq!(row0("labels"), r#"{"a" => 1, "b" => 2}"#);
    assert_eq!(row0("anything"), r#""{\"x\":[1,null]}""#);
    assert_eq!(row0("maybe"), "true");
    assert_eq!(row1("id"), "2", "an integer written as 2.0");
    assert_eq!(row1("score"), "null");
    assert_eq!(row1("address"), r#"{city: "Rome", zip: null}"#);
    assert_eq!(row1("labels"), "null");
    assert_eq!(row1("maybe"), "null");
}

#[test]
fn a_row_that_does_not_fit_names_the_field_and_leaves_no_trace() {
    let table = table(SchemaType::Json, JSON_ORDER);
    let mut rows = Rows::new(&table).expect("rows");
    let good = br#"{"id": 1, "name": "Ann", "tags": ["x"], "address": {"city": "Oslo"}}"#;
    rows.push(0, 1, 0, None, &[], good).expect("fits");
    // Fails deep inside, after the Kafka columns and earlier fields were pushed.
    let bad = br#"{"id": 2, "name": "Bo", "tags": ["y", 3]}"#;
    let error = rows.push(0, 2, 0, Some(b"k"), &[], bad).expect_err("does not fit");
    assert_eq!(
        error,
        SinkError::Mismatch {
            path: "tags[]".into(),
            reason: "expected a string, found a number".into()
        }
    );
    let missing = br#"{"id": 3, "tags": []}"#;
    let error = rows.push(0, 3, 0, None, &[], missing).expect_err("name is required");
    assert!(error.to_string().starts_with("field `name`: is required"), "{error}");
    let error = rows.push(0, 4, 0, None, &[], b"not json").expect_err("not JSON");
    assert!(matches!(error, SinkError::Decode(_)), "{error}");
    assert_eq!(rows.len(), 1);
    rows.push(0, 5, 0, None, &[], good).expect("fits");
    let batch = rows.finish().expect("batch");
    assert_eq!(batch.num_rows(), 2);
    assert_eq!(cell(&batch, "_offset", 1), "5");
    assert_eq!(cell(&batch, "_key", 1), "null");
    assert_eq!(cell(&batch, "tags", 1), r#"["x"]"#);
    // Rows start over after finish.
    assert!(rows.is_empty());
    assert_eq!(rows.finish().expect("empty batch").num_rows(), 0);
}

#[test]
fn avro_payload_that_does_not_decode_is_an_error() {
    let table = table(SchemaType::Avro, AVRO_ORDER);
    let mut rows = Rows::new(&table).expect("rows");
    let error = rows.push(0, 0, 0, None, &[], &[0x02]).expect_err("truncated");
    assert!(matches!(error, SinkError::Decode(_)), "{error}");
    assert!(rows.is_empty());
}

#[test]
fn a_field_named_like_a_kafka_column_is_refused() {
    let schema = Schema::parse(
        SchemaType::Json,
        r#"{"type": "object", "properties": {"_offset": {"type": "integer"}}}"#,
        &[],
    )
    .expect("schema parses");
    let error = TableSchema::new(Arc::new(schema), &[]).expect_err("clash");
    assert_eq!(error.to_string(), "field `_offset`: the name is taken by a Kafka column");
}
