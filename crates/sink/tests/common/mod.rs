//! Shared by the integration tests: a compact text form of Arrow values to assert on.

#![allow(dead_code, unreachable_pub)]

use apache_avro::schema::ResolvedSchema;
use apache_avro::types::Value as Avro;
use apache_avro::writer::datum::GenericDatumWriter;
use arrow_array::cast::AsArray;
use arrow_array::types::{
    Date32Type, Decimal128Type, Float32Type, Float64Type, Int32Type, Int64Type,
    Time32MillisecondType, Time64MicrosecondType, TimestampMicrosecondType,
    TimestampMillisecondType, TimestampNanosecondType,
};
use arrow_array::{Array, RecordBatch};
use arrow_schema::{DataType, TimeUnit};
use skiff_schema::Schema;

/// The value of column `name` in `row`: numbers as numbers, strings quoted, bytes as
/// `0x..`, structs `{a: 1}`, lists `[1, 2]`, maps `{"k" => 1}`, decimals `123.45`.
pub fn cell(batch: &RecordBatch, name: &str, row: usize) -> String {
    let column = batch.column_by_name(name).unwrap_or_else(|| panic!("no column `{name}`"));
    render(column.as_ref(), row)
}

pub fn render(array: &dyn Array, row: usize) -> String {
    if array.is_null(row) {
        return "null".to_owned();
    }
    match array.data_type() {
        DataType::Boolean => array.as_boolean().value(row).to_string(),
        DataType::Int32 => array.as_primitive::<Int32Type>().value(row).to_string(),
        DataType::Int64 => array.as_primitive::<Int64Type>().value(row).to_string(),
        DataType::Float32 => array.as_primitive::<Float32Type>().value(row).to_string(),
        DataType::Float64 => array.as_primitive::<Float64Type>().value(row).to_string(),
        DataType::Date32 => format!("day {}", array.as_primitive::<Date32Type>().value(row)),
        DataType::Time32(_) => {
            format!("{} ms", array.as_primitive::<Time32MillisecondType>().value(row))
        }
        DataType::Time64(_) => {
            format!("{} us", array.as_primitive::<Time64MicrosecondType>().value(row))
        }
        DataType::Timestamp(TimeUnit::Millisecond, _) => {
            format!("{} ms", array.as_primitive::<TimestampMillisecondType>().value(row))
        }
        DataType::Timestamp(TimeUnit::Microsecond, _) => {
            format!("{} us", array.as_primitive::<TimestampMicrosecondType>().value(row))
        }
        DataType::Timestamp(_, _) => {
            format!("{} ns", array.as_primitive::<TimestampNanosecondType>().value(row))
        }
        DataType::Decimal128(_, _) => array.as_primitive::<Decimal128Type>().value_as_string(row),
        DataType::Utf8 => format!("{:?}", array.as_string::<i32>().value(row)),
        DataType::Binary => hex(array.as_binary::<i32>().value(row)),
        DataType::FixedSizeBinary(_) => hex(array.as_fixed_size_binary().value(row)),
        DataType::Struct(fields) => {
            let array = array.as_struct();
            let parts: Vec<String> = fields
                .iter()
                .zip(array.columns())
                .map(|(field, child)| format!("{}: {}", field.name(), render(child.as_ref(), row)))
                .collect();
            format!("{{{}}}", parts.join(", "))
        }
        DataType::List(_) => {
            let items = array.as_list::<i32>().value(row);
            let parts: Vec<String> = (0..items.len()).map(|i| render(items.as_ref(), i)).collect();
            format!("[{}]", parts.join(", "))
        }
        DataType::Map(_, _) => {
            let entries = array.as_map().value(row);
            let parts: Vec<String> = (0..entries.len())
                .map(|i| {
                    format!(
                        "{} => {}",
                        render(entries.column(0).as_ref(), i),
                        render(entries.column(1).as_ref(), i)
                    )
                })
                .collect();
            format!("{{{}}}", parts.join(", "))
        }
        other => panic!("no rendering for {other}"),
    }
}

fn hex(bytes: &[u8]) -> String {
    let digits: String = bytes.iter().map(|b| format!("{b:02x}")).collect();
    format!("0x{digits}")
}

/// The field id in a field's metadata.
pub fn field_id(field: &arrow_schema::Field) -> Option<i32> {
    field.metadata().get("PARQUET:field_id").and_then(|id| id.parse().ok())
}

pub const AVRO_ORDER: &str = r#"{
  "type": "record", "name": "Order", "namespace": "shop",
  "fields": [
    {"name": "id", "type": "long"},
    {"name": "note", "type": ["null", "string"], "default": null},
    {"name": "customer", "type": {"type": "record", "name": "Customer", "fields": [
      {"name": "name", "type": "string"},
      {"name": "vip", "type": "boolean"}]}},
    {"name": "referrer", "type": ["null", "Customer"], "default": null},
    {"name": "tags", "type": {"type": "array", "items": "string"}},
    {"name": "attributes", "type": {"type": "map", "values": "int"}},
    {"name": "status", "type": {"type": "enum", "name": "Status", "symbols": ["NEW", "PAID"]}},
    {"name": "placed", "type": {"type": "long", "logicalType": "timestamp-millis"}},
    {"name": "placed_us", "type": {"type": "long", "logicalType": "timestamp-micros"}},
    {"name": "day", "type": {"type": "int", "logicalType": "date"}},
    {"name": "amount", "type": {"type": "bytes", "logicalType": "decimal", "precision": 10, "scale": 2}},
    {"name": "amount_fixed", "type": {"type": "fixed", "name": "Money", "size": 8,
      "logicalType": "decimal", "precision": 18, "scale": 4}},
    {"name": "uid", "type": {"type": "string", "logicalType": "uuid"}},
    {"name": "hash", "type": {"type": "fixed", "name": "Hash", "size": 4}},
    {"name": "choice", "type": ["null", "int", "string"], "default": null},
    {"name": "ratio", "type": "double"}
  ]
}"#;

/// Encodes an Avro value of the table's schema (a payload without the wire header).
pub fn avro_payload(schema: &Schema, value: Avro) -> Vec<u8> {
    let avro = schema.avro_schema().expect("an Avro schema");
    let names = ResolvedSchema::new(avro).expect("names resolve");
    let value = value.resolve_with_names(avro, names.get_names()).expect("value fits the schema");
    let writer =
        GenericDatumWriter::builder(avro).resolved_schemata(names).build().expect("writer builds");
    writer.write_value_to_vec(value).expect("value encodes")
}

pub fn record(fields: Vec<(&str, Avro)>) -> Avro {
    Avro::Record(fields.into_iter().map(|(name, value)| (name.to_owned(), value)).collect())
}

/// Two orders: every field set (the first branch of each union that is not null), and the
/// optional ones null with the other union branch.
pub fn avro_orders(schema: &Schema) -> [Vec<u8>; 2] {
    let customer = |name: &str| {
        record(vec![("name", Avro::String(name.into())), ("vip", Avro::Boolean(true))])
    };
    let full = record(vec![
        ("id", Avro::Long(7)),
        ("note", Avro::Union(1, Box::new(Avro::String("fragile".into())))),
        ("customer", customer("Ann")),
        ("referrer", Avro::Union(1, Box::new(customer("Bob")))),
        ("tags", Avro::Array(vec![Avro::String("a".into()), Avro::String("b".into())])),
        (
            "attributes",
            Avro::Map([("y".to_owned(), Avro::Int(2)), ("x".to_owned(), Avro::Int(1))].into()),
        ),
        ("status", Avro::Enum(1, "PAID".into())),
        ("placed", Avro::TimestampMillis(1_700_000_000_123)),
        ("placed_us", Avro::TimestampMicros(1_700_000_000_123_456)),
        ("day", Avro::Date(19_723)),
        ("amount", Avro::Decimal(vec![0, 0, 0, 0x30, 0x39].into())),
        ("amount_fixed", Avro::Decimal((-5i64).to_be_bytes().to_vec().into())),
        ("uid", Avro::String("6f1c2a52-3b4d-4e5f-8a9b-0c1d2e3f4a5b".into())),
        ("hash", Avro::Fixed(4, vec![0xde, 0xad, 0xbe, 0xef])),
        ("choice", Avro::Union(1, Box::new(Avro::Int(42)))),
        ("ratio", Avro::Double(0.5)),
    ]);
    let sparse = record(vec![
        ("id", Avro::Long(8)),
        ("note", Avro::Union(0, Box::new(Avro::Null))),
        ("customer", customer("Cy")),
        ("referrer", Avro::Union(0, Box::new(Avro::Null))),
        ("tags", Avro::Array(Vec::new())),
        ("attributes", Avro::Map(Default::default())),
        ("status", Avro::Enum(0, "NEW".into())),
        ("placed", Avro::TimestampMillis(0)),
        ("placed_us", Avro::TimestampMicros(-1)),
        ("day", Avro::Date(-1)),
        ("amount", Avro::Decimal(vec![0xff; 5].into())),
        ("amount_fixed", Avro::Decimal(0i64.to_be_bytes().to_vec().into())),
        ("uid", Avro::String("00000000-0000-0000-0000-000000000000".into())),
        ("hash", Avro::Fixed(4, vec![0, 0, 0, 1])),
        ("choice", Avro::Union(2, Box::new(Avro::String("many".into())))),
        ("ratio", Avro::Double(-2.0)),
    ]);
    [avro_payload(schema, full), avro_payload(schema, sparse)]
}
