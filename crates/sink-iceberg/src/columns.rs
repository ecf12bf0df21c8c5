//! A commit's Parquet file as an Iceberg data file: its columns as Iceberg types, the columns
//! a table lacks, and the file rewritten with the table's field ids.
//!
//! Iceberg readers find a file's columns by field id, and the ids are the table's: assigned
//! when the table is created (iceberg renumbers whatever it is given) and when columns are
//! added. skiff-sink numbers a file's fields by the schema alone (docs/tables.md, "Field ids"),
//! so a file is rewritten here with the table's ids, matching columns by name. On the way the
//! values take the types Iceberg has: milliseconds and nanoseconds become microseconds
//! (Iceberg v2 tables have no other timestamp or time unit), binary becomes Arrow's large
//! binary, as iceberg reads it.
//!
//! Every column is optional in the table: a later schema version may make a field nullable,
//! and Iceberg has no cheap way back; map keys are required, as Iceberg wants.

use std::collections::HashMap;
use std::sync::Arc;

use arrow_array::{Array, ArrayRef, ListArray, MapArray, RecordBatch, StructArray};
use arrow_schema::{DataType, Field, FieldRef, Fields, Schema as ArrowSchema, TimeUnit};
use bytes::Bytes;
use iceberg::arrow::type_to_arrow_type;
use iceberg::spec::{
    ListType, MapType, NestedField, NestedFieldRef, PrimitiveType, Schema, StructType, Type,
};
use iceberg::transaction::AddColumn;
use parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;
use parquet::basic::{Compression, ZstdLevel};
use parquet::file::metadata::KeyValue;
use parquet::file::properties::WriterProperties;
use skiff_sink::SinkError;

/// The key iceberg and Parquet keep a field id under in Arrow metadata.
const FIELD_ID: &str = "PARQUET:field_id";

/// One commit's file, decoded.
pub(crate) struct FileRows {
    pub(crate) schema: Arc<ArrowSchema>,
    pub(crate) batches: Vec<RecordBatch>,
    /// The file's key-value metadata (the commit facts), carried into the rewritten file.
    pub(crate) metadata: Vec<KeyValue>,
}

/// Decodes a Parquet file skiff-sink wrote.
pub(crate) fn read(bytes: &Bytes) -> Result<FileRows, SinkError> {
    let builder = ParquetRecordBatchReaderBuilder::try_new(bytes.clone()).map_err(parquet_error)?;
    let metadata =
        builder.metadata().file_metadata().key_value_metadata().cloned().unwrap_or_default();
    let schema = builder.schema().clone();
    let reader = builder.build().map_err(parquet_error)?;
    let batches =
        reader.collect::<Result<Vec<_>, _>>().map_err(|e| SinkError::Arrow(e.to_string()))?;
    Ok(FileRows { schema, batches, metadata })
}

/// The Iceberg schema of a file's columns, for a new table (iceberg renumbers the ids).
pub(crate) fn table_schema(file: &ArrowSchema) -> Result<Schema, SinkError> {
    let mut next_id = 0;
    let fields = fields_of(file.fields(), &mut next_id)?;
    Schema::builder().with_fields(fields).build().map_err(iceberg_error)
}

/// The columns of `file` that `table` lacks, as additions (nested ones under their parent);
/// a column whose type differs from the table's is refused.
pub(crate) fn missing_columns(
    table: &Schema,
    file: &ArrowSchema,
) -> Result<Vec<AddColumn>, SinkError> {
    let mut additions = Vec::new();
    let top = table.as_struct();
    missing_in(top, file.fields(), None, &mut additions)?;
    Ok(additions)
}

fn missing_in(
    table: &StructType,
    file: &Fields,
    parent: Option<&str>,
    additions: &mut Vec<AddColumn>,
) -> Result<(), SinkError> {
    for field in file {
        let path = match parent {
            Some(parent) => format!("{parent}.{}", field.name()),
            None => field.name().clone(),
        };
        let Some(existing) = table.field_by_name(field.name()) else {
            let field_type = type_of(field.data_type(), &mut 0)?;
            let addition = match parent {
                Some(parent) => AddColumn::builder()
                    .parent(parent.to_owned())
                    .name(field.name().clone())
                    .field_type(field_type)
                    .build(),
                None => AddColumn::optional(field.name(), field_type),
            };
            additions.push(addition);
            continue;
        };
        match (existing.field_type.as_ref(), field.data_type()) {
            (Type::Struct(inner), DataType::Struct(children)) => {
                missing_in(inner, children, Some(&path), additions)?
            }
            (Type::List(list), DataType::List(item)) => {
                if let (Type::Struct(inner), DataType::Struct(children)) =
                    (list.element_field.field_type.as_ref(), item.data_type())
                {
                    missing_in(inner, children, Some(&format!("{path}.element")), additions)?;
                }
            }
            (Type::Map(map), DataType::Map(entries, _)) => {
                if let (Type::Struct(inner), Some(DataType::Struct(children))) = (
                    map.value_field.field_type.as_ref(),
                    map_value(entries).map(|value| value.data_type()),
                ) {
                    missing_in(inner, children, Some(&path), additions)?;
                }
            }
            (existing_type, data_type) => {
                let wanted = type_of(data_type, &mut 0)?;
                if !same_shape(existing_type, &wanted) {
                    return Err(schema_error(
                        &path,
                        format!(
                            "{existing_type} in the Iceberg table but {wanted} in the new \
                             schema: a column's type cannot change"
                        ),
                    ));
                }
            }
        }
    }
    Ok(())
}

/// Whether two types are the same up to field ids.
fn same_shape(a: &Type, b: &Type) -> bool {
    match (a, b) {
        (Type::Primitive(a), Type::Primitive(b)) => a == b,
        (Type::Struct(_), Type::Struct(_))
        | (Type::List(_), Type::List(_))
        | (Type::Map(_), Type::Map(_)) => true,
        _ => false,
    }
}

/// The Iceberg fields of Arrow fields, numbered from `next_id + 1` (placeholders: iceberg
/// assigns the table's own).
fn fields_of(fields: &Fields, next_id: &mut i32) -> Result<Vec<NestedFieldRef>, SinkError> {
    fields
        .iter()
        .map(|field| {
            *next_id += 1;
            let id = *next_id;
            let field_type = type_of(field.data_type(), next_id)?;
            Ok(Arc::new(NestedField::optional(id, field.name().clone(), field_type)))
        })
        .collect()
}

/// The Iceberg type of an Arrow type skiff-sink writes.
fn type_of(data_type: &DataType, next_id: &mut i32) -> Result<Type, SinkError> {
    let primitive = match data_type {
        DataType::Boolean => PrimitiveType::Boolean,
        DataType::Int32 => PrimitiveType::Int,
        DataType::Int64 => PrimitiveType::Long,
        DataType::Float32 => PrimitiveType::Float,
        DataType::Float64 => PrimitiveType::Double,
        DataType::Decimal128(precision, scale) => PrimitiveType::Decimal {
            precision: u32::from(*precision),
            scale: u32::try_from(*scale).map_err(|_| unsupported(data_type))?,
        },
        DataType::Date32 => PrimitiveType::Date,
        DataType::Time32(TimeUnit::Millisecond) | DataType::Time64(TimeUnit::Microsecond) => {
            PrimitiveType::Time
        }
        DataType::Timestamp(_, Some(_)) => PrimitiveType::Timestamptz,
        DataType::Timestamp(_, None) => PrimitiveType::Timestamp,
        DataType::Utf8 => PrimitiveType::String,
        DataType::Binary => PrimitiveType::Binary,
        DataType::FixedSizeBinary(size) => {
            PrimitiveType::Fixed(u64::try_from(*size).map_err(|_| unsupported(data_type))?)
        }
        DataType::Struct(fields) => {
            return Ok(Type::Struct(StructType::new(fields_of(fields, next_id)?)))
        }
        DataType::List(item) => {
            *next_id += 1;
            let id = *next_id;
            let element = type_of(item.data_type(), next_id)?;
            return Ok(Type::List(ListType::new(Arc::new(NestedField::list_element(
                id, element, false,
            )))));
        }
        DataType::Map(entries, _) => {
            let (Some(key), Some(value)) = (map_key(entries), map_value(entries)) else {
                return Err(unsupported(data_type));
            };
            *next_id += 1;
            let key_id = *next_id;
            let key_type = type_of(key.data_type(), next_id)?;
            *next_id += 1;
            let value_id = *next_id;
            let value_type = type_of(value.data_type(), next_id)?;
            return Ok(Type::Map(MapType::new(
                Arc::new(NestedField::map_key_element(key_id, key_type)),
                Arc::new(NestedField::map_value_element(value_id, value_type, false)),
            )));
        }
        _ => return Err(unsupported(data_type)),
    };
    Ok(Type::Primitive(primitive))
}

fn map_key(entries: &FieldRef) -> Option<&FieldRef> {
    match entries.data_type() {
        DataType::Struct(fields) => fields.first(),
        _ => None,
    }
}

fn map_value(entries: &FieldRef) -> Option<&FieldRef> {
    match entries.data_type() {
        DataType::Struct(fields) => fields.get(1),
        _ => None,
    }
}

/// The file's rows as the table's columns: every column of the table's schema in its order
/// (one the file lacks, from before a schema change, all null), with the table's field ids and
/// Iceberg's Arrow types. Partition values are computed on these batches by position, and
/// readers get files of one shape.
pub(crate) fn to_table(rows: &FileRows, table: &Schema) -> Result<Vec<RecordBatch>, SinkError> {
    let mut fields = Vec::with_capacity(table.as_struct().fields().len());
    let mut columns: Vec<Vec<ArrayRef>> = vec![Vec::new(); rows.batches.len()];
    for table_field in table.as_struct().fields() {
        let in_file = rows.schema.index_of(&table_field.name).ok();
        // As the values come out of `convert`; the table's own when the file lacks the column.
        let mut field = target_field(table_field)?;
        for (batch, out) in rows.batches.iter().zip(columns.iter_mut()) {
            out.push(match in_file {
                Some(index) => {
                    let (array, converted) = convert(batch.column(index), table_field)?;
                    field = converted;
                    array
                }
                None => arrow_array::new_null_array(field.data_type(), batch.num_rows()),
            });
        }
        fields.push(field);
    }
    let schema = Arc::new(ArrowSchema::new(fields));
    let batches = columns
        .into_iter()
        .map(|arrays| {
            RecordBatch::try_new(schema.clone(), arrays)
                .map_err(|e| SinkError::Arrow(e.to_string()))
        })
        .collect::<Result<Vec<_>, _>>()?;
    Ok(batches)
}

/// How data files are written: zstd, with the commit's key-value metadata of the original.
pub(crate) fn writer_properties(rows: &FileRows) -> WriterProperties {
    WriterProperties::builder()
        .set_compression(Compression::ZSTD(ZstdLevel::default()))
        .set_key_value_metadata(Some(rows.metadata.clone()))
        .build()
}

/// The Arrow field a table field is written as when no row shows it (an empty file).
fn target_field(field: &NestedField) -> Result<FieldRef, SinkError> {
    let data_type = type_to_arrow_type(&field.field_type).map_err(iceberg_error)?;
    Ok(Arc::new(with_id(Field::new(&field.name, data_type, !field.required), field.id)))
}

fn with_id(field: Field, id: i32) -> Field {
    field.with_metadata(HashMap::from([(FIELD_ID.to_owned(), id.to_string())]))
}

/// One column's values as the table field's type, and the Arrow field they are written as.
fn convert(array: &ArrayRef, field: &NestedField) -> Result<(ArrayRef, FieldRef), SinkError> {
    let nullable = !field.required;
    let (values, data_type): (ArrayRef, DataType) = match field.field_type.as_ref() {
        Type::Struct(table) => {
            let array = downcast::<StructArray>(array, &field.name)?;
            let DataType::Struct(children) = array.data_type() else {
                return Err(mismatch(&field.name));
            };
            let mut fields = Vec::with_capacity(table.fields().len());
            let mut arrays = Vec::with_capacity(table.fields().len());
            for table_child in table.fields() {
                let position = children.iter().position(|c| c.name() == &table_child.name);
                let (values, converted) = match position {
                    Some(at) => convert(array.column(at), table_child)?,
                    None => {
                        let target = target_field(table_child)?;
                        (arrow_array::new_null_array(target.data_type(), array.len()), target)
                    }
                };
                fields.push(converted);
                arrays.push(values);
            }
            let fields = Fields::from(fields);
            let values = StructArray::try_new(fields.clone(), arrays, array.nulls().cloned())
                .map_err(|e| SinkError::Arrow(e.to_string()))?;
            (Arc::new(values), DataType::Struct(fields))
        }
        Type::List(list) => {
            let array = downcast::<ListArray>(array, &field.name)?;
            let (values, element) = convert(array.values(), &list.element_field)?;
            let values = ListArray::try_new(
                element.clone(),
                array.offsets().clone(),
                values,
                array.nulls().cloned(),
            )
            .map_err(|e| SinkError::Arrow(e.to_string()))?;
            (Arc::new(values), DataType::List(element))
        }
        Type::Map(map) => {
            let array = downcast::<MapArray>(array, &field.name)?;
            let (keys, key_field) = convert(array.keys(), &map.key_field)?;
            let (values, value_field) = convert(array.values(), &map.value_field)?;
            let entry_fields = Fields::from(vec![key_field, value_field]);
            let entries = StructArray::try_new(entry_fields.clone(), vec![keys, values], None)
                .map_err(|e| SinkError::Arrow(e.to_string()))?;
            let entries_field =
                Arc::new(Field::new("key_value", DataType::Struct(entry_fields), false));
            let values = MapArray::try_new(
                entries_field.clone(),
                array.offsets().clone(),
                entries,
                array.nulls().cloned(),
                false,
            )
            .map_err(|e| SinkError::Arrow(e.to_string()))?;
            (Arc::new(values), DataType::Map(entries_field, false))
        }
        Type::Primitive(_) => {
            let target = type_to_arrow_type(&field.field_type).map_err(iceberg_error)?;
            let values = if *array.data_type() == target {
                array.clone()
            } else {
                arrow_cast::cast(array, &target).map_err(|e| SinkError::Arrow(e.to_string()))?
            };
            (values, target)
        }
    };
    Ok((values, Arc::new(with_id(Field::new(&field.name, data_type, nullable), field.id))))
}

fn downcast<'a, T: 'static>(array: &'a ArrayRef, name: &str) -> Result<&'a T, SinkError> {
    array.as_any().downcast_ref::<T>().ok_or_else(|| mismatch(name))
}

fn mismatch(name: &str) -> SinkError {
    schema_error(name, "the column does not have the Iceberg table's shape")
}

fn unsupported(data_type: &DataType) -> SinkError {
    schema_error("", format!("{data_type} has no Iceberg type"))
}

fn schema_error(path: &str, reason: impl Into<String>) -> SinkError {
    SinkError::UnsupportedSchema { path: path.to_owned(), reason: reason.into() }
}

fn parquet_error(error: parquet::errors::ParquetError) -> SinkError {
    SinkError::Parquet(error.to_string())
}

pub(crate) fn iceberg_error(error: iceberg::Error) -> SinkError {
    SinkError::Store(format!("iceberg: {error}"))
}
