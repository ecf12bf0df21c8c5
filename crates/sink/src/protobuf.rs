//! Protobuf: a message descriptor (from `skiff-schema`) onto Arrow fields, and
//! `prost-reflect` dynamic messages into the columns.

use arrow_schema::{DataType, Field, Fields, TimeUnit};
use prost_reflect::{
    Cardinality, DynamicMessage, FieldDescriptor, Kind, MapKey, MessageDescriptor, ReflectMessage,
    Value,
};
use skiff_schema::Schema;

use crate::columns::Column;
use crate::{join, list_of, map_of, SinkError};

const TIMESTAMP: &str = "google.protobuf.Timestamp";

/// The value columns of one message type: one per field, in field-number order.
pub(crate) struct ProtobufColumns {
    message: MessageDescriptor,
}

impl ProtobufColumns {
    pub(crate) fn new(
        schema: &Schema,
        message_indexes: &[i32],
    ) -> Result<(ProtobufColumns, Vec<Field>), SinkError> {
        let message = schema
            .protobuf_message(message_indexes)
            .map_err(|e| SinkError::unsupported("", e.to_string()))?;
        let mut stack = Vec::new();
        let fields = message_fields(&message, "", &mut stack)?;
        Ok((ProtobufColumns { message }, fields))
    }

    pub(crate) fn decode(&self, payload: &[u8]) -> Result<DynamicMessage, SinkError> {
        DynamicMessage::decode(self.message.clone(), payload).map_err(|e| {
            SinkError::Decode(format!("not a valid `{}`: {e}", self.message.full_name()))
        })
    }

    pub(crate) fn push(
        &self,
        message: &DynamicMessage,
        columns: &mut [Column],
    ) -> Result<(), SinkError> {
        push_message(message, columns)
    }
}

fn message_fields(
    message: &MessageDescriptor,
    path: &str,
    stack: &mut Vec<String>,
) -> Result<Vec<Field>, SinkError> {
    let name = message.full_name().to_owned();
    if stack.contains(&name) {
        return Err(SinkError::unsupported(
            path,
            format!("message `{name}` contains itself: recursive types have no columns"),
        ));
    }
    stack.push(name);
    let mut fields = Vec::new();
    for field in message.fields() {
        let field_path = join(path, field.name());
        let (data_type, nullable) = field_type(&field, &field_path, stack)?;
        fields.push(Field::new(field.name(), data_type, nullable));
    }
    stack.pop();
    Ok(fields)
}

/// The column type of a field and whether it is nullable: fields with presence (proto3
/// `optional`, oneof members, message fields, proto2 optional) are; repeated and map fields
/// are never null (empty instead), nor are proto3 scalars (their default instead).
fn field_type(
    field: &FieldDescriptor,
    path: &str,
    stack: &mut Vec<String>,
) -> Result<(DataType, bool), SinkError> {
    if field.is_map() {
        let Kind::Message(entry) = field.kind() else {
            return Err(SinkError::unsupported(path, "a map field without an entry message"));
        };
        let key = entry.map_entry_key_field();
        let value = entry.map_entry_value_field();
        let (key_type, _) = kind_type(&key.kind(), &join(path, "key"), stack)?;
        let (value_type, _) = kind_type(&value.kind(), &join(path, "value"), stack)?;
        return Ok((map_of(key_type, value_type, false), false));
    }
    let (data_type, wrapper) = kind_type(&field.kind(), path, stack)?;
    if field.is_list() {
        return Ok((list_of(Field::new("element", data_type, false)), false));
    }
    let nullable =
        wrapper || (field.supports_presence() && field.cardinality() != Cardinality::Required);
    Ok((data_type, nullable))
}

/// The Arrow type of a kind, and whether it is a wrapper type (`google.protobuf.*Value`,
/// nullable by nature).
fn kind_type(
    kind: &Kind,
    path: &str,
    stack: &mut Vec<String>,
) -> Result<(DataType, bool), SinkError> {
    let data_type = match kind {
        Kind::Double => DataType::Float64,
        Kind::Float => DataType::Float32,
        Kind::Int32 | Kind::Sint32 | Kind::Sfixed32 => DataType::Int32,
        Kind::Int64 | Kind::Sint64 | Kind::Sfixed64 | Kind::Uint32 | Kind::Fixed32 => {
            DataType::Int64
        }
        // Every uint64 fits 20 digits; Int64 would turn the upper half negative.
        Kind::Uint64 | Kind::Fixed64 => DataType::Decimal128(20, 0),
        Kind::Bool => DataType::Boolean,
        Kind::String | Kind::Enum(_) => DataType::Utf8,
        Kind::Bytes => DataType::Binary,
        Kind::Message(message) if message.full_name() == TIMESTAMP => {
            DataType::Timestamp(TimeUnit::Microsecond, Some("UTC".into()))
        }
        Kind::Message(message) => {
            if let Some(inner) = wrapped(message) {
                let (data_type, _) = kind_type(&inner.kind(), path, stack)?;
                return Ok((data_type, true));
            }
            DataType::Struct(Fields::from(message_fields(message, path, stack)?))
        }
    };
    Ok((data_type, false))
}

/// The `value` field of a `google.protobuf.*Value` wrapper message.
fn wrapped(message: &MessageDescriptor) -> Option<FieldDescriptor> {
    let wrapper = matches!(
        message.full_name(),
        "google.protobuf.DoubleValue"
            | "google.protobuf.FloatValue"
            | "google.protobuf.Int64Value"
            | "google.protobuf.UInt64Value"
            | "google.protobuf.Int32Value"
            | "google.protobuf.UInt32Value"
            | "google.protobuf.BoolValue"
            | "google.protobuf.StringValue"
            | "google.protobuf.BytesValue"
    );
    if wrapper {
        message.get_field(1)
    } else {
        None
    }
}

fn push_message(message: &DynamicMessage, columns: &mut [Column]) -> Result<(), SinkError> {
    let descriptor = message.descriptor();
    if descriptor.fields().len() != columns.len() {
        return Err(SinkError::Mismatch {
            path: String::new(),
            reason: format!(
                "message `{}` has {} fields for {} columns",
                descriptor.full_name(),
                descriptor.fields().len(),
                columns.len()
            ),
        });
    }
    for (field, column) in descriptor.fields().zip(columns) {
        let nullable = !field.is_list()
            && !field.is_map()
            && ((field.supports_presence() && field.cardinality() != Cardinality::Required)
                || matches!(field.kind(), Kind::Message(ref m) if wrapped(m).is_some()));
        if nullable && !message.has_field(&field) {
            column.push_null()?;
            continue;
        }
        let value = message.get_field(&field);
        if field.is_map() {
            push_map(&field, &value, column)?;
        } else if field.is_list() {
            let Value::List(items) = value.as_ref() else {
                return Err(mismatch(column, "a repeated field's value is not a list"));
            };
            let item_column = column.list_items()?;
            for item in items {
                push_value(&field.kind(), item, item_column)?;
            }
            column.close_list()?;
        } else {
            push_value(&field.kind(), &value, column)?;
        }
    }
    Ok(())
}

fn push_map(field: &FieldDescriptor, value: &Value, column: &mut Column) -> Result<(), SinkError> {
    let (Kind::Message(entry), Value::Map(entries)) = (field.kind(), value) else {
        return Err(mismatch(column, "a map field's value is not a map"));
    };
    let value_kind = entry.map_entry_value_field().kind();
    // Sorted by key: the decoded map has no order, and a file should not depend on hashing.
    let mut sorted: Vec<_> = entries.iter().collect();
    sorted.sort_by(|a, b| a.0.cmp(b.0));
    let (keys, values) = column.map_entries()?;
    for (key, value) in sorted {
        match key {
            MapKey::Bool(v) => keys.push_bool(*v)?,
            MapKey::I32(v) => keys.push_i32(*v)?,
            MapKey::I64(v) => keys.push_i64(*v)?,
            MapKey::U32(v) => keys.push_i64(i64::from(*v))?,
            MapKey::U64(v) => keys.push_i128(i128::from(*v))?,
            MapKey::String(v) => keys.push_str(v)?,
        }
        push_value(&value_kind, value, values)?;
    }
    column.close_list()
}

fn push_value(kind: &Kind, value: &Value, column: &mut Column) -> Result<(), SinkError> {
    match (kind, value) {
        (_, Value::Bool(v)) => column.push_bool(*v),
        (_, Value::I32(v)) => column.push_i32(*v),
        (_, Value::I64(v)) => column.push_i64(*v),
        (_, Value::U32(v)) => column.push_i64(i64::from(*v)),
        (_, Value::U64(v)) => column.push_i128(i128::from(*v)),
        (_, Value::F32(v)) => column.push_f32(*v),
        (_, Value::F64(v)) => column.push_f64(*v),
        (_, Value::String(v)) => column.push_str(v),
        (_, Value::Bytes(v)) => column.push_bytes(v),
        (Kind::Enum(enumeration), Value::EnumNumber(number)) => {
            match enumeration.get_value(*number) {
                Some(symbol) => column.push_str(symbol.name()),
                // An enum value added by a newer schema: its number, so nothing is lost.
                None => column.push_str(&number.to_string()),
            }
        }
        (Kind::Message(descriptor), Value::Message(message)) => {
            if descriptor.full_name() == TIMESTAMP {
                return push_timestamp(message, column);
            }
            if let Some(inner) = wrapped(descriptor) {
                let value = message.get_field(&inner);
                return push_value(&inner.kind(), &value, column);
            }
            let children = column.push_struct()?;
            push_message(message, children)
        }
        _ => Err(mismatch(column, "the value does not fit the field's type")),
    }
}

/// Microseconds since the epoch (nanoseconds below a microsecond are dropped).
fn push_timestamp(message: &DynamicMessage, column: &mut Column) -> Result<(), SinkError> {
    let seconds = match message.get_field_by_number(1).as_deref() {
        Some(Value::I64(seconds)) => *seconds,
        _ => 0,
    };
    let nanos = match message.get_field_by_number(2).as_deref() {
        Some(Value::I32(nanos)) => *nanos,
        _ => 0,
    };
    let micros = seconds
        .checked_mul(1_000_000)
        .and_then(|micros| micros.checked_add(i64::from(nanos) / 1000))
        .ok_or_else(|| mismatch(column, format!("timestamp {seconds} s is out of range")))?;
    column.push_i64(micros)
}

fn mismatch(column: &Column, reason: impl Into<String>) -> SinkError {
    SinkError::Mismatch { path: column.path().to_owned(), reason: reason.into() }
}
