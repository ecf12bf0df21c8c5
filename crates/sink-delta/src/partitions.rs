//! Partitioned Delta tables: `skiff.table.partition.by` as Delta partition columns.
//!
//! Delta Lake partitions by the values of table columns; it has no transforms. So each term
//! becomes one partition column:
//!
//! | term | partition column | type | value |
//! | --- | --- | --- | --- |
//! | `region` | `region` itself | the column's | the value |
//! | `year(ts)` | `ts_year` | integer | `2026` |
//! | `month(ts)` | `ts_month` | string | `2026-12` |
//! | `day(ts)` | `ts_day` | date | `2026-12-06` |
//! | `hour(ts)` | `ts_hour` | string | `2026-12-06-23` |
//!
//! A derived column (`_timestamp_day`) is a column of the table like any other, filled by the
//! writer from its source column (UTC), so readers filter on it to prune files. As Delta
//! requires, partition columns are not stored in the data files: their values are in each Add
//! action's `partitionValues`, and the file sits under `<column>=<value>/...` (the directory
//! names are for people browsing the store; readers take the values from the log, so a value's
//! characters outside `[A-Za-z0-9._-]` are replaced by `_` there). Iceberg's `bucket` and
//! `truncate` have no Delta counterpart and are refused.
//!
//! A commit's rows are read back from the Parquet file skiff-sink wrote (with deltalake's own
//! arrow, DESIGN 10.6), grouped by their partition values, and each group written as its own
//! file (zstd, with the original file's key-value metadata: the commit facts).

use std::collections::HashMap;
use std::sync::Arc;

use bytes::Bytes;
use deltalake::arrow::array::{
    Array, ArrayRef, AsArray, BooleanArray, Int32Array, StringArray, UInt32Array,
};
use deltalake::arrow::compute::kernels::temporal::{date_part, DatePart};
use deltalake::arrow::compute::{cast, concat_batches, nullif, take_record_batch};
use deltalake::arrow::datatypes::{DataType, Date32Type, Int32Type, Int64Type, TimeUnit};
use deltalake::arrow::record_batch::RecordBatch;
use deltalake::arrow::row::{RowConverter, SortField};
use deltalake::arrow::temporal_conversions::date32_to_datetime;
use deltalake::arrow::util::display::{ArrayFormatter, FormatOptions};
use deltalake::kernel::{DataType as DeltaType, StructField};
use deltalake::parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;
use deltalake::parquet::arrow::ArrowWriter;
use deltalake::parquet::basic::{Compression, ZstdLevel};
use deltalake::parquet::file::metadata::KeyValue;
use deltalake::parquet::file::properties::WriterProperties;
use deltalake::NULL_PARTITION_VALUE_DATA_PATH;
use skiff_sink::table::partition_by::{PartitionBy, Transform};
use skiff_sink::SinkError;

/// The partition columns of a Delta table, in order; empty for an unpartitioned table.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct Partitioning {
    columns: Vec<Column>,
}

/// One partition column and where its values come from.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Column {
    /// The column's name in the table (`region`, `_timestamp_day`).
    name: String,
    /// The dotted path of the column its values come from.
    source: String,
    transform: Transform,
}

/// One partition's share of a commit: the file to add and its partition values.
#[derive(Debug)]
pub(crate) struct Part {
    /// The Add action's `partitionValues` (a null value as `None`).
    pub(crate) values: HashMap<String, Option<String>>,
    /// `<column>=<value>/...`: the directory of the file under the table root.
    pub(crate) directory: String,
    /// The Parquet file, without the partition columns.
    pub(crate) bytes: Bytes,
}

impl Partitioning {
    /// The Delta form of `by`, or why a Delta table cannot be partitioned so.
    /// The broker refuses such configs already ([`PartitionBy::delta_refusal`], at
    /// CreateTopics and AlterConfigs); this is the same rule for any other caller.
    pub(crate) fn new(by: &PartitionBy) -> Result<Partitioning, SinkError> {
        if let Some(reason) = by.delta_refusal() {
            return Err(SinkError::UnsupportedSchema { path: String::new(), reason });
        }
        let columns = by
            .fields()
            .iter()
            .map(|field| Column {
                name: field.name(),
                source: field.column.clone(),
                transform: field.transform,
            })
            .collect();
        Ok(Partitioning { columns })
    }

    pub(crate) fn is_empty(&self) -> bool {
        self.columns.is_empty()
    }

    /// The partition columns' names, as the table's metadata lists them.
    pub(crate) fn names(&self) -> Vec<String> {
        self.columns.iter().map(|column| column.name.clone()).collect()
    }

    /// The table columns the writer derives (every term but identities, whose columns are
    /// in the files' schema already), appended after the file's columns.
    pub(crate) fn derived_fields(&self) -> Vec<StructField> {
        let field = |name: &str, data_type: DeltaType| StructField::new(name, data_type, true);
        self.columns
            .iter()
            .filter_map(|column| match column.transform {
                Transform::Year => Some(field(&column.name, DeltaType::INTEGER)),
                Transform::Day => Some(field(&column.name, DeltaType::DATE)),
                Transform::Month | Transform::Hour => Some(field(&column.name, DeltaType::STRING)),
                _ => None,
            })
            .collect()
    }

    /// A commit's Parquet file as one file per partition value, in order of first row.
    pub(crate) fn split(&self, file: &Bytes) -> Result<Vec<Part>, SinkError> {
        let (batch, metadata) = read(file)?;
        let keys: Vec<ArrayRef> =
            self.columns.iter().map(|column| column.values(&batch)).collect::<Result<_, _>>()?;
        let data = without_identities(&batch, &self.columns)?;
        let mut parts = Vec::new();
        for rows in group(&keys)? {
            let first = rows.value(0) as usize;
            let values: Vec<(String, Option<String>)> = self
                .columns
                .iter()
                .zip(&keys)
                .map(|(column, key)| (column.name.clone(), partition_value(key.as_ref(), first)))
                .collect();
            let directory = directory(&values);
            let rows = take_record_batch(&data, &rows).map_err(arrow_error)?;
            let bytes = write(&rows, &metadata)?;
            parts.push(Part { values: values.into_iter().collect(), directory, bytes });
        }
        Ok(parts)
    }
}

impl Column {
    /// This partition column's value for each row of `batch`.
    fn values(&self, batch: &RecordBatch) -> Result<ArrayRef, SinkError> {
        let source = source_column(batch, &self.source).ok_or_else(|| SinkError::Mismatch {
            path: self.source.clone(),
            reason: "a partition column's source is not in the file".into(),
        })?;
        if self.transform == Transform::Identity {
            return Ok(source);
        }
        let source = within_calendar(&source)?;
        let part = |part: DatePart| date_part(source.as_ref(), part).map_err(arrow_error);
        match self.transform {
            Transform::Day if source.data_type() == &DataType::Date32 => Ok(source),
            Transform::Day => cast(source.as_ref(), &DataType::Date32).map_err(arrow_error),
            Transform::Year => part(DatePart::Year),
            Transform::Month => {
                let (year, month) = (part(DatePart::Year)?, part(DatePart::Month)?);
                Ok(formatted(&[year, month], |v| format!("{:04}-{:02}", v[0], v[1])))
            }
            Transform::Hour => {
                let parts = [DatePart::Year, DatePart::Month, DatePart::Day, DatePart::Hour];
                let parts = parts.map(part);
                let parts: Vec<ArrayRef> = parts.into_iter().collect::<Result<_, _>>()?;
                Ok(formatted(&parts, |v| {
                    format!("{:04}-{:02}-{:02}-{:02}", v[0], v[1], v[2], v[3])
                }))
            }
            // Identity returned above; `Partitioning::new` refuses the other two.
            Transform::Identity | Transform::Bucket(_) | Transform::Truncate(_) => {
                Err(SinkError::UnsupportedSchema {
                    path: self.source.clone(),
                    reason: format!(
                        "{} makes no derived Delta partition column",
                        self.transform.name()
                    ),
                })
            }
        }
    }
}

/// `source` with nulls where a date or time lies outside the years 1 to 9999: what Delta's
/// date partition values can say, and what arrow's calendar functions take (beyond chrono's
/// range they fail, and a record's timestamp is whatever its producer sent).
fn within_calendar(source: &ArrayRef) -> Result<ArrayRef, SinkError> {
    const FIRST: i64 = -62_135_596_800; // 0001-01-01T00:00:00Z, in seconds
    const LAST: i64 = 253_402_300_799; // 9999-12-31T23:59:59Z
    let seconds = |per_second: i64| move |value: i64| value.div_euclid(per_second);
    let to_seconds: Box<dyn Fn(i64) -> i64> = match source.data_type() {
        DataType::Date32 => Box::new(|days: i64| days.saturating_mul(86_400)),
        DataType::Timestamp(TimeUnit::Second, _) => Box::new(seconds(1)),
        DataType::Timestamp(TimeUnit::Millisecond, _) | DataType::Date64 => {
            Box::new(seconds(1_000))
        }
        DataType::Timestamp(TimeUnit::Microsecond, _) => Box::new(seconds(1_000_000)),
        DataType::Timestamp(TimeUnit::Nanosecond, _) => Box::new(seconds(1_000_000_000)),
        _ => return Ok(source.clone()),
    };
    let raw = cast(source.as_ref(), &DataType::Int64).map_err(arrow_error)?;
    let outside: BooleanArray = raw
        .as_primitive::<Int64Type>()
        .iter()
        .map(|value| value.map(|value| !(FIRST..=LAST).contains(&to_seconds(value))))
        .collect();
    nullif(source.as_ref(), &outside).map_err(arrow_error)
}

/// The file's rows as one batch, and its key-value metadata (the commit facts).
fn read(file: &Bytes) -> Result<(RecordBatch, Vec<KeyValue>), SinkError> {
    let builder = ParquetRecordBatchReaderBuilder::try_new(file.clone()).map_err(parquet_error)?;
    let metadata = builder.metadata().file_metadata().key_value_metadata().cloned();
    let schema = builder.schema().clone();
    let batches = builder
        .build()
        .map_err(parquet_error)?
        .collect::<Result<Vec<_>, _>>()
        .map_err(arrow_error)?;
    let batch = concat_batches(&schema, &batches).map_err(arrow_error)?;
    // The Arrow schema is written again by the new file's writer.
    let facts = metadata.unwrap_or_default().into_iter().filter(|kv| kv.key != "ARROW:schema");
    Ok((batch, facts.collect()))
}

/// A column by dotted path, through structs (`customer.region`).
fn source_column(batch: &RecordBatch, path: &str) -> Option<ArrayRef> {
    let mut parts = path.split('.');
    let mut column = batch.column_by_name(parts.next()?)?.clone();
    for part in parts {
        column = column.as_struct_opt()?.column_by_name(part)?.clone();
    }
    Some(column)
}

/// `batch` without the identity partition columns: Delta keeps partition values out of files.
fn without_identities(batch: &RecordBatch, columns: &[Column]) -> Result<RecordBatch, SinkError> {
    let schema = batch.schema();
    let kept: Vec<usize> = (0..schema.fields().len())
        .filter(|index| {
            let name = schema.field(*index).name();
            !columns.iter().any(|c| c.transform == Transform::Identity && &c.source == name)
        })
        .collect();
    batch.project(&kept).map_err(arrow_error)
}

/// Strings made from integer arrays row by row; null where any of them is null.
fn formatted(parts: &[ArrayRef], format: impl Fn(&[i32]) -> String) -> ArrayRef {
    let ints: Vec<&Int32Array> =
        parts.iter().filter_map(|part| part.as_primitive_opt::<Int32Type>()).collect();
    let rows = parts.first().map_or(0, |part| part.len());
    let values = (0..rows).map(|row| {
        let values: Option<Vec<i32>> =
            ints.iter().map(|array| (!array.is_null(row)).then(|| array.value(row))).collect();
        values.filter(|values| values.len() == parts.len()).map(|values| format(&values))
    });
    Arc::new(values.collect::<StringArray>())
}

/// The rows of each distinct combination of partition values, in order of first appearance.
fn group(keys: &[ArrayRef]) -> Result<Vec<UInt32Array>, SinkError> {
    let fields = keys.iter().map(|key| SortField::new(key.data_type().clone())).collect();
    let converter = RowConverter::new(fields).map_err(arrow_error)?;
    let rows = converter.convert_columns(keys).map_err(arrow_error)?;
    let mut groups: Vec<Vec<u32>> = Vec::new();
    let mut index = HashMap::new();
    for (row, key) in rows.iter().enumerate() {
        let slot = *index.entry(key).or_insert_with(|| {
            groups.push(Vec::new());
            groups.len() - 1
        });
        groups[slot]
            .push(u32::try_from(row).map_err(|_| SinkError::Arrow("too many rows".into()))?);
    }
    Ok(groups.into_iter().map(UInt32Array::from).collect())
}

/// A partition value as Delta writes it in `partitionValues`; `None` for null.
fn partition_value(array: &dyn Array, row: usize) -> Option<String> {
    if array.is_null(row) {
        return None;
    }
    if let Some(dates) = array.as_primitive_opt::<Date32Type>() {
        // Formatted here: a date outside chrono's range is no value rather than a panic.
        return date32_to_datetime(dates.value(row))
            .map(|date| date.format("%Y-%m-%d").to_string());
    }
    let formatter = ArrayFormatter::try_new(array, &FormatOptions::default()).ok()?;
    formatter.value(row).try_to_string().ok()
}

/// `<column>=<value>/...`, each part reduced to characters that need no escaping anywhere.
fn directory(values: &[(String, Option<String>)]) -> String {
    let plain = |text: &str| -> String {
        let kept = text.chars().map(|c| {
            if c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-') {
                c
            } else {
                '_'
            }
        });
        kept.take(64).collect()
    };
    let parts = values.iter().map(|(name, value)| match value {
        Some(value) => format!("{}={}", plain(name), plain(value)),
        None => format!("{}={NULL_PARTITION_VALUE_DATA_PATH}", plain(name)),
    });
    parts.collect::<Vec<_>>().join("/")
}

/// One partition's rows as a Parquet file (zstd), keeping the commit facts.
fn write(rows: &RecordBatch, metadata: &[KeyValue]) -> Result<Bytes, SinkError> {
    let level = ZstdLevel::try_new(3).map_err(parquet_error)?;
    let properties = WriterProperties::builder()
        .set_compression(Compression::ZSTD(level))
        .set_key_value_metadata(Some(metadata.to_vec()))
        .build();
    let mut bytes = Vec::new();
    let mut writer =
        ArrowWriter::try_new(&mut bytes, rows.schema(), Some(properties)).map_err(parquet_error)?;
    writer.write(rows).map_err(parquet_error)?;
    writer.close().map_err(parquet_error)?;
    Ok(Bytes::from(bytes))
}

fn arrow_error(error: deltalake::arrow::error::ArrowError) -> SinkError {
    SinkError::Arrow(error.to_string())
}

fn parquet_error(error: deltalake::parquet::errors::ParquetError) -> SinkError {
    SinkError::Parquet(error.to_string())
}

#[cfg(test)]
mod tests {
    use deltalake::arrow::array::TimestampMillisecondArray;
    use deltalake::arrow::datatypes::{Field, Schema};

    use super::*;

    fn parquet(batch: &RecordBatch) -> Bytes {
        write(batch, &[KeyValue::new("skiff.topic".to_owned(), "orders".to_owned())])
            .expect("written")
    }

    fn partitioning(value: &str) -> Partitioning {
        Partitioning::new(&PartitionBy::parse(value).expect("parses")).expect("Delta takes it")
    }

    /// Timestamps at the ends of the i64 range, nulls and values with characters a path cannot
    /// hold: grouped, named and valued without a panic.
    #[test]
    fn odd_values_split_without_panicking() {
        let utc = DataType::Timestamp(TimeUnit::Millisecond, Some("UTC".into()));
        let schema = Arc::new(Schema::new(vec![
            Field::new("_timestamp", utc, true),
            Field::new("region", DataType::Utf8, true),
        ]));
        let times = [Some(0), Some(i64::MAX), Some(i64::MIN), None, Some(0)];
        let times = TimestampMillisecondArray::from(times.to_vec()).with_timezone("UTC");
        let regions = StringArray::from(vec![Some("a b/c"), Some("x"), None, Some("x"), None]);
        let batch =
            RecordBatch::try_new(schema, vec![Arc::new(times), Arc::new(regions)]).expect("batch");
        let file = parquet(&batch);

        let by = "year(_timestamp), month(_timestamp), day(_timestamp), hour(_timestamp), region";
        let parts = partitioning(by).split(&file).expect("split");
        // A time beyond the calendar is partitioned as a null time: rows 1 and 3 share one.
        assert_eq!(parts.len(), 4);
        assert_eq!(read(&parts[1].bytes).expect("a Parquet file").0.num_rows(), 2);
        let first = &parts[0];
        assert_eq!(first.values["_timestamp_day"].as_deref(), Some("1970-01-01"));
        assert_eq!(first.values["_timestamp_hour"].as_deref(), Some("1970-01-01-00"));
        assert_eq!(first.values["_timestamp_month"].as_deref(), Some("1970-01"));
        assert_eq!(first.values["_timestamp_year"].as_deref(), Some("1970"));
        assert_eq!(first.values["region"].as_deref(), Some("a b/c"));
        assert!(first.directory.ends_with("/region=a_b_c"), "{}", first.directory);
        let nulls = &parts[2];
        assert!(nulls.values.values().all(Option::is_none), "{:?}", nulls.values);
        assert!(nulls.directory.starts_with("_timestamp_year=__HIVE_DEFAULT_PARTITION__/"));

        // The files keep the other columns and the key-value metadata, not the partition ones.
        let (rows, metadata) = read(&first.bytes).expect("a Parquet file");
        assert_eq!(rows.num_rows(), 1);
        assert_eq!(rows.schema().fields().len(), 1, "region is in the log only");
        assert!(metadata.iter().any(|kv| kv.key == "skiff.topic"));
    }

    #[test]
    fn delta_refuses_transforms_it_has_no_column_for() {
        for value in ["bucket(2, id)", "truncate(3, name)", "customer.region"] {
            let by = PartitionBy::parse(value).expect("parses");
            assert!(Partitioning::new(&by).is_err(), "{value}");
        }
        let derived = partitioning("region, day(ts), month(ts)").derived_fields();
        let names: Vec<&str> = derived.iter().map(|field| field.name().as_str()).collect();
        assert_eq!(names, ["ts_day", "ts_month"]);
    }
}
