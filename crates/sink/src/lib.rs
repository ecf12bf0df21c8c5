//! Table sinks: the records of a topic with a schema as Arrow record batches, those batches as
//! Parquet files, and the table formats a writer commits them to ([`table`]: plain Parquet files
//! today; Iceberg and Delta later, in crates of their own). The writer loop, its leases and the
//! topic configs live in the broker (`skiff_broker::tables`); see `docs/tables.md`.
//!
//! # Use
//! ```text
//! let table = TableSchema::new(schema, &message_indexes)?;   // Arc<skiff_schema::Schema>
//! let mut rows = Rows::new(&table);
//! rows.push(partition, offset, timestamp_ms, key, &headers, payload)?; // payload: no wire header
//! let batch = rows.finish()?;
//! let file = parquet::write(&table.arrow_schema(), &[batch])?;      // bytes, rows, offsets
//! ```
//!
//! # Layout
//! - `lib.rs`: [`TableSchema`] (a schema's columns), [`Rows`] (records to a `RecordBatch`),
//!   [`SinkError`], and the field-id rule.
//! - `columns.rs`: column storage that can be cut back, so a row that fails half-way leaves no
//!   trace.
//! - `avro.rs`, `protobuf.rs`, `json.rs`: one module per format, each mapping the schema onto
//!   Arrow fields and pushing decoded values into the columns.
//! - [`parquet`]: a batch (or several) as a zstd-compressed Parquet file with statistics and
//!   key-value metadata, and the offsets it covers per partition.
//! - [`table`]: the [`table::Table`] trait a writer commits through (once per offset), table
//!   locations (`file://`, `s3://`), and the `parquet` format.
//!
//! # Columns
//! The Kafka columns come first: `_partition` Int32, `_offset` Int64, `_timestamp`
//! Timestamp(ms, UTC), `_key` Binary (nullable), `_headers` List<Struct<key Utf8, value Binary
//! (nullable)>> with duplicate keys and their order kept. Then one column per field of the
//! value's schema (Avro record, Protobuf message, JSON Schema object); a schema whose top level
//! is not a record has one column, `value`. The type mapping per format is in `docs/tables.md`.
//!
//! # Field ids
//! Every Arrow field carries a field id in its metadata under `PARQUET:field_id` (the Parquet
//! writer stores it in the file's schema; Iceberg reads columns by it). Ids are assigned
//! depth-first in pre-order from 1: a field, then its children (struct fields in order, a
//! list's element, a map's key then value; a map's `entries` struct gets none, as Iceberg
//! gives none). So the Kafka columns are 1 to 8 (`_headers` is 5, its element 6, `key` 7,
//! `value` 8) and the value's first column is 9. The ids depend only on the schema, so the
//! same schema always gives the same ids; keeping ids across schema versions is the table
//! format's job (Iceberg's metadata), a later increment.
//!
//! # Arrow versions
//! Arrow types appear in this crate's API (`RecordBatch`, `SchemaRef`); the Iceberg and Delta
//! crates may pin other arrow versions (DESIGN 10.6), so they will take Parquet bytes, not
//! arrays.
//!
//! # Build cost
//! Cold debug build of this crate's new dependencies (`arrow-array`, `arrow-buffer`,
//! `arrow-schema`, `parquet` with features `arrow` and `zstd` only, and what they pull in) on
//! the shared 2-core machine, after `skiff-schema` was built: 8 min 30 s (513 s wall, with
//! other builds keeping the load near 5). It adds `zstd` 0.14 (`zstd-sys` moved to 2.2 in the
//! lock file, which `kafka-protocol`'s `zstd` 0.13 shares).

mod avro;
mod columns;
mod json;
pub mod parquet;
mod protobuf;
pub mod table;
#[cfg(feature = "testing")]
pub mod testing;

use std::sync::Arc;

use arrow_array::RecordBatch;
use arrow_schema::{DataType, Field, Fields, Schema as ArrowSchema, SchemaRef, TimeUnit};
use skiff_schema::{Schema, SchemaType};

use crate::columns::Column;

/// The metadata key of a field's id, as the Parquet writer and Iceberg read it.
pub const FIELD_ID_KEY: &str = "PARQUET:field_id";

/// The Kafka columns every table has, before the value's columns.
pub const KAFKA_COLUMNS: [&str; 5] = ["_partition", "_offset", "_timestamp", "_key", "_headers"];

/// Why a schema has no table columns, a payload does not fit them, or a file was not written.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum SinkError {
    /// The schema uses something that has no column mapping (yet).
    #[error("field `{path}`: {reason}")]
    UnsupportedSchema {
        /// Dotted path of the field (empty: the whole schema).
        path: String,
        /// What is not supported.
        reason: String,
    },
    /// A payload does not fit the columns. The broker validated it already, so this is a
    /// defensive check; the row is not added.
    #[error("field `{path}`: {reason}")]
    Mismatch {
        /// Dotted path of the field (`address.zip`, `tags[]`).
        path: String,
        /// Why the value does not fit.
        reason: String,
    },
    /// The payload does not decode as the schema.
    #[error("the payload does not decode: {0}")]
    Decode(String),
    /// Arrow refused the arrays (a bug here, reported rather than panicking).
    #[error("arrow: {0}")]
    Arrow(String),
    /// The Parquet writer failed, or a committed file does not read back.
    #[error("parquet: {0}")]
    Parquet(String),
    /// A table location URL that cannot be used.
    #[error("{0}")]
    Location(String),
    /// The table's object store failed (retried by the writer).
    #[error("table store: {0}")]
    Store(String),
}

impl SinkError {
    fn unsupported(path: &str, reason: impl Into<String>) -> SinkError {
        SinkError::UnsupportedSchema { path: path.to_owned(), reason: reason.into() }
    }
}

/// One Kafka record header. Keys may repeat; order matters.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RecordHeader<'a> {
    /// The header's key.
    pub key: &'a str,
    /// Its value; `None` for a null value.
    pub value: Option<&'a [u8]>,
}

/// The columns of a table for one schema: the Arrow schema, and how payloads of the schema
/// become rows. Cheap to clone.
#[derive(Clone)]
pub struct TableSchema {
    inner: Arc<TableInner>,
}

struct TableInner {
    schema: Arc<Schema>,
    arrow: SchemaRef,
    value: ValueColumns,
}

/// How the value's payload fills the columns after the Kafka ones.
enum ValueColumns {
    Avro(avro::AvroColumns),
    Protobuf(protobuf::ProtobufColumns),
    Json(json::JsonColumns),
}

impl TableSchema {
    /// The columns for records whose values have `schema`. `message_indexes` selects the
    /// Protobuf message type as in [`Schema::validate`] (ignored for Avro and JSON).
    pub fn new(schema: Arc<Schema>, message_indexes: &[i32]) -> Result<TableSchema, SinkError> {
        let (value, value_fields) = match schema.schema_type() {
            SchemaType::Avro => {
                let (columns, fields) = avro::AvroColumns::new(&schema)?;
                (ValueColumns::Avro(columns), fields)
            }
            SchemaType::Protobuf => {
                let (columns, fields) = protobuf::ProtobufColumns::new(&schema, message_indexes)?;
                (ValueColumns::Protobuf(columns), fields)
            }
            SchemaType::Json => {
                let (columns, fields) = json::JsonColumns::new(&schema)?;
                (ValueColumns::Json(columns), fields)
            }
        };
        if let Some(clash) =
            value_fields.iter().find(|f| KAFKA_COLUMNS.contains(&f.name().as_str()))
        {
            return Err(SinkError::unsupported(
                clash.name(),
                "the name is taken by a Kafka column",
            ));
        }
        let mut fields = kafka_fields();
        fields.extend(value_fields);
        let arrow = Arc::new(ArrowSchema::new(with_field_ids(fields, &mut 1)));
        Ok(TableSchema { inner: Arc::new(TableInner { schema, arrow, value }) })
    }

    /// The Arrow schema: the Kafka columns, then the value's, each field with its id.
    pub fn arrow_schema(&self) -> SchemaRef {
        self.inner.arrow.clone()
    }
}

impl std::fmt::Debug for TableSchema {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TableSchema").field("arrow", &self.inner.arrow).finish_non_exhaustive()
    }
}

/// `_partition`, `_offset`, `_timestamp`, `_key`, `_headers`.
fn kafka_fields() -> Vec<Field> {
    let header = Fields::from(vec![
        Field::new("key", DataType::Utf8, false),
        Field::new("value", DataType::Binary, true),
    ]);
    vec![
        Field::new("_partition", DataType::Int32, false),
        Field::new("_offset", DataType::Int64, false),
        Field::new(
            "_timestamp",
            DataType::Timestamp(TimeUnit::Millisecond, Some("UTC".into())),
            false,
        ),
        Field::new("_key", DataType::Binary, true),
        Field::new(
            "_headers",
            list_of(Field::new("element", DataType::Struct(header), false)),
            false,
        ),
    ]
}

/// A list type whose element is `element` (named `element`, as Parquet's list layout names it).
pub(crate) fn list_of(element: Field) -> DataType {
    DataType::List(Arc::new(element.with_name("element")))
}

/// A map type with `key` and `value` fields in an `entries` struct, unsorted.
pub(crate) fn map_of(key: DataType, value: DataType, value_nullable: bool) -> DataType {
    let entries = Fields::from(vec![
        Field::new("key", key, false),
        Field::new("value", value, value_nullable),
    ]);
    DataType::Map(Arc::new(Field::new("entries", DataType::Struct(entries), false)), false)
}

/// `path.name`, or `name` at the top: the dotted paths error messages name fields by.
pub(crate) fn join(path: &str, name: &str) -> String {
    if path.is_empty() {
        name.to_owned()
    } else {
        format!("{path}.{name}")
    }
}

/// Gives every field an id, depth-first in pre-order from `*next` (see the crate docs).
fn with_field_ids(fields: Vec<Field>, next: &mut i32) -> Vec<Field> {
    fields.into_iter().map(|field| with_field_id(field, next)).collect()
}

fn with_field_id(field: Field, next: &mut i32) -> Field {
    let mut metadata = field.metadata().clone();
    metadata.insert(FIELD_ID_KEY, next.to_string());
    *next += 1;
    let data_type = match field.data_type() {
        DataType::Struct(children) => DataType::Struct(Fields::from(with_field_ids(
            children.iter().map(|c| c.as_ref().clone()).collect(),
            next,
        ))),
        DataType::List(element) => {
            DataType::List(Arc::new(with_field_id(element.as_ref().clone(), next)))
        }
        DataType::Map(entries, sorted) => {
            let inner = match entries.data_type() {
                DataType::Struct(children) => DataType::Struct(Fields::from(with_field_ids(
                    children.iter().map(|c| c.as_ref().clone()).collect(),
                    next,
                ))),
                other => other.clone(),
            };
            DataType::Map(Arc::new(entries.as_ref().clone().with_data_type(inner)), *sorted)
        }
        other => other.clone(),
    };
    field.with_data_type(data_type).with_metadata(metadata)
}

/// Records becoming one `RecordBatch`: push them one by one, then [`Rows::finish`].
pub struct Rows {
    table: TableSchema,
    columns: Vec<Column>,
}

impl Rows {
    /// No rows yet, with the columns of `table`.
    pub fn new(table: &TableSchema) -> Result<Rows, SinkError> {
        let columns = table
            .inner
            .arrow
            .fields()
            .iter()
            .map(|field| Column::new(field.name().clone(), field))
            .collect::<Result<_, _>>()?;
        Ok(Rows { table: table.clone(), columns })
    }

    /// How many rows were pushed since the last [`Rows::finish`].
    pub fn len(&self) -> usize {
        self.columns.first().map_or(0, Column::len)
    }

    /// Whether no row was pushed since the last [`Rows::finish`].
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Adds one record. `value` is the payload without the wire header (see
    /// `skiff_schema::wire::parse`); a tombstone (null value) is not a row: the caller decides
    /// what it means for the table. On an error nothing of the record is added.
    pub fn push(
        &mut self,
        partition: i32,
        offset: i64,
        timestamp_ms: i64,
        key: Option<&[u8]>,
        headers: &[RecordHeader<'_>],
        value: &[u8],
    ) -> Result<(), SinkError> {
        let len = self.len();
        let result = self.push_columns(partition, offset, timestamp_ms, key, headers, value);
        if result.is_err() {
            self.columns.iter_mut().for_each(|column| column.truncate(len));
        }
        result
    }

    fn push_columns(
        &mut self,
        partition: i32,
        offset: i64,
        timestamp_ms: i64,
        key: Option<&[u8]>,
        headers: &[RecordHeader<'_>],
        value: &[u8],
    ) -> Result<(), SinkError> {
        let inner = &self.table.inner;
        let (kafka, value_columns) = self.columns.split_at_mut(KAFKA_COLUMNS.len());
        // Decoded before any column is touched: most failures leave nothing to undo.
        let decoded = match &inner.value {
            ValueColumns::Avro(columns) => Decoded::Avro(columns.decode(&inner.schema, value)?),
            ValueColumns::Protobuf(columns) => Decoded::Protobuf(columns.decode(value)?),
            ValueColumns::Json(_) => Decoded::Json(
                serde_json::from_slice(value).map_err(|e| SinkError::Decode(e.to_string()))?,
            ),
        };
        let [partition_column, offset_column, timestamp_column, key_column, headers_column] = kafka
        else {
            return Err(SinkError::Arrow("the Kafka columns are missing".to_owned()));
        };
        partition_column.push_i32(partition)?;
        offset_column.push_i64(offset)?;
        timestamp_column.push_i64(timestamp_ms)?;
        match key {
            Some(key) => key_column.push_bytes(key)?,
            None => key_column.push_null()?,
        }
        let header_column = headers_column.list_items()?;
        for header in headers {
            let [key_column, value_column] = header_column.push_struct()? else {
                return Err(SinkError::Arrow("the header struct has no key and value".into()));
            };
            key_column.push_str(header.key)?;
            match header.value {
                Some(value) => value_column.push_bytes(value)?,
                None => value_column.push_null()?,
            }
        }
        headers_column.close_list()?;
        match (&inner.value, decoded) {
            (ValueColumns::Avro(columns), Decoded::Avro(value)) => {
                columns.push(&value, value_columns)
            }
            (ValueColumns::Protobuf(columns), Decoded::Protobuf(message)) => {
                columns.push(&message, value_columns)
            }
            (ValueColumns::Json(columns), Decoded::Json(value)) => {
                columns.push(&value, value_columns)
            }
            _ => Err(SinkError::Arrow("decoded value of another format".to_owned())),
        }
    }

    /// The rows pushed so far as one batch; `Rows` is empty afterwards and can be reused.
    pub fn finish(&mut self) -> Result<RecordBatch, SinkError> {
        let arrays = self.columns.iter_mut().map(Column::finish).collect::<Result<Vec<_>, _>>()?;
        RecordBatch::try_new(self.table.arrow_schema(), arrays)
            .map_err(|e| SinkError::Arrow(e.to_string()))
    }
}

impl std::fmt::Debug for Rows {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Rows").field("len", &self.len()).finish_non_exhaustive()
    }
}

enum Decoded {
    Avro(apache_avro::types::Value),
    Protobuf(prost_reflect::DynamicMessage),
    Json(serde_json::Value),
}

/// The one `value` column of a schema whose top level is not a record.
pub(crate) fn single_column(columns: &mut [Column]) -> Result<&mut Column, SinkError> {
    match columns {
        [column] => Ok(column),
        _ => Err(SinkError::Arrow(format!("expected one value column, found {}", columns.len()))),
    }
}
