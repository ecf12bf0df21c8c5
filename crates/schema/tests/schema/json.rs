use crate::parse_error;
use skiff_schema::compatibility::{check, Level};
use skiff_schema::{ResolvedReference, Schema, SchemaType, ValidationError};

fn json(text: &str) -> Schema {
    Schema::parse(SchemaType::Json, text, &[]).expect("valid JSON Schema")
}

fn error(schema: &Schema, payload: &str) -> String {
    schema
        .validate(payload.as_bytes(), &[])
        .err()
        .map(|e| e.to_string())
        .unwrap_or_else(|| "valid".to_owned())
}

const PERSON: &str = r#"{
    "type": "object",
    "properties": {
        "name": {"type": "string"},
        "age": {"type": "integer"},
        "tags": {"type": "array", "items": {"type": "string"}},
        "address": {"type": "object", "properties": {"zip": {"type": "string"}}, "required": ["zip"]}
    },
    "required": ["name"]
}"#;

#[test]
fn valid_documents_pass() {
    let schema = json(PERSON);
    assert_eq!(schema.schema_type(), SchemaType::Json);
    assert_eq!(
        schema.validate(br#"{"name":"Ann","age":30,"tags":["a"],"address":{"zip":"1"}}"#, &[]),
        Ok(())
    );
}

#[test]
fn errors_name_the_instance_path_and_the_reason() {
    let schema = json(PERSON);
    assert_eq!(
        error(&schema, r#"{"name":"Ann","age":"thirty"}"#),
        r#"field `age`: value is not of type "integer""#
    );
    assert_eq!(
        error(&schema, r#"{"name":"Ann","tags":["a", 2]}"#),
        r#"field `tags[1]`: value is not of type "string""#
    );
    assert_eq!(
        error(&schema, r#"{"name":"Ann","address":{}}"#),
        r#"field `address`: "zip" is a required property"#
    );
    assert_eq!(error(&schema, r#"{"age":1}"#), r#""name" is a required property"#);
}

#[test]
fn payloads_that_are_not_json_are_refused() {
    let schema = json(PERSON);
    assert!(matches!(schema.validate(b"{\"name\":", &[]), Err(ValidationError::NotJson(_))));
    assert!(error(&schema, "nope").starts_with("not JSON: "));
    assert!(schema
        .validate(&[0xff, 0xfe], &[])
        .err()
        .map(|e| e.to_string())
        .unwrap_or_default()
        .starts_with("not JSON: not UTF-8"));
}

#[test]
fn drafts_named_by_the_schema_are_honoured() {
    // prefixItems exists from 2020-12 on
    let tuple = r#"{"$schema":"https://json-schema.org/draft/2020-12/schema",
        "type":"array","prefixItems":[{"type":"integer"}]}"#;
    assert!(error(&json(tuple), r#"["x"]"#).starts_with("field `[0]`"));
    let draft4 = r#"{"$schema":"http://json-schema.org/draft-04/schema#",
        "type":"number","maximum":10,"exclusiveMaximum":true}"#;
    assert_ne!(error(&json(draft4), "10"), "valid");
    assert_eq!(error(&json(draft4), "9"), "valid");
}

#[test]
fn invalid_schemas_say_why() {
    let message = |text: &str| parse_error(SchemaType::Json, text);
    assert!(message("{").starts_with("invalid JSON schema: not JSON: "));
    assert_eq!(message("42"), "invalid JSON schema: a JSON Schema must be an object or a boolean");
    assert!(message(r#"{"type": 12}"#).starts_with("invalid JSON schema: "));
    // $ref to something never registered: no network, a clear error
    let unresolved = message(r#"{"$ref": "https://example.com/missing.json"}"#);
    assert!(unresolved.starts_with("invalid JSON schema: "), "{unresolved}");
}

#[test]
fn references_resolve_offline_by_name() {
    let customer = ResolvedReference {
        name: "customer.json".into(),
        schema_type: SchemaType::Json,
        text: r#"{"type":"object","properties":{"id":{"type":"integer"}},"required":["id"]}"#
            .into(),
    };
    let address = ResolvedReference {
        name: "https://example.com/schemas/address.json".into(),
        schema_type: SchemaType::Json,
        text: r#"{"type":"object","properties":{"zip":{"type":"string"}}}"#.into(),
    };
    let order = r#"{"type":"object","properties":{
        "customer":{"$ref":"customer.json"},
        "ship_to":{"$ref":"https://example.com/schemas/address.json"}}}"#;
    let references = [customer, address];
    let schema = Schema::parse(SchemaType::Json, order, &references).expect("order parses");
    assert_eq!(error(&schema, r#"{"customer":{"id":1},"ship_to":{"zip":"1"}}"#), "valid");
    assert_eq!(
        error(&schema, r#"{"customer":{"id":"x"}}"#),
        r#"field `customer.id`: value is not of type "integer""#
    );
    assert_eq!(
        error(&schema, r#"{"ship_to":{"zip":1}}"#),
        r#"field `ship_to.zip`: value is not of type "string""#
    );

    // relative to the main schema's $id
    let with_id = r#"{"$id":"https://example.com/schemas/order.json","type":"object",
        "properties":{"customer":{"$ref":"customer.json"}}}"#;
    let schema = Schema::parse(SchemaType::Json, with_id, &references).expect("order parses");
    assert_eq!(
        error(&schema, r#"{"customer":{}}"#),
        r#"field `customer`: "id" is a required property"#
    );
}

#[test]
fn canonical_ignores_whitespace_and_key_order() {
    let a =
        json(r#"{"type":"object","properties":{"a":{"type":"string"},"b":{"type":"integer"}}}"#);
    let b = json("{\n  \"properties\": {\"b\": {\"type\": \"integer\"}, \"a\": {\"type\": \"string\"}},\n  \"type\": \"object\"\n}");
    assert_eq!(a.canonical(), b.canonical());
    assert_ne!(a.canonical(), json(r#"{"type":"object"}"#).canonical());
}

fn reasons(level: Level, new: &str, old: &[&str]) -> Vec<String> {
    let old: Vec<Schema> = old.iter().map(|text| json(text)).collect();
    let old: Vec<&Schema> = old.iter().collect();
    check(level, &json(new), &old)
}

#[test]
fn a_required_property_added_is_backward_incompatible() {
    let old = r#"{"type":"object","properties":{"a":{"type":"string"}}}"#;
    let new = r#"{"type":"object","properties":{"a":{"type":"string"}},"required":["a"]}"#;
    assert_eq!(
        reasons(Level::Backward, new, &[old]),
        vec!["backward: the new schema cannot read data written with the previous schema: the root: property `a` became required".to_owned()]
    );
    assert!(reasons(Level::Forward, new, &[old]).is_empty());
}

#[test]
fn type_changes_are_incompatible_except_widening() {
    let int = r#"{"type":"object","properties":{"n":{"type":"integer"}}}"#;
    let number = r#"{"type":"object","properties":{"n":{"type":"number"}}}"#;
    let string = r#"{"type":"object","properties":{"n":{"type":"string"}}}"#;
    assert!(reasons(Level::Backward, number, &[int]).is_empty());
    assert_eq!(
        reasons(Level::Forward, number, &[int]),
        vec!["forward: the previous schema cannot read data written with the new schema: `n`: type changed from number to integer".to_owned()]
    );
    assert_eq!(reasons(Level::Full, string, &[int]).len(), 2);
}

#[test]
fn closed_content_models_cannot_lose_properties() {
    let closed_ab = r#"{"type":"object","additionalProperties":false,
        "properties":{"a":{"type":"string"},"b":{"type":"string"}}}"#;
    let closed_a = r#"{"type":"object","additionalProperties":false,
        "properties":{"a":{"type":"string"}}}"#;
    let open_a = r#"{"type":"object","properties":{"a":{"type":"string"}}}"#;
    assert_eq!(
        reasons(Level::Backward, closed_a, &[closed_ab]),
        vec!["backward: the new schema cannot read data written with the previous schema: the root: property `b` was removed from a closed content model".to_owned()]
    );
    assert!(reasons(Level::Forward, closed_a, &[closed_ab]).is_empty());
    assert_eq!(reasons(Level::Backward, closed_a, &[open_a]).len(), 1);
    assert!(reasons(Level::Backward, open_a, &[closed_a]).is_empty());
}

#[test]
fn removed_enum_values_are_backward_incompatible() {
    let abc = r#"{"type":"string","enum":["a","b","c"]}"#;
    let ab = r#"{"type":"string","enum":["a","b"]}"#;
    assert_eq!(
        reasons(Level::Backward, ab, &[abc]),
        vec![r#"backward: the new schema cannot read data written with the previous schema: the root: enum value "c" is missing"#.to_owned()]
    );
    assert!(reasons(Level::Forward, ab, &[abc]).is_empty());
    assert_eq!(reasons(Level::Full, ab, &[abc]).len(), 1);
}

#[test]
fn nested_properties_and_items_are_compared() {
    let old = r#"{"type":"object","properties":{"list":{"type":"array","items":
        {"type":"object","properties":{"x":{"type":"integer"}}}}}}"#;
    let new = r#"{"type":"object","properties":{"list":{"type":"array","items":
        {"type":"object","properties":{"x":{"type":"string"}}}}}}"#;
    let found = reasons(Level::Backward, new, &[old]);
    assert_eq!(found.len(), 1);
    assert!(found[0].ends_with("`list[].x`: type changed from integer to string"), "{found:?}");
}

#[test]
fn transitive_levels_check_every_previous_version() {
    let v1 = r#"{"type":"object","properties":{"a":{"type":"string"}}}"#;
    let v2 = r#"{"type":"object","properties":{"a":{"type":"string"}},"required":["a"]}"#;
    let v3 = r#"{"type":"object","properties":{"a":{"type":"string"}},"required":["a"]}"#;
    assert!(reasons(Level::Backward, v3, &[v1, v2]).is_empty());
    let found = reasons(Level::BackwardTransitive, v3, &[v1, v2]);
    assert_eq!(found.len(), 1, "{found:?}");
    assert!(found[0].contains("previous schema 1 of 2"), "{found:?}");
    // dropping `required` again: every previous version requires `a`
    assert_eq!(reasons(Level::Forward, v1, &[v2, v3]).len(), 1);
    assert_eq!(reasons(Level::ForwardTransitive, v1, &[v2, v3]).len(), 2);
    assert_eq!(reasons(Level::FullTransitive, v3, &[v1, v2]).len(), 1);
}

#[test]
fn record_names_are_titles() {
    let titled = json(r#"{"title": "com.acme.Order", "type": "object"}"#);
    assert_eq!(titled.record_name(&[]).ok().as_deref(), Some("com.acme.Order"));
    let untitled = json(r#"{"type": "object"}"#).record_name(&[]).err().map(|e| e.to_string());
    assert_eq!(untitled.as_deref(), Some("the schema has no `title` to name its records"));
}
