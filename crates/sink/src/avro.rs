//! Avro: the parsed schema (from `skiff-schema`) onto Arrow fields, and `apache-avro` values
//! (decoded by `skiff-schema` with its limits) into the columns.

use std::collections::HashMap;

use apache_avro::schema::{Name, RecordSchema, UnionSchema, UuidSchema};
use apache_avro::types::Value;
use apache_avro::Schema as Avro;
use arrow_schema::{DataType, Field, Fields, TimeUnit};
use skiff_schema::Schema;

use crate::columns::Column;
use crate::{join, list_of, map_of, single_column, SinkError};

/// The value columns of an Avro schema.
pub(crate) struct AvroColumns {
    /// The top-level schema, with `Ref`s resolved through `names`.
    top: Avro,
    /// Every named type of the schema by full name: later uses of a type are `Ref`s to it.
    names: HashMap<String, Avro>,
    /// One column per record field (true), or the one `value` column.
    per_field: bool,
}

impl AvroColumns {
    pub(crate) fn new(schema: &Schema) -> Result<(AvroColumns, Vec<Field>), SinkError> {
        let top = schema
            .avro_schema()
            .ok_or_else(|| SinkError::unsupported("", "not an Avro schema"))?
            .clone();
        let mut names = HashMap::new();
        collect_names(&top, &mut names);
        let columns = AvroColumns { top, names, per_field: false };
        let mut stack = Vec::new();
        let (fields, per_field) = match columns.resolve(&columns.top)? {
            Avro::Record(record) => (columns.record_fields(record, "", &mut stack)?, true),
            other => {
                let (data_type, nullable) = columns.data_type(other, "value", &mut stack)?;
                (vec![Field::new("value", data_type, nullable)], false)
            }
        };
        Ok((AvroColumns { per_field, ..columns }, fields))
    }

    pub(crate) fn decode(&self, schema: &Schema, payload: &[u8]) -> Result<Value, SinkError> {
        schema.decode_avro(payload).map_err(|e| SinkError::Decode(e.to_string()))
    }

    pub(crate) fn push(&self, value: &Value, columns: &mut [Column]) -> Result<(), SinkError> {
        let top = self.resolve(&self.top)?;
        if !self.per_field {
            return self.push_value(top, value, single_column(columns)?);
        }
        let (Avro::Record(record), Value::Record(values)) = (top, value) else {
            return Err(SinkError::Mismatch {
                path: String::new(),
                reason: "the value is not a record".to_owned(),
            });
        };
        self.push_record(record, values, columns)
    }

    fn resolve<'s>(&'s self, schema: &'s Avro) -> Result<&'s Avro, SinkError> {
        match schema {
            Avro::Ref { name } => self.names.get(&full_name(name)).ok_or_else(|| {
                SinkError::unsupported("", format!("unknown named type `{}`", full_name(name)))
            }),
            other => Ok(other),
        }
    }

    fn record_fields(
        &self,
        record: &RecordSchema,
        path: &str,
        stack: &mut Vec<String>,
    ) -> Result<Vec<Field>, SinkError> {
        let name = full_name(&record.name);
        if stack.contains(&name) {
            return Err(SinkError::unsupported(
                path,
                format!("record `{name}` contains itself: recursive types have no columns"),
            ));
        }
        stack.push(name);
        let mut fields = Vec::with_capacity(record.fields.len());
        for field in &record.fields {
            let field_path = join(path, &field.name);
            let (data_type, nullable) = self.data_type(&field.schema, &field_path, stack)?;
            fields.push(Field::new(&field.name, data_type, nullable));
        }
        stack.pop();
        Ok(fields)
    }

    /// The Arrow type of `schema`, and whether it is nullable (a union with `null`).
    fn data_type(
        &self,
        schema: &Avro,
        path: &str,
        stack: &mut Vec<String>,
    ) -> Result<(DataType, bool), SinkError> {
        let data_type = match self.resolve(schema)? {
            Avro::Null => {
                return Err(SinkError::unsupported(path, "a field of type `null` has no column"))
            }
            Avro::Boolean => DataType::Boolean,
            Avro::Int => DataType::Int32,
            Avro::Long => DataType::Int64,
            Avro::Float => DataType::Float32,
            Avro::Double => DataType::Float64,
            Avro::Bytes => DataType::Binary,
            Avro::String | Avro::Enum(_) | Avro::Uuid(_) => DataType::Utf8,
            Avro::Array(array) => {
                let (item, nullable) = self.data_type(&array.items, &format!("{path}[]"), stack)?;
                list_of(Field::new("element", item, nullable))
            }
            Avro::Map(map) => {
                let (value, nullable) = self.data_type(&map.types, &join(path, "value"), stack)?;
                map_of(DataType::Utf8, value, nullable)
            }
            Avro::Union(union) => return self.union_type(union, path, stack),
            Avro::Record(record) => {
                DataType::Struct(Fields::from(self.record_fields(record, path, stack)?))
            }
            Avro::Fixed(fixed) => DataType::FixedSizeBinary(fixed_size(fixed.size, path)?),
            Avro::Decimal(decimal) => {
                let precision = u8::try_from(decimal.precision).ok().filter(|&p| p <= 38);
                let scale = i8::try_from(decimal.scale).ok();
                match (precision, scale) {
                    (Some(precision), Some(scale)) => DataType::Decimal128(precision, scale),
                    _ => {
                        return Err(SinkError::unsupported(
                            path,
                            format!(
                                "decimal({}, {}): precisions above 38 have no column yet",
                                decimal.precision, decimal.scale
                            ),
                        ))
                    }
                }
            }
            Avro::BigDecimal => {
                return Err(SinkError::unsupported(path, "big-decimal has no column yet"))
            }
            Avro::Date => DataType::Date32,
            Avro::TimeMillis => DataType::Time32(TimeUnit::Millisecond),
            Avro::TimeMicros => DataType::Time64(TimeUnit::Microsecond),
            Avro::TimestampMillis => DataType::Timestamp(TimeUnit::Millisecond, Some("UTC".into())),
            Avro::TimestampMicros => DataType::Timestamp(TimeUnit::Microsecond, Some("UTC".into())),
            Avro::TimestampNanos => DataType::Timestamp(TimeUnit::Nanosecond, Some("UTC".into())),
            Avro::LocalTimestampMillis => DataType::Timestamp(TimeUnit::Millisecond, None),
            Avro::LocalTimestampMicros => DataType::Timestamp(TimeUnit::Microsecond, None),
            Avro::LocalTimestampNanos => DataType::Timestamp(TimeUnit::Nanosecond, None),
            // Avro's 12 bytes (months, days, milliseconds as little-endian u32s) are Parquet's
            // INTERVAL layout.
            Avro::Duration(_) => DataType::FixedSizeBinary(12),
            Avro::Ref { name } => {
                return Err(SinkError::unsupported(
                    path,
                    format!("unresolved `{}`", full_name(name)),
                ))
            }
        };
        Ok((data_type, false))
    }

    /// `[null, T]` (either order) is a nullable `T`; other unions are a struct with one
    /// nullable field per non-null branch, `member0`, `member1`, ... (as Spark reads them),
    /// exactly one of which is set.
    fn union_type(
        &self,
        union: &UnionSchema,
        path: &str,
        stack: &mut Vec<String>,
    ) -> Result<(DataType, bool), SinkError> {
        let nullable = union.variants().iter().any(|v| matches!(v, Avro::Null));
        let branches: Vec<&Avro> =
            union.variants().iter().filter(|v| !matches!(v, Avro::Null)).collect();
        match branches.as_slice() {
            [] => Err(SinkError::unsupported(path, "a union of only `null` has no column")),
            [single] => {
                let (data_type, inner_nullable) = self.data_type(single, path, stack)?;
                Ok((data_type, nullable || inner_nullable))
            }
            many => {
                let mut fields = Vec::with_capacity(many.len());
                for (i, branch) in many.iter().enumerate() {
                    let name = format!("member{i}");
                    let (data_type, _) = self.data_type(branch, &join(path, &name), stack)?;
                    fields.push(Field::new(name, data_type, true));
                }
                Ok((DataType::Struct(Fields::from(fields)), nullable))
            }
        }
    }

    fn push_record(
        &self,
        record: &RecordSchema,
        values: &[(String, Value)],
        columns: &mut [Column],
    ) -> Result<(), SinkError> {
        if values.len() != record.fields.len() || columns.len() != record.fields.len() {
            return Err(SinkError::Mismatch {
                path: String::new(),
                reason: format!(
                    "record `{}` has {} fields, the value {}",
                    full_name(&record.name),
                    record.fields.len(),
                    values.len()
                ),
            });
        }
        for ((field, (name, value)), column) in record.fields.iter().zip(values).zip(columns) {
            if field.name != *name {
                return Err(SinkError::Mismatch {
                    path: column.path().to_owned(),
                    reason: format!("the value's field is `{name}`"),
                });
            }
            self.push_value(&field.schema, value, column)?;
        }
        Ok(())
    }

    fn push_value(
        &self,
        schema: &Avro,
        value: &Value,
        column: &mut Column,
    ) -> Result<(), SinkError> {
        let schema = self.resolve(schema)?;
        match (schema, value) {
            (Avro::Union(union), Value::Union(index, inner)) => {
                self.push_union(union, *index, inner, column)
            }
            (_, Value::Union(_, inner)) => self.push_value(schema, inner, column),
            (_, Value::Null) => column.push_null(),
            (Avro::Boolean, Value::Boolean(v)) => column.push_bool(*v),
            (Avro::Int, Value::Int(v))
            | (Avro::Date, Value::Date(v))
            | (Avro::TimeMillis, Value::TimeMillis(v)) => column.push_i32(*v),
            (Avro::Long, Value::Long(v))
            | (Avro::TimeMicros, Value::TimeMicros(v))
            | (Avro::TimestampMillis, Value::TimestampMillis(v))
            | (Avro::TimestampMicros, Value::TimestampMicros(v))
            | (Avro::TimestampNanos, Value::TimestampNanos(v))
            | (Avro::LocalTimestampMillis, Value::LocalTimestampMillis(v))
            | (Avro::LocalTimestampMicros, Value::LocalTimestampMicros(v))
            | (Avro::LocalTimestampNanos, Value::LocalTimestampNanos(v)) => column.push_i64(*v),
            (Avro::Float, Value::Float(v)) => column.push_f32(*v),
            (Avro::Double, Value::Double(v)) => column.push_f64(*v),
            (Avro::Bytes, Value::Bytes(v)) | (Avro::Fixed(_), Value::Fixed(_, v)) => {
                column.push_bytes(v)
            }
            (Avro::String, Value::String(v)) | (Avro::Enum(_), Value::Enum(_, v)) => {
                column.push_str(v)
            }
            (Avro::Uuid(_), Value::Uuid(v)) => column.push_str(&v.to_string()),
            // A uuid on bytes or fixed that the reader left as raw bytes.
            (
                Avro::Uuid(UuidSchema::Bytes | UuidSchema::Fixed(_)),
                Value::Bytes(v) | Value::Fixed(_, v),
            ) => {
                let uuid: [u8; 16] = v
                    .as_slice()
                    .try_into()
                    .map_err(|_| mismatch(column, "a uuid is not 16 bytes"))?;
                column.push_str(&format_uuid(uuid))
            }
            (Avro::Decimal(_), Value::Decimal(v)) => {
                let bytes = Vec::<u8>::try_from(v).map_err(|e| mismatch(column, e.to_string()))?;
                let unscaled = signed_be(&bytes).ok_or_else(|| {
                    mismatch(column, format!("decimal of {} bytes exceeds 128 bits", bytes.len()))
                })?;
                column.push_i128(unscaled)
            }
            (Avro::Duration(_), Value::Duration(v)) => column.push_bytes(&<[u8; 12]>::from(*v)),
            (Avro::Array(array), Value::Array(items)) => {
                let item_column = column.list_items()?;
                for item in items {
                    self.push_value(&array.items, item, item_column)?;
                }
                column.close_list()
            }
            (Avro::Map(map), Value::Map(entries)) => {
                let mut sorted: Vec<_> = entries.iter().collect();
                sorted.sort_by(|a, b| a.0.cmp(b.0));
                let (keys, values) = column.map_entries()?;
                for (key, value) in sorted {
                    keys.push_str(key)?;
                    self.push_value(&map.types, value, values)?;
                }
                column.close_list()
            }
            (Avro::Record(record), Value::Record(values)) => {
                let children = column.push_struct()?;
                self.push_record(record, values, children)
            }
            (schema, value) => Err(mismatch(
                column,
                format!(
                    "a {:?} value does not fit the schema's {:?}",
                    apache_avro::schema::SchemaKind::from(value),
                    apache_avro::schema::SchemaKind::from(schema)
                ),
            )),
        }
    }

    fn push_union(
        &self,
        union: &UnionSchema,
        index: u32,
        value: &Value,
        column: &mut Column,
    ) -> Result<(), SinkError> {
        let branch = usize::try_from(index)
            .ok()
            .and_then(|i| union.variants().get(i))
            .ok_or_else(|| mismatch(column, format!("union branch {index} does not exist")))?;
        if matches!(branch, Avro::Null) {
            return column.push_null();
        }
        let non_null: Vec<&Avro> =
            union.variants().iter().filter(|v| !matches!(v, Avro::Null)).collect();
        if non_null.len() == 1 {
            return self.push_value(branch, value, column);
        }
        let member = union.variants()[..usize::try_from(index).unwrap_or(0)]
            .iter()
            .filter(|v| !matches!(v, Avro::Null))
            .count();
        let members = column.push_struct()?;
        for (i, member_column) in members.iter_mut().enumerate() {
            if i == member {
                self.push_value(branch, value, member_column)?;
            } else {
                member_column.push_null()?;
            }
        }
        Ok(())
    }
}

fn mismatch(column: &Column, reason: impl Into<String>) -> SinkError {
    SinkError::Mismatch { path: column.path().to_owned(), reason: reason.into() }
}

/// Collects every named type defined in `schema` (records, enums, fixed), by full name.
fn collect_names(schema: &Avro, names: &mut HashMap<String, Avro>) {
    match schema {
        Avro::Record(record) => {
            names.insert(full_name(&record.name), schema.clone());
            for field in &record.fields {
                collect_names(&field.schema, names);
            }
        }
        Avro::Enum(enumeration) => {
            names.insert(full_name(&enumeration.name), schema.clone());
        }
        Avro::Fixed(fixed) => {
            names.insert(full_name(&fixed.name), schema.clone());
        }
        Avro::Array(array) => collect_names(&array.items, names),
        Avro::Map(map) => collect_names(&map.types, names),
        Avro::Union(union) => union.variants().iter().for_each(|v| collect_names(v, names)),
        _ => {}
    }
}

fn full_name(name: &Name) -> String {
    name.fullname(None)
}

fn fixed_size(size: usize, path: &str) -> Result<i32, SinkError> {
    i32::try_from(size).map_err(|_| SinkError::unsupported(path, format!("fixed size {size}")))
}

/// Big-endian two's complement bytes as an `i128`, if they fit.
fn signed_be(bytes: &[u8]) -> Option<i128> {
    let negative = bytes.first().is_some_and(|&b| b & 0x80 != 0);
    let fill = if negative { 0xff } else { 0 };
    let significant = bytes.iter().position(|&b| b != fill).map_or(&[][..], |i| &bytes[i..]);
    // One more byte than 16 is fine when it only carries the sign.
    if significant.len() > 16 {
        return None;
    }
    let mut out = [fill; 16];
    out[16 - significant.len()..].copy_from_slice(significant);
    let value = i128::from_be_bytes(out);
    // The sign must survive dropping the fill bytes.
    ((value < 0) == negative).then_some(value)
}

fn format_uuid(bytes: [u8; 16]) -> String {
    let hex: String = bytes.iter().map(|b| format!("{b:02x}")).collect();
    format!("{}-{}-{}-{}-{}", &hex[0..8], &hex[8..12], &hex[12..16], &hex[16..20], &hex[20..32])
}

#[cfg(test)]
mod tests {
    use super::signed_be;

    #[test]
    fn signed_big_endian_bytes() {
        assert_eq!(signed_be(&[0x01, 0x00]), Some(256));
        assert_eq!(signed_be(&[0xff]), Some(-1));
        assert_eq!(signed_be(&[0xff, 0x7f]), Some(-129));
        assert_eq!(signed_be(&[0x00, 0x80]), Some(128));
        assert_eq!(signed_be(&[]), Some(0));
        assert_eq!(signed_be(&[0x01; 17]), None);
        let mut wide = vec![0u8];
        wide.extend_from_slice(&i128::MAX.to_be_bytes());
        assert_eq!(signed_be(&wide), Some(i128::MAX));
    }
}
