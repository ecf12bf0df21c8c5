use crate::parse_error;
use skiff_schema::compatibility::{check, Level};
use skiff_schema::{ResolvedReference, Schema, SchemaType, ValidationError};

fn proto(text: &str) -> Schema {
    Schema::parse(SchemaType::Protobuf, text, &[]).expect("valid .proto")
}

fn error(schema: &Schema, payload: &[u8], indexes: &[i32]) -> String {
    schema
        .validate(payload, indexes)
        .err()
        .map(|e| e.to_string())
        .unwrap_or_else(|| "valid".to_owned())
}

const SHOP: &str = r#"
syntax = "proto3";
package shop;

// The first message: indexes [] or [0].
message Person {
  string name = 1;
  int32 age = 2;
  Address address = 3;
  map<string, Address> others = 4;
}

message Address {
  string zip = 1;
  message Geo { double lat = 1; double lon = 2; }
  map<string, string> labels = 2;
  message Note { string text = 1; }
}
"#;

/// Person { name: "Ann", age: 30, address: { zip: "12" } }
const ANN: &[u8] = &[0x0a, 3, b'A', b'n', b'n', 0x10, 30, 0x1a, 4, 0x0a, 2, b'1', b'2'];

#[test]
fn valid_messages_pass_for_the_selected_type() {
    let schema = proto(SHOP);
    assert_eq!(schema.schema_type(), SchemaType::Protobuf);
    assert_eq!(schema.validate(ANN, &[]), Ok(()));
    assert_eq!(schema.validate(ANN, &[0]), Ok(()));
    assert_eq!(schema.validate(&[0x0a, 1, b'9'], &[1]), Ok(()));
    // [1, 0]: Address.Geo; [1, 1]: Address.Note (the map entry does not count)
    let geo = [0x09, 0, 0, 0, 0, 0, 0, 0xf0, 0x3f];
    assert_eq!(schema.validate(&geo, &[1, 0]), Ok(()));
    assert_eq!(schema.validate(&[0x0a, 1, b'x'], &[1, 1]), Ok(()));
    assert_eq!(schema.validate(&[], &[]), Ok(()));
}

#[test]
fn undecodable_payloads_name_the_message_type() {
    let schema = proto(SHOP);
    // field 2 (age) with wire type 2 (length-delimited) and a length past the end
    let message = error(&schema, &[0x12, 5, 1], &[]);
    assert!(message.starts_with("not a valid `shop.Person`: "), "{message}");
    let message = error(&schema, &[0x0a, 0xff, 0xff, 0xff, 0xff, 0x0f], &[]);
    assert!(message.starts_with("not a valid `shop.Person`: "), "{message}");
}

#[test]
fn unknown_fields_are_refused_with_their_path() {
    let schema = proto(SHOP);
    assert_eq!(
        error(&schema, &[0x48, 1], &[]),
        "unknown field number 9 (not declared in `shop.Person`)"
    );
    // address { field 7 }
    assert_eq!(
        error(&schema, &[0x1a, 2, 0x38, 1], &[]),
        "field `address`: unknown field number 7 (not declared in `shop.Address`)"
    );
}

#[test]
fn message_indexes_must_select_a_message() {
    let schema = proto(SHOP);
    assert_eq!(
        schema.validate(ANN, &[2]),
        Err(ValidationError::UnknownMessage {
            indexes: vec![2],
            reason: "index 2 at depth 0: the file has 2 message types".to_owned()
        })
    );
    assert_eq!(
        error(&schema, ANN, &[1, 2]),
        "message indexes [1, 2] select no message type of the schema: index 2 at depth 1: `shop.Address` has 2 message types"
    );
    assert!(error(&schema, ANN, &[-1]).contains("index -1 at depth 0"));
}

#[test]
fn syntax_errors_say_where() {
    let message =
        parse_error(SchemaType::Protobuf, "syntax = \"proto3\";\nmessage A {\n  int32 = 1;\n}\n");
    assert!(message.starts_with("invalid PROTOBUF schema: schema.proto:3:"), "{message}");
    let message =
        parse_error(SchemaType::Protobuf, "syntax = \"proto3\";\nimport \"missing.proto\";\n");
    assert!(message.contains("missing.proto"), "{message}");
}

#[test]
fn imports_resolve_to_references_and_well_known_types() {
    let common = ResolvedReference {
        name: "acme/common.proto".into(),
        schema_type: SchemaType::Protobuf,
        text: "syntax = \"proto3\";\npackage acme;\nimport \"acme/money.proto\";\nmessage Price { Money amount = 1; }\n".into(),
    };
    let money = ResolvedReference {
        name: "acme/money.proto".into(),
        schema_type: SchemaType::Protobuf,
        text: "syntax = \"proto3\";\npackage acme;\nmessage Money { int64 cents = 1; }\n".into(),
    };
    let order = r#"
        syntax = "proto3";
        import "acme/common.proto";
        import "google/protobuf/timestamp.proto";
        message Order { acme.Price price = 1; google.protobuf.Timestamp at = 2; }
    "#;
    let schema =
        Schema::parse(SchemaType::Protobuf, order, &[common, money]).expect("order compiles");
    // price { amount { cents 5 } }, at { seconds 1 }
    assert_eq!(schema.validate(&[0x0a, 4, 0x0a, 2, 0x08, 5, 0x12, 2, 0x08, 1], &[]), Ok(()));
    assert_eq!(
        error(&schema, &[0x0a, 4, 0x0a, 2, 0x18, 5], &[]),
        "field `price.amount`: unknown field number 3 (not declared in `acme.Money`)"
    );
}

#[test]
fn canonical_ignores_comments_and_whitespace() {
    let compact = proto("syntax=\"proto3\";message A{int32 x=1;}");
    let spread =
        proto("// a comment\nsyntax = \"proto3\";\n\nmessage A {\n  int32 x = 1; // x\n}\n");
    assert_eq!(compact.canonical(), spread.canonical());
    assert_ne!(compact.canonical(), proto("syntax=\"proto3\";message A{int64 x=1;}").canonical());
}

fn reasons(level: Level, new: &str, old: &[&str]) -> Vec<String> {
    let old: Vec<Schema> = old.iter().map(|text| proto(text)).collect();
    let old: Vec<&Schema> = old.iter().collect();
    check(level, &proto(new), &old)
}

const V1: &str = "syntax = \"proto3\";\nmessage A { int32 x = 1; string s = 2; }\n";

#[test]
fn adding_and_removing_fields_is_compatible() {
    let added = "syntax = \"proto3\";\nmessage A { int32 x = 1; string s = 2; bool b = 3; }\n";
    let removed = "syntax = \"proto3\";\nmessage A { int32 x = 1; }\n";
    for level in [Level::Full, Level::FullTransitive] {
        assert!(reasons(level, added, &[V1]).is_empty());
        assert!(reasons(level, removed, &[V1]).is_empty());
    }
}

#[test]
fn field_type_changes_must_keep_the_wire_type() {
    let widened = "syntax = \"proto3\";\nmessage A { int64 x = 1; bytes s = 2; }\n";
    assert!(reasons(Level::Full, widened, &[V1]).is_empty());
    let reused = "syntax = \"proto3\";\nmessage A { string x = 1; string s = 2; }\n";
    assert_eq!(
        reasons(Level::Backward, reused, &[V1]),
        vec!["backward: the new schema cannot read data written with the previous schema: field `A.x` (number 1): type changed from int32 to string".to_owned()]
    );
    let repeated = "syntax = \"proto3\";\nmessage A { repeated int32 x = 1; string s = 2; }\n";
    let found = reasons(Level::Backward, repeated, &[V1]);
    assert!(found[0].ends_with("changed between singular and repeated"), "{found:?}");
}

#[test]
fn removed_messages_are_backward_incompatible_and_added_ones_forward() {
    let two = "syntax = \"proto3\";\nmessage A { int32 x = 1; string s = 2; }\nmessage B { int32 y = 1; }\n";
    assert_eq!(
        reasons(Level::Backward, V1, &[two]),
        vec!["backward: the new schema cannot read data written with the previous schema: message `B` is missing".to_owned()]
    );
    assert!(reasons(Level::Forward, V1, &[two]).is_empty());
    assert!(reasons(Level::Backward, two, &[V1]).is_empty());
    assert_eq!(reasons(Level::Forward, two, &[V1]).len(), 1);
}

#[test]
fn proto2_required_fields_must_be_written() {
    let optional = "syntax = \"proto2\";\nmessage A { optional int32 x = 1; }\n";
    let required =
        "syntax = \"proto2\";\nmessage A { optional int32 x = 1; required int32 y = 2; }\n";
    let found = reasons(Level::Backward, required, &[optional]);
    assert_eq!(found.len(), 1, "{found:?}");
    assert!(
        found[0].ends_with("required field `A.y` (number 2) is missing from the writer's message")
    );
    assert!(reasons(Level::Forward, required, &[optional]).is_empty());
}

#[test]
fn transitive_levels_check_every_previous_version() {
    let v2 = "syntax = \"proto3\";\nmessage A { int32 x = 1; }\n";
    let v3 = "syntax = \"proto3\";\nmessage A { int32 x = 1; bool s = 2; }\n";
    assert!(reasons(Level::Backward, v3, &[V1, v2]).is_empty());
    let found = reasons(Level::BackwardTransitive, v3, &[V1, v2]);
    assert_eq!(found.len(), 1, "{found:?}");
    assert!(found[0].contains("previous schema 1 of 2"), "{found:?}");
    assert!(
        found[0].ends_with("field `A.s` (number 2): type changed from string to bool"),
        "{found:?}"
    );
    assert_eq!(reasons(Level::ForwardTransitive, v3, &[V1, v2]).len(), 1);
    assert_eq!(reasons(Level::FullTransitive, v3, &[V1, v2]).len(), 2);
}

#[test]
fn serialized_descriptors_compile_like_their_source() {
    let source = proto(SHOP);
    let serialized = source.serialized().expect("protobuf has a serialized form");
    let from_descriptor = proto(&serialized);
    assert_eq!(from_descriptor.canonical(), source.canonical());
    assert_eq!(from_descriptor.validate(ANN, &[]), Ok(()));
    assert_eq!(from_descriptor.record_name(&[1, 0]).ok().as_deref(), Some("shop.Address.Geo"));
    assert!(
        Schema::parse(SchemaType::Avro, "\"string\"", &[]).is_ok_and(|s| s.serialized().is_none())
    );
}

#[test]
fn serialized_references_resolve_by_their_import_path() {
    // confluent-kafka's ProtobufSerializer registers every file as a serialized descriptor,
    // each built under its own name; the import path is what binds them.
    let money_text = "syntax = \"proto3\";\npackage acme;\nmessage Money { int64 cents = 1; }\n";
    let money = proto(money_text).serialized().expect("serialized");
    let reference = |text: String| ResolvedReference {
        name: "acme/money.proto".into(),
        schema_type: SchemaType::Protobuf,
        text,
    };
    let order = "syntax = \"proto3\";\nimport \"acme/money.proto\";\nmessage Order { acme.Money total = 1; }\n";
    let from_source = Schema::parse(SchemaType::Protobuf, order, &[reference(money_text.into())])
        .expect("order compiles against source");
    let order_serialized = from_source.serialized().expect("serialized");
    let from_descriptors =
        Schema::parse(SchemaType::Protobuf, &order_serialized, &[reference(money)])
            .expect("order compiles against a serialized import");
    assert_eq!(from_descriptors.canonical(), from_source.canonical());
    // total { cents 5 }
    assert_eq!(from_descriptors.validate(&[0x0a, 2, 0x08, 5], &[]), Ok(()));
}

#[test]
fn base64_that_is_no_descriptor_is_an_invalid_schema() {
    let message = parse_error(SchemaType::Protobuf, "bm90IGEgZGVzY3JpcHRvcg==");
    assert!(message.starts_with("invalid PROTOBUF schema"), "{message}");
}

#[test]
fn record_names_are_message_full_names() {
    let schema = proto(SHOP);
    assert_eq!(schema.record_name(&[]).ok().as_deref(), Some("shop.Person"));
    assert_eq!(schema.record_name(&[1]).ok().as_deref(), Some("shop.Address"));
    assert!(schema.record_name(&[7]).is_err());
}
