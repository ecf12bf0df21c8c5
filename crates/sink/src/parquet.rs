//! Record batches as one Parquet file in memory: zstd-compressed, with page statistics (min,
//! max, null count per column chunk and page, what readers prune with), the Arrow schema and
//! the field ids embedded, and key-value metadata of the caller's (a table's commit facts).
//! Where the file goes is the table's business ([`crate::table`]).

use std::collections::BTreeMap;

use arrow_array::cast::AsArray;
use arrow_array::types::{Int32Type, Int64Type};
use arrow_array::RecordBatch;
use arrow_schema::SchemaRef;
use parquet::arrow::ArrowWriter;
use parquet::basic::{Compression, ZstdLevel};
use parquet::file::metadata::KeyValue;
use parquet::file::properties::{EnabledStatistics, WriterProperties};

use crate::SinkError;

/// A written Parquet file and what a table commit records about it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ParquetFile {
    /// The file's bytes.
    pub bytes: Vec<u8>,
    /// How many rows it holds.
    pub rows: usize,
    /// The offsets it holds per partition.
    pub partitions: BTreeMap<i32, OffsetRange>,
}

/// The offsets of one partition that a file holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct OffsetRange {
    /// The smallest offset.
    pub min: i64,
    /// The largest offset.
    pub max: i64,
    /// How many rows of the partition the file holds (fewer than `max - min + 1` when
    /// offsets are missing: compacted, aborted or control records).
    pub rows: usize,
}

/// Writes `batches` (each with `schema`, as [`crate::TableSchema::arrow_schema`] gives it) as
/// one Parquet file: zstd at its default level, statistics per page.
pub fn write(schema: &SchemaRef, batches: &[RecordBatch]) -> Result<ParquetFile, SinkError> {
    write_with_metadata(schema, batches, &BTreeMap::new())
}

/// [`write`], with `metadata` stored as the file's key-value metadata (readers show it as
/// `schema.metadata` in pyarrow, `parquet_kv_metadata()` in DuckDB).
pub fn write_with_metadata(
    schema: &SchemaRef,
    batches: &[RecordBatch],
    metadata: &BTreeMap<String, String>,
) -> Result<ParquetFile, SinkError> {
    let failed = |e: parquet::errors::ParquetError| SinkError::Parquet(e.to_string());
    let key_values = metadata
        .iter()
        .map(|(key, value)| KeyValue::new(key.clone(), value.clone()))
        .collect::<Vec<_>>();
    let properties = WriterProperties::builder()
        .set_compression(Compression::ZSTD(ZstdLevel::default()))
        .set_statistics_enabled(EnabledStatistics::Page)
        .set_key_value_metadata((!key_values.is_empty()).then_some(key_values))
        .build();
    let mut writer =
        ArrowWriter::try_new(Vec::new(), schema.clone(), Some(properties)).map_err(failed)?;
    let mut rows = 0;
    let mut partitions: BTreeMap<i32, OffsetRange> = BTreeMap::new();
    for batch in batches {
        writer.write(batch).map_err(failed)?;
        rows += batch.num_rows();
        record_offsets(batch, &mut partitions)?;
    }
    let bytes = writer.into_inner().map_err(failed)?;
    Ok(ParquetFile { bytes, rows, partitions })
}

fn record_offsets(
    batch: &RecordBatch,
    partitions: &mut BTreeMap<i32, OffsetRange>,
) -> Result<(), SinkError> {
    let column = |name: &str| {
        batch
            .column_by_name(name)
            .ok_or_else(|| SinkError::Arrow(format!("the batch has no `{name}` column")))
    };
    let partition_column = column("_partition")?;
    let offset_column = column("_offset")?;
    let (Some(partition_values), Some(offset_values)) = (
        partition_column.as_primitive_opt::<Int32Type>(),
        offset_column.as_primitive_opt::<Int64Type>(),
    ) else {
        return Err(SinkError::Arrow("`_partition` or `_offset` has the wrong type".to_owned()));
    };
    for (&partition, &offset) in partition_values.values().iter().zip(offset_values.values()) {
        partitions
            .entry(partition)
            .and_modify(|range| {
                range.min = range.min.min(offset);
                range.max = range.max.max(offset);
                range.rows += 1;
            })
            .or_insert(OffsetRange { min: offset, max: offset, rows: 1 });
    }
    Ok(())
}
