//! What a committed Parquet file says about itself, read with deltalake's own parquet and arrow
//! (not skiff-sink's: the two arrow versions never meet, DESIGN 10.6): its columns as a Delta
//! schema, its row count and column statistics for the Add action, and its commit facts.

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;

use bytes::Bytes;
use deltalake::arrow::datatypes::{DataType, Field, Fields, Schema};
use deltalake::kernel::engine::arrow_conversion::TryIntoKernel;
use deltalake::kernel::StructType;
use deltalake::parquet::arrow::parquet_to_arrow_schema;
use deltalake::parquet::file::metadata::{ParquetMetaData, ParquetMetaDataReader};
use deltalake::parquet::file::statistics::Statistics;
use serde_json::{json, Map, Value};
use skiff_sink::SinkError;

/// A Parquet file as the Delta table needs it.
#[derive(Debug)]
pub(crate) struct FileSummary {
    /// The file's columns as a Delta schema (field ids and other field metadata dropped).
    pub(crate) schema: StructType,
    /// The file's key-value metadata: the commit facts (`skiff.*` keys).
    pub(crate) facts: BTreeMap<String, String>,
    /// The Add action's `stats`: row count, and min, max and null count of the top-level
    /// integer columns (`_partition`, `_offset`, ...), so readers skip files by offset.
    pub(crate) stats: String,
}

/// Reads the footer of a Parquet file held in memory.
pub(crate) fn summarize(bytes: &Bytes) -> Result<FileSummary, SinkError> {
    let parsed = ParquetMetaDataReader::new().parse_and_finish(bytes).map_err(parquet_error)?;
    let file = parsed.file_metadata();
    let arrow = parquet_to_arrow_schema(file.schema_descr(), file.key_value_metadata())
        .map_err(parquet_error)?;
    let schema = delta_schema(&arrow)?;
    let facts = file
        .key_value_metadata()
        .map(|pairs| {
            pairs.iter().filter_map(|pair| Some((pair.key.clone(), pair.value.clone()?))).collect()
        })
        .unwrap_or_default();
    Ok(FileSummary { schema, facts, stats: stats(&parsed).to_string() })
}

/// The Delta schema of Arrow columns. Field metadata is dropped first: the `PARQUET:field_id`s
/// skiff-sink assigns are positional (a column added in the middle shifts the ids after it),
/// and Delta would keep them as `parquet.field.id`, which schema merges then refuse to change.
fn delta_schema(arrow: &Schema) -> Result<StructType, SinkError> {
    let bare =
        Schema::new(arrow.fields().iter().map(|field| bare_field(field)).collect::<Vec<_>>());
    (&bare).try_into_kernel().map_err(|e| SinkError::UnsupportedSchema {
        path: String::new(),
        reason: format!("no Delta Lake type: {e}"),
    })
}

/// `field` and its children without metadata.
fn bare_field(field: &Field) -> Field {
    Field::new(field.name(), bare_type(field.data_type()), field.is_nullable())
}

fn bare_type(data_type: &DataType) -> DataType {
    let child = |field: &Arc<Field>| Arc::new(bare_field(field));
    match data_type {
        DataType::Struct(fields) => {
            DataType::Struct(Fields::from(fields.iter().map(|f| bare_field(f)).collect::<Vec<_>>()))
        }
        DataType::List(item) => DataType::List(child(item)),
        DataType::LargeList(item) => DataType::LargeList(child(item)),
        DataType::FixedSizeList(item, size) => DataType::FixedSizeList(child(item), *size),
        DataType::Map(entries, sorted) => DataType::Map(child(entries), *sorted),
        other => other.clone(),
    }
}

/// Delta's per-file statistics (`numRecords`, `minValues`, `maxValues`, `nullCount`) from the
/// row groups' statistics. Only top-level Int32 and Int64 columns get bounds: their JSON form
/// is unambiguous, which is not true of timestamps (units) or binary columns.
fn stats(parsed: &ParquetMetaData) -> Value {
    let rows: i64 = parsed.row_groups().iter().map(|group| group.num_rows()).sum();
    let mut min = Map::new();
    let mut max = Map::new();
    let mut nulls = Map::new();
    for (name, bounds) in integer_bounds(parsed) {
        let Some(bounds) = bounds else { continue };
        min.insert(name.clone(), json!(bounds.min));
        max.insert(name.clone(), json!(bounds.max));
        nulls.insert(name, json!(bounds.nulls));
    }
    json!({ "numRecords": rows, "minValues": min, "maxValues": max, "nullCount": nulls })
}

/// Bounds of one column over the whole file.
#[derive(Debug, Clone, Copy)]
struct Bounds {
    min: i64,
    max: i64,
    nulls: u64,
}

/// Per top-level integer column, its bounds, or `None` if a row group lacks them.
fn integer_bounds(parsed: &ParquetMetaData) -> HashMap<String, Option<Bounds>> {
    let mut columns: HashMap<String, Option<Bounds>> = HashMap::new();
    for group in parsed.row_groups() {
        for chunk in group.columns() {
            let descr = chunk.column_descr();
            let [name] = descr.path().parts() else { continue };
            if descr.logical_type_ref().is_some() && !is_plain_integer(descr) {
                continue;
            }
            let found = chunk.statistics().and_then(integer_stats);
            let Some(found) = found else {
                if matches!(chunk.statistics(), Some(Statistics::Int32(_) | Statistics::Int64(_))) {
                    columns.insert(name.clone(), None);
                }
                continue;
            };
            let merged = match columns.get(name) {
                None => Some(found),
                Some(None) => None,
                Some(Some(so_far)) => Some(Bounds {
                    min: so_far.min.min(found.min),
                    max: so_far.max.max(found.max),
                    nulls: so_far.nulls + found.nulls,
                }),
            };
            columns.insert(name.clone(), merged);
        }
    }
    columns
}

/// Whether a column with a logical type is still a plain signed integer (`INT(32, true)`).
fn is_plain_integer(descr: &deltalake::parquet::schema::types::ColumnDescriptor) -> bool {
    use deltalake::parquet::basic::LogicalType;
    matches!(descr.logical_type_ref(), Some(LogicalType::Integer(int)) if int.is_signed)
}

fn integer_stats(statistics: &Statistics) -> Option<Bounds> {
    let nulls = statistics.null_count_opt()?;
    match statistics {
        Statistics::Int32(values) => Some(Bounds {
            min: i64::from(*values.min_opt()?),
            max: i64::from(*values.max_opt()?),
            nulls,
        }),
        Statistics::Int64(values) => {
            Some(Bounds { min: *values.min_opt()?, max: *values.max_opt()?, nulls })
        }
        _ => None,
    }
}

fn parquet_error(error: deltalake::parquet::errors::ParquetError) -> SinkError {
    SinkError::Parquet(error.to_string())
}
