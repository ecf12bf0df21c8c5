use crate::parse_error;
use skiff_schema::compatibility::{check, Level};
use skiff_schema::{ResolvedReference, Schema, SchemaType, ValidationError};

fn avro(text: &str) -> Schema {
    Schema::parse(SchemaType::Avro, text, &[]).expect("valid Avro schema")
}

fn error(schema: &Schema, payload: &[u8]) -> String {
    schema.validate(payload, &[]).err().map(|e| e.to_string()).unwrap_or_else(|| "valid".to_owned())
}

const PERSON: &str = r#"{"type":"record","name":"Person","namespace":"com.acme","fields":[
    {"name":"name","type":"string"},
    {"name":"age","type":"int"},
    {"name":"address","type":{"type":"record","name":"Address","fields":[
        {"name":"zip","type":"string"},{"name":"kind","type":{"type":"enum","name":"Kind","symbols":["HOME","WORK"]}}]}}]}"#;

/// name "Ann", age 30, address {zip "12", kind WORK}
const ANN: &[u8] = &[6, b'A', b'n', b'n', 60, 4, b'1', b'2', 2];

const LINKED_LIST: &str = r#"{"type":"record","name":"Node","fields":[
    {"name":"value","type":"int"},{"name":"next","type":["null","Node"]}]}"#;

fn linked_list(depth: usize) -> Vec<u8> {
    let mut payload = Vec::new();
    for _ in 0..depth {
        payload.extend_from_slice(&[0, 2]);
    }
    payload.extend_from_slice(&[0, 0]);
    payload
}

#[test]
fn a_complete_datum_is_valid() {
    let schema = avro(PERSON);
    assert_eq!(schema.schema_type(), SchemaType::Avro);
    assert_eq!(schema.validate(ANN, &[]), Ok(()));
    assert_eq!(avro(r#""string""#).validate(&[2, b'x'], &[]), Ok(()));
}

#[test]
fn a_truncated_payload_names_the_field() {
    let schema = avro(PERSON);
    assert_eq!(
        error(&schema, &ANN[..7]),
        "field `address.zip`: the payload ends before the datum does"
    );
    // apache-avro reads a string cut short as null: the crate must still refuse it
    assert!(error(&avro(r#""string""#), &[10, b'a']).contains("ends before"));
    assert!(error(&avro(r#"["null","string"]"#), &[]).contains("ends before"));
}

#[test]
fn trailing_bytes_are_refused() {
    let mut payload = ANN.to_vec();
    payload.push(0);
    assert_eq!(
        avro(PERSON).validate(&payload, &[]),
        Err(ValidationError::TrailingBytes { trailing: 1, len: 10 })
    );
    assert_eq!(
        error(&avro(PERSON), &payload),
        "1 bytes left over after the datum (payload of 10 bytes)"
    );
}

#[test]
fn a_bad_value_names_the_field_and_the_reason() {
    let mut payload = ANN.to_vec();
    payload[8] = 8; // enum index 4 of 2 symbols
    let message = error(&avro(PERSON), &payload);
    assert!(message.starts_with("field `address.kind`: "), "{message}");
    let mut payload = ANN.to_vec();
    payload[1] = 0xff; // not UTF-8
    let message = error(&avro(PERSON), &payload);
    assert!(message.starts_with("field `name`: "), "{message}");
}

#[test]
fn recursive_schemas_validate_and_garbage_cannot_overflow_the_stack() {
    let schema = avro(LINKED_LIST);
    assert_eq!(schema.validate(&linked_list(3), &[]), Ok(()));
    // Each level takes two bytes: this is far deeper than any stack.
    assert_eq!(
        error(&schema, &linked_list(100_000)),
        "nested too deeply to decode (more than 512 KiB of stack)"
    );
}

#[test]
fn invalid_schemas_say_why() {
    let message = |text: &str| parse_error(SchemaType::Avro, text);
    assert!(message("{").starts_with("invalid AVRO schema: "));
    let unknown =
        message(r#"{"type":"record","name":"A","fields":[{"name":"b","type":"Missing"}]}"#);
    assert!(unknown.starts_with("invalid AVRO schema: "), "{unknown}");
    assert!(unknown.contains("Missing"), "{unknown}");
}

#[test]
fn references_provide_named_types() {
    let address = r#"{"type":"record","name":"Address","namespace":"com.acme","fields":[
        {"name":"zip","type":"string"},{"name":"country","type":"com.acme.Country"}]}"#;
    let country =
        r#"{"type":"enum","name":"Country","namespace":"com.acme","symbols":["NL","FR"]}"#;
    let references = [
        ResolvedReference {
            name: "com.acme.Address".into(),
            schema_type: SchemaType::Avro,
            text: address.into(),
        },
        ResolvedReference {
            name: "com.acme.Country".into(),
            schema_type: SchemaType::Avro,
            text: country.into(),
        },
    ];
    let order = r#"{"type":"record","name":"Order","namespace":"com.acme","fields":[
        {"name":"id","type":"long"},{"name":"ship_to","type":"Address"}]}"#;
    let schema = Schema::parse(SchemaType::Avro, order, &references).expect("order parses");
    // id 7, zip "1", country FR
    assert_eq!(schema.validate(&[14, 2, b'1', 2], &[]), Ok(()));
    assert!(error(&schema, &[14, 2, b'1', 6]).starts_with("field `ship_to.country`: "));

    let missing = Schema::parse(SchemaType::Avro, order, &references[..1])
        .err()
        .map(|e| e.to_string())
        .unwrap_or_default();
    assert!(missing.contains("Country"), "{missing}");

    let not_named = [ResolvedReference {
        name: "Thing".into(),
        schema_type: SchemaType::Avro,
        text: r#""string""#.into(),
    }];
    assert_eq!(
        Schema::parse(SchemaType::Avro, order, &not_named).err().map(|e| e.to_string()),
        Some("reference `Thing`: not a named Avro type (record, enum or fixed)".to_owned())
    );
}

#[test]
fn canonical_ignores_formatting_but_not_meaning() {
    let compact =
        r#"{"type":"record","name":"A","fields":[{"name":"x","type":"int","default":1}]}"#;
    let spread = "{ \"fields\" : [ { \"default\": 1, \"type\" : \"int\", \"name\" : \"x\" } ],\n  \"name\": \"A\",  \"type\" : \"record\" }";
    assert_eq!(avro(compact).canonical(), avro(spread).canonical());
    let other_default =
        r#"{"type":"record","name":"A","fields":[{"name":"x","type":"int","default":2}]}"#;
    assert_ne!(avro(compact).canonical(), avro(other_default).canonical());
    assert_eq!(avro(r#""string""#).canonical(), avro(r#"{"type": "string"}"#).canonical());
}

const V1: &str = r#"{"type":"record","name":"R","fields":[{"name":"a","type":"int"}]}"#;
const V1_WITH_C: &str = r#"{"type":"record","name":"R","fields":[{"name":"a","type":"int"},{"name":"c","type":"int"}]}"#;
const V2_C_DEFAULT: &str = r#"{"type":"record","name":"R","fields":[{"name":"a","type":"int"},{"name":"c","type":"int","default":0}]}"#;

#[test]
fn adding_a_field_needs_a_default_to_be_backward_compatible() {
    let (old, new) = (avro(V1), avro(V1_WITH_C));
    let reasons = check(Level::Backward, &new, &[&old]);
    assert_eq!(reasons.len(), 1, "{reasons:?}");
    assert!(reasons[0].starts_with(
        "backward: the new schema cannot read data written with the previous schema: "
    ));
    assert!(reasons[0].contains("'c'"), "{reasons:?}");
    assert!(check(Level::Forward, &new, &[&old]).is_empty());
    assert!(check(Level::Full, &new, &[&old]).len() == 1);
    assert!(check(Level::Full, &avro(V2_C_DEFAULT), &[&old]).is_empty());
    assert!(check(Level::None, &new, &[&old]).is_empty());
    assert!(check(Level::Backward, &new, &[]).is_empty());
}

#[test]
fn promotions_are_one_way() {
    let int = avro(r#"{"type":"record","name":"R","fields":[{"name":"a","type":"int"}]}"#);
    let long = avro(r#"{"type":"record","name":"R","fields":[{"name":"a","type":"long"}]}"#);
    let string = avro(r#"{"type":"record","name":"R","fields":[{"name":"a","type":"string"}]}"#);
    assert!(check(Level::Backward, &long, &[&int]).is_empty());
    assert_eq!(check(Level::Forward, &long, &[&int]).len(), 1);
    assert_eq!(check(Level::Full, &string, &[&int]).len(), 2);
}

#[test]
fn a_removed_enum_symbol_is_backward_incompatible() {
    let two = avro(r#"{"type":"enum","name":"E","symbols":["A","B"]}"#);
    let one = avro(r#"{"type":"enum","name":"E","symbols":["A"]}"#);
    let reasons = check(Level::Backward, &one, &[&two]);
    assert_eq!(reasons.len(), 1, "{reasons:?}");
    assert!(check(Level::Forward, &one, &[&two]).is_empty());
}

#[test]
fn transitive_levels_check_every_previous_version() {
    // v1 {a}, v2 {a, c = 0}, v3 {a, c}: v3 reads v2's data, not v1's.
    let (v1, v2, v3) = (avro(V1), avro(V2_C_DEFAULT), avro(V1_WITH_C));
    assert!(check(Level::Backward, &v3, &[&v1, &v2]).is_empty());
    let reasons = check(Level::BackwardTransitive, &v3, &[&v1, &v2]);
    assert_eq!(reasons.len(), 1, "{reasons:?}");
    assert!(reasons[0].contains("previous schema 1 of 2"), "{reasons:?}");
    // v1 {a, c}, v2 {a, c = 0}, v3 {a}: v2 reads v3's data, v1 does not.
    let (v1, v2, v3) = (avro(V1_WITH_C), avro(V2_C_DEFAULT), avro(V1));
    assert!(check(Level::Forward, &v3, &[&v1, &v2]).is_empty());
    assert_eq!(check(Level::ForwardTransitive, &v3, &[&v1, &v2]).len(), 1);
    assert!(check(Level::Full, &v3, &[&v1, &v2]).is_empty());
    assert_eq!(check(Level::FullTransitive, &v3, &[&v1, &v2]).len(), 1);
}

#[test]
fn another_schema_type_is_incompatible() {
    let json = Schema::parse(SchemaType::Json, r#"{"type":"object"}"#, &[]).expect("json");
    assert_eq!(
        check(Level::Backward, &json, &[&avro(V1)]),
        vec!["schema type changed from AVRO (the previous schema) to JSON".to_owned()]
    );
}

#[test]
fn record_names_are_full_names_of_named_types() {
    assert_eq!(avro(PERSON).record_name(&[]).ok().as_deref(), Some("com.acme.Person"));
    assert_eq!(avro(V1).record_name(&[]).ok().as_deref(), Some("R"));
    let unnamed = avro("\"string\"").record_name(&[]).err().map(|e| e.to_string());
    assert_eq!(
        unnamed.as_deref(),
        Some("the schema is not a named Avro type (record, enum or fixed)")
    );
}
