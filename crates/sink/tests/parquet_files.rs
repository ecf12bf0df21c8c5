//! Parquet files read back by readers other than the writer: the `parquet` crate's Arrow reader
//! (another code path than its writer) and pyarrow (Apache Arrow's C++ implementation), from the
//! test venv that `scripts/test.sh` creates.

mod common;

use std::path::PathBuf;
use std::process::Command;
use std::sync::Arc;

use arrow_array::RecordBatch;
use parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;
use parquet::basic::Compression;
use skiff_schema::{Schema, SchemaType};
use skiff_sink::{parquet as sink_parquet, RecordHeader, Rows, TableSchema};

/// Avro orders in two batches: partition 0 offsets 10 and 12 (11 is missing, as after a
/// compaction), then partition 1 offset 5.
fn written() -> (TableSchema, Vec<RecordBatch>, sink_parquet::ParquetFile) {
    let schema = Schema::parse(SchemaType::Avro, common::AVRO_ORDER, &[]).expect("parses");
    let [full, sparse] = common::avro_orders(&schema);
    let table = TableSchema::new(Arc::new(schema), &[]).expect("columns");
    let mut rows = Rows::new(&table).expect("rows");
    let headers = [
        RecordHeader { key: "h", value: Some(b"1") },
        RecordHeader { key: "h", value: Some(b"2") },
        RecordHeader { key: "trace", value: None },
    ];
    rows.push(0, 10, 1_700_000_000_000, Some(b"k1"), &headers, &full).expect("fits");
    rows.push(0, 12, 1_700_000_000_001, None, &[], &sparse).expect("fits");
    let first = rows.finish().expect("batch");
    rows.push(1, 5, 1_700_000_000_002, Some(b""), &[], &full).expect("fits");
    let second = rows.finish().expect("batch");
    let batches = vec![first, second];
    let file = sink_parquet::write(&table.arrow_schema(), &batches).expect("written");
    (table, batches, file)
}

#[test]
fn the_parquet_reader_reads_back_what_was_written() {
    let (table, batches, file) = written();
    assert_eq!(file.rows, 3);
    let ranges: Vec<_> = file.partitions.iter().map(|(p, r)| (*p, r.min, r.max, r.rows)).collect();
    assert_eq!(ranges, [(0, 10, 12, 2), (1, 5, 5, 1)]);

    let builder = ParquetRecordBatchReaderBuilder::try_new(bytes::Bytes::from(file.bytes))
        .expect("a Parquet file");
    let metadata = builder.metadata().clone();
    let row_group = metadata.row_group(0);
    for column in row_group.columns() {
        assert!(
            matches!(column.compression(), Compression::ZSTD(_)),
            "{} is {:?}",
            column.column_path(),
            column.compression()
        );
    }
    let offset = row_group
        .columns()
        .iter()
        .find(|c| c.column_path().string() == "_offset")
        .expect("an _offset column");
    let statistics = offset.statistics().expect("statistics");
    assert_eq!(statistics.min_bytes_opt(), Some(&5i64.to_le_bytes()[..]));
    assert_eq!(statistics.max_bytes_opt(), Some(&12i64.to_le_bytes()[..]));
    // Field ids reach the Parquet schema.
    let ids: Vec<i32> = metadata
        .file_metadata()
        .schema_descr()
        .root_schema()
        .get_fields()
        .iter()
        .map(|f| f.get_basic_info().id())
        .collect();
    assert_eq!(&ids[..6], [1, 2, 3, 4, 5, 9]);

    let reader = builder.build().expect("reader");
    let read: Vec<RecordBatch> = reader.collect::<Result<_, _>>().expect("batches read");
    assert_eq!(read.iter().map(RecordBatch::num_rows).sum::<usize>(), 3);
    // The embedded Arrow schema gives back the exact types, field ids included.
    let read_schema = read.first().expect("a batch").schema();
    assert_eq!(read_schema.fields(), table.arrow_schema().fields());
    let read = arrow_concat(&read);
    let written = arrow_concat(&batches);
    for (name, (read_column, written_column)) in table
        .arrow_schema()
        .fields()
        .iter()
        .map(|f| f.name().clone())
        .zip(read.iter().zip(written.iter()))
    {
        assert_eq!(read_column, written_column, "column `{name}`");
    }
}

/// The rows of `batches` rendered per row and column, to compare batches of any split.
fn arrow_concat(batches: &[RecordBatch]) -> Vec<Vec<String>> {
    let mut rows = Vec::new();
    for batch in batches {
        for row in 0..batch.num_rows() {
            rows.push(batch.columns().iter().map(|c| common::render(c.as_ref(), row)).collect());
        }
    }
    // Transposed: one entry per column.
    let columns = rows.first().map_or(0, Vec::len);
    (0..columns).map(|c| rows.iter().map(|r| r[c].clone()).collect()).collect()
}

const PYARROW_READ: &str = r#"
import json, sys
import pyarrow.parquet as pq
table = pq.read_table(sys.argv[1])
ids = {f.name: int(f.metadata[b"PARQUET:field_id"]) for f in table.schema}
types = {f.name: str(f.type) for f in table.schema}
print(json.dumps({"rows": table.to_pylist(), "ids": ids, "types": types}, default=str))
"#;

#[test]
fn pyarrow_reads_the_file() {
    let venv = std::env::var_os("SKIFF_VENV").map(PathBuf::from).unwrap_or_else(|| {
        PathBuf::from(std::env::var_os("HOME").unwrap_or_default()).join(".cache/skiff-venv")
    });
    let python = venv.join("bin/python");
    if !python.exists() {
        eprintln!(
            "SKIPPED pyarrow_reads_the_file: no test venv at {} (scripts/test.sh creates it)",
            venv.display()
        );
        return;
    }
    let (_, _, file) = written();
    let dir = std::env::temp_dir().join(format!("skiff-sink-test-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("temp dir");
    let path = dir.join("orders.parquet");
    std::fs::write(&path, &file.bytes).expect("file written");
    let output =
        Command::new(&python).arg("-c").arg(PYARROW_READ).arg(&path).output().expect("python runs");
    std::fs::remove_dir_all(&dir).expect("temp dir removed");
    assert!(
        output.status.success(),
        "pyarrow failed (is pyarrow in tests/requirements.txt installed?): {}",
        String::from_utf8_lossy(&output.stderr)
    );
    let read: serde_json::Value = serde_json::from_slice(&output.stdout).expect("JSON");
    let rows = read["rows"].as_array().expect("rows");
    assert_eq!(rows.len(), 3);
    let first = &rows[0];
    assert_eq!(first["_partition"], 0);
    assert_eq!(first["_offset"], 10);
    assert_eq!(first["_timestamp"], "2023-11-14 22:13:20+00:00");
    assert_eq!(first["_key"], "b'k1'");
    assert_eq!(
        first["_headers"],
        serde_json::json!([
            {"key": "h", "value": "b'1'"},
            {"key": "h", "value": "b'2'"},
            {"key": "trace", "value": null}
        ])
    );
    assert_eq!(first["id"], 7);
    assert_eq!(first["note"], "fragile");
    assert_eq!(first["customer"], serde_json::json!({"name": "Ann", "vip": true}));
    assert_eq!(first["tags"], serde_json::json!(["a", "b"]));
    assert_eq!(first["attributes"], serde_json::json!([["x", 1], ["y", 2]]));
    assert_eq!(first["status"], "PAID");
    assert_eq!(first["placed"], "2023-11-14 22:13:20.123000+00:00");
    assert_eq!(first["placed_us"], "2023-11-14 22:13:20.123456+00:00");
    assert_eq!(first["day"], "2024-01-01");
    assert_eq!(first["amount"], "123.45");
    assert_eq!(first["amount_fixed"], "-0.0005");
    assert_eq!(first["uid"], "6f1c2a52-3b4d-4e5f-8a9b-0c1d2e3f4a5b");
    assert_eq!(first["hash"], "b'\\xde\\xad\\xbe\\xef'");
    assert_eq!(first["choice"], serde_json::json!({"member0": 42, "member1": null}));
    let second = &rows[1];
    assert_eq!(second["_offset"], 12);
    assert_eq!(second["_key"], serde_json::Value::Null);
    assert_eq!(second["_headers"], serde_json::json!([]));
    assert_eq!(second["note"], serde_json::Value::Null);
    assert_eq!(second["referrer"], serde_json::Value::Null);
    assert_eq!(second["amount"], "-0.01");
    assert_eq!(rows[2]["_partition"], 1);
    assert_eq!(rows[2]["_key"], "b''");

    assert_eq!(read["ids"]["_partition"], 1);
    assert_eq!(read["ids"]["_headers"], 5);
    assert_eq!(read["ids"]["id"], 9);
    assert_eq!(read["types"]["_timestamp"], "timestamp[ms, tz=UTC]");
    assert_eq!(read["types"]["amount"], "decimal128(10, 2)");
    // pyarrow may add the map's field name: `map<string, int32 ('attributes')>`.
    let map_type = read["types"]["attributes"].as_str().expect("a type");
    assert!(map_type.starts_with("map<string, int32"), "{map_type}");
    assert_eq!(read["types"]["day"], "date32[day]");
}
