//! `skiff.table.partition.by` as an Iceberg partition spec, and a commit's rows split into one
//! data file per partition value (Iceberg's hidden partitioning: readers filter on the source
//! column, `_timestamp`, and prune files by the manifests' partition values).

use std::collections::HashMap;

use arrow_array::RecordBatch;
use iceberg::arrow::RecordBatchPartitionSplitter;
use iceberg::spec::{
    PartitionSpec, PartitionSpecRef, Schema, SchemaRef, Struct, Transform, UnboundPartitionSpec,
};
use skiff_sink::table::partition_by::{self, PartitionBy};
use skiff_sink::SinkError;

use crate::columns::iceberg_error;

/// The spec `partition_by` asks for, with the source ids of `schema` (a table's current
/// schema, or the schema a table is created with).
pub(crate) fn unbound_spec(
    partition_by: &PartitionBy,
    schema: &Schema,
) -> Result<UnboundPartitionSpec, SinkError> {
    let mut spec = UnboundPartitionSpec::builder();
    for field in partition_by.fields() {
        let source =
            schema.field_by_name(&field.column).ok_or_else(|| SinkError::UnsupportedSchema {
                path: field.column.clone(),
                reason: format!("partition by {field}: the Iceberg table has no such column"),
            })?;
        spec = spec
            .add_partition_field(source.id, field.name(), transform(field.transform))
            .map_err(iceberg_error)?;
    }
    Ok(spec.build())
}

fn transform(transform: partition_by::Transform) -> Transform {
    use partition_by::Transform as Skiff;
    match transform {
        Skiff::Identity => Transform::Identity,
        Skiff::Year => Transform::Year,
        Skiff::Month => Transform::Month,
        Skiff::Day => Transform::Day,
        Skiff::Hour => Transform::Hour,
        Skiff::Bucket(n) => Transform::Bucket(n),
        Skiff::Truncate(w) => Transform::Truncate(w),
    }
}

/// Whether a table's spec already partitions as `wanted` does (same sources, transforms and
/// names, in order); if not, the table's spec is evolved before appending.
pub(crate) fn same_spec(table: &PartitionSpec, wanted: &UnboundPartitionSpec) -> bool {
    let table = table.fields().iter().map(|f| (f.source_id, f.transform, f.name.as_str()));
    let wanted = wanted.fields().iter().map(|f| (f.source_id, f.transform, f.name.as_str()));
    table.eq(wanted)
}

/// One data file's worth of rows: those of one partition value.
pub(crate) struct Part {
    /// The partition value (empty for an unpartitioned table).
    pub(crate) value: Struct,
    /// Where the file goes under `data/`: `<field>=<value>/...`, empty when unpartitioned.
    pub(crate) path: String,
    pub(crate) batches: Vec<RecordBatch>,
}

/// Splits rows (in the table schema's column order, as [`crate::columns::to_table`] makes them)
/// by `spec`'s partition values, in the order values first appear.
pub(crate) fn split(
    batches: Vec<RecordBatch>,
    schema: &SchemaRef,
    spec: &PartitionSpecRef,
) -> Result<Vec<Part>, SinkError> {
    if spec.is_unpartitioned() {
        return Ok(vec![Part { value: Struct::empty(), path: String::new(), batches }]);
    }
    let splitter =
        RecordBatchPartitionSplitter::try_new_with_computed_values(schema.clone(), spec.clone())
            .map_err(iceberg_error)?;
    let partition_type = spec.partition_type(schema).map_err(iceberg_error)?;
    let mut parts: Vec<Part> = Vec::new();
    let mut index: HashMap<Struct, usize> = HashMap::new();
    for batch in &batches {
        for (key, rows) in splitter.split(batch).map_err(iceberg_error)? {
            let value = key.data().clone();
            match index.get(&value) {
                Some(&at) => parts[at].batches.push(rows),
                None => {
                    let path = path_of(spec, &partition_type, &value);
                    index.insert(value.clone(), parts.len());
                    parts.push(Part { value, path, batches: vec![rows] });
                }
            }
        }
    }
    Ok(parts)
}

/// `<name>=<value>/...` with each value as Iceberg shows it (`2026-12-06`, `3`), escaped so
/// that no value adds a directory level or a character object stores dislike.
fn path_of(
    spec: &PartitionSpec,
    partition_type: &iceberg::spec::StructType,
    value: &Struct,
) -> String {
    let mut path = Vec::with_capacity(spec.fields().len());
    for (position, field) in spec.fields().iter().enumerate() {
        let literal = value.fields().get(position).and_then(Option::as_ref);
        let shown = match partition_type.fields().get(position) {
            Some(typed) => field.transform.to_human_string(&typed.field_type, literal),
            None => "null".to_owned(),
        };
        path.push(format!("{}={}", escape(&field.name), escape(&shown)));
    }
    path.join("/")
}

/// Percent-escapes all but letters, digits, `-`, `_` and `.` (and a lone `.` or `..`).
fn escape(text: &str) -> String {
    if text == "." || text == ".." {
        return text.replace('.', "%2E");
    }
    let mut escaped = String::with_capacity(text.len());
    for byte in text.bytes() {
        if byte.is_ascii_alphanumeric() || matches!(byte, b'-' | b'_' | b'.') {
            escaped.push(char::from(byte));
        } else {
            escaped.push_str(&format!("%{byte:02X}"));
        }
    }
    escaped
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn partition_values_never_make_paths_of_their_own() {
        assert_eq!(escape("2026-12-06"), "2026-12-06");
        assert_eq!(escape("a/b c"), "a%2Fb%20c");
        assert_eq!(escape(".."), "%2E%2E");
        assert_eq!(escape("é"), "%C3%A9");
    }
}
