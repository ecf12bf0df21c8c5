//! Plain JSON to payloads and back (`Schema::encode_json` / `decode_json`), per format.

use serde_json::{json, Value};
use skiff_schema::{ResolvedReference, Schema, SchemaType};

fn parse(schema_type: SchemaType, text: &str) -> Schema {
    Schema::parse(schema_type, text, &[]).expect("valid schema")
}

fn encode_error(schema: &Schema, json: Value) -> String {
    schema.encode_json(&json, &[]).err().map(|e| e.to_string()).unwrap_or_else(|| "ok".into())
}

/// Encodes `json`, checks the payload validates, and decodes it back.
fn round_trip(schema: &Schema, json: Value, indexes: &[i32]) -> Value {
    let payload = schema.encode_json(&json, indexes).expect("encodes");
    assert_eq!(schema.validate(&payload, indexes), Ok(()));
    schema.decode_json(&payload, indexes).expect("decodes")
}

const PERSON: &str = r#"{"type":"record","name":"Person","namespace":"com.acme","fields":[
    {"name":"name","type":"string"},
    {"name":"age","type":"int"},
    {"name":"email","type":["null","string"],"default":null},
    {"name":"kind","type":{"type":"enum","name":"Kind","symbols":["HOME","WORK"]},"default":"HOME"},
    {"name":"tags","type":{"type":"array","items":"string"},"default":[]},
    {"name":"score","type":"double","default":0.0}]}"#;

#[test]
fn avro_records_round_trip_with_defaults_and_unions() {
    let schema = parse(SchemaType::Avro, PERSON);
    let ann = json!({"name": "Ann", "age": 30, "email": "ann@example.com", "kind": "WORK",
                     "tags": ["a", "b"], "score": 1.5});
    assert_eq!(round_trip(&schema, ann.clone(), &[]), ann);
    let bob = round_trip(&schema, json!({"name": "Bob", "age": 7}), &[]);
    assert_eq!(
        bob,
        json!({"name": "Bob", "age": 7, "email": null, "kind": "HOME", "tags": [], "score": 0.0})
    );
}

#[test]
fn avro_payload_is_the_plain_binary_datum() {
    let schema = parse(
        SchemaType::Avro,
        r#"{"type":"record","name":"R","fields":[
        {"name":"id","type":"string"},{"name":"n","type":"long"}]}"#,
    );
    let payload = schema.encode_json(&json!({"id": "a", "n": 3}), &[]).expect("encodes");
    assert_eq!(payload, vec![2, b'a', 6]);
}

#[test]
fn avro_refuses_documents_that_do_not_fit() {
    let schema = parse(SchemaType::Avro, PERSON);
    assert_ne!(encode_error(&schema, json!({"name": "Ann"})), "ok", "age has no default");
    assert_ne!(encode_error(&schema, json!({"name": "Ann", "age": "thirty"})), "ok");
    assert_ne!(encode_error(&schema, json!({"name": "Ann", "age": 1, "kind": "NONE"})), "ok");
    assert_ne!(encode_error(&schema, json!([1, 2])), "ok");
    assert_ne!(encode_error(&schema, json!({"name": "Ann", "age": 5_000_000_000_i64})), "ok");
}

#[test]
fn avro_with_references_and_recursion_round_trips() {
    let address = ResolvedReference {
        name: "com.acme.Address".into(),
        schema_type: SchemaType::Avro,
        text: r#"{"type":"record","name":"Address","namespace":"com.acme","fields":[
            {"name":"zip","type":"string"}]}"#
            .into(),
    };
    let schema = Schema::parse(
        SchemaType::Avro,
        r#"{"type":"record","name":"Home","namespace":"com.acme","fields":[
            {"name":"address","type":"Address"}]}"#,
        &[address],
    )
    .expect("valid schema");
    let home = json!({"address": {"zip": "12345"}});
    assert_eq!(round_trip(&schema, home.clone(), &[]), home);

    let list = parse(
        SchemaType::Avro,
        r#"{"type":"record","name":"Node","fields":[
        {"name":"value","type":"int"},{"name":"next","type":["null","Node"]}]}"#,
    );
    let nodes = json!({"value": 1, "next": {"value": 2, "next": null}});
    assert_eq!(round_trip(&list, nodes.clone(), &[]), nodes);
}

#[test]
fn avro_decoding_checks_the_payload() {
    let schema = parse(SchemaType::Avro, r#""string""#);
    assert!(schema.decode_json(&[2, b'x', 0], &[]).is_err(), "trailing bytes");
    assert!(schema.decode_json(&[4, b'x'], &[]).is_err(), "truncated");
    assert_eq!(schema.decode_json(&[2, b'x'], &[]).ok(), Some(json!("x")));
}

const ORDER_JSON: &str = r#"{"type":"object","properties":{
    "id":{"type":"string"},"qty":{"type":"integer","minimum":1}},"required":["id"]}"#;

#[test]
fn json_schema_documents_are_validated_and_kept_as_json() {
    let schema = parse(SchemaType::Json, ORDER_JSON);
    let order = json!({"id": "o-1", "qty": 2});
    let payload = schema.encode_json(&order, &[]).expect("encodes");
    assert_eq!(serde_json::from_slice::<Value>(&payload).ok(), Some(order.clone()));
    assert_eq!(round_trip(&schema, order.clone(), &[]), order);
    assert_eq!(
        encode_error(&schema, json!({"id": "o-1", "qty": 0})),
        "field `qty`: value is less than the minimum of 1"
    );
    assert_ne!(encode_error(&schema, json!({"qty": 1})), "ok");
    assert!(schema.decode_json(b"{\"id\": 5}", &[]).is_err());
    assert!(schema.decode_json(b"not json", &[]).is_err());
}

const ORDERS_PROTO: &str = r#"syntax = "proto3";
package shop;
message Order {
  string id = 1;
  int64 qty = 2;
  Status status = 3;
  repeated Line lines = 4;
  message Line { string sku = 1; }
}
enum Status { NEW = 0; PAID = 1; }
message Refund { string order_id = 1; }
"#;

#[test]
fn protobuf_messages_round_trip_through_canonical_json() {
    let schema = parse(SchemaType::Protobuf, ORDERS_PROTO);
    let order = json!({"id": "o-1", "qty": "3", "status": "PAID", "lines": [{"sku": "x"}]});
    assert_eq!(round_trip(&schema, order.clone(), &[0]), order);
    // 64-bit integers may be given as numbers; lowerCamelCase and declared names both work.
    assert_eq!(round_trip(&schema, json!({"qty": 3}), &[]), json!({"qty": "3"}));
    let refund = json!({"orderId": "o-1"});
    assert_eq!(round_trip(&schema, json!({"order_id": "o-1"}), &[1]), refund);
    assert_eq!(round_trip(&schema, json!({"sku": "y"}), &[0, 0]), json!({"sku": "y"}));
}

#[test]
fn protobuf_refuses_unknown_fields_and_wrong_types() {
    let schema = parse(SchemaType::Protobuf, ORDERS_PROTO);
    assert_ne!(encode_error(&schema, json!({"nope": 1})), "ok");
    assert_ne!(encode_error(&schema, json!({"qty": "three"})), "ok");
    assert_ne!(encode_error(&schema, json!({"status": "LOST"})), "ok");
    let unknown = schema.encode_json(&json!({}), &[5]).err().map(|e| e.to_string());
    assert!(unknown.is_some_and(|e| e.contains("select no message type")));
    assert!(schema.decode_json(&[0xff, 0xff], &[0]).is_err());
}
