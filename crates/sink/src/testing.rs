//! What every table format's tests share (feature `testing`): files of orders as a writer
//! makes them, table locations on a temporary directory and on the test S3 server, and the
//! behaviour every [`Table`] must show, run by each format's own tests with a way to open
//! fresh objects of one table (as brokers would), like the storage engines' conformance suite.
//! Each format then checks its own bookkeeping (a Delta log, Iceberg snapshots) on top.

use std::path::PathBuf;
use std::sync::Arc;

use skiff_schema::{Schema, SchemaType};

use crate::parquet::{write_with_metadata, ParquetFile};
use crate::table::{Commit, CommitFacts, CommitOutcome, Location, Table};
use crate::{Rows, TableSchema};

/// Orders, version 1: a struct, a list and a map besides scalars.
pub const ORDER_V1: &str = r#"{
  "type": "object",
  "properties": {
    "id": {"type": "integer"},
    "customer": {"type": "object", "properties": {"name": {"type": "string"}}},
    "tags": {"type": "array", "items": {"type": "string"}},
    "attributes": {"type": "object", "additionalProperties": {"type": "integer"}}
  },
  "required": ["id"]
}"#;

/// Orders, version 2: a `note` column added.
pub const ORDER_V2: &str = r#"{
  "type": "object",
  "properties": {
    "id": {"type": "integer"},
    "customer": {"type": "object", "properties": {"name": {"type": "string"}}},
    "tags": {"type": "array", "items": {"type": "string"}},
    "attributes": {"type": "object", "additionalProperties": {"type": "integer"}},
    "note": {"type": "string"}
  },
  "required": ["id"]
}"#;

/// When every test file says it was committed.
pub const COMMITTED_AT_MS: i64 = 1_700_000_000_999;

/// A file of one order per offset in `offsets` of `partition`, covering `from..next`, with the
/// JSON Schema `schema` (the offset is the order id). Each order also has `note` and
/// `customer.email`, which only schemas that declare them turn into columns.
pub fn order_file(
    schema: &str,
    partition: i32,
    from: i64,
    next: i64,
    offsets: &[i64],
) -> ParquetFile {
    let parsed = Schema::parse(SchemaType::Json, schema, &[]).expect("parses");
    let table = TableSchema::new(Arc::new(parsed), &[]).expect("columns");
    let mut rows = Rows::new(&table).expect("rows");
    for offset in offsets {
        let value = format!(
            r#"{{"id": {offset}, "customer": {{"name": "c{offset}", "email": "e{offset}"}},
                "tags": ["a", "b"], "attributes": {{"x": 1}}, "note": "n{offset}"}}"#
        );
        rows.push(partition, *offset, 1_700_000_000_000, Some(b"k"), &[], value.as_bytes())
            .expect("fits");
    }
    let batch = rows.finish().expect("batch");
    let facts = CommitFacts {
        topic: "orders".to_owned(),
        topic_id: "id-1".to_owned(),
        partition,
        from,
        next,
        schema_id: 7,
        committed_at_ms: COMMITTED_AT_MS,
    };
    write_with_metadata(&table.arrow_schema(), &[batch], &facts.to_metadata()).expect("written")
}

/// A new temporary directory (named after `format`) and its `file://` location.
pub fn local_location(format: &str) -> (PathBuf, Location) {
    let name = format!("skiff-{format}-{}", uuid::Uuid::new_v4().simple());
    let dir = std::env::temp_dir().join(name);
    let url = format!("file://{}", dir.display());
    (dir, Location::open(&url).expect("a directory location"))
}

/// A new prefix (named after `format`) of the test S3 server's bucket as a location.
pub fn s3_location(format: &str) -> Location {
    let endpoint = std::env::var("SKIFF_TEST_S3_ENDPOINT").unwrap_or_else(|_| {
        panic!("SKIFF_TEST_S3_ENDPOINT is not set: run `eval \"$(scripts/services.sh)\"` first")
    });
    let prefix = uuid::Uuid::new_v4().simple();
    let url = format!("s3://skiff-test/{format}-{prefix}?endpoint={endpoint}");
    Location::open(&url).expect("an s3 location")
}

/// The test venv's python, if there is one (scripts/test.sh creates it).
pub fn venv_python() -> Option<PathBuf> {
    let venv = std::env::var_os("SKIFF_VENV").map(PathBuf::from).unwrap_or_else(|| {
        PathBuf::from(std::env::var_os("HOME").unwrap_or_default()).join(".cache/skiff-venv")
    });
    let python = venv.join("bin/python");
    python.exists().then_some(python)
}

/// Commits `file` as `from..next` of `partition`.
pub async fn commit(
    table: &dyn Table,
    partition: i32,
    from: i64,
    next: i64,
    file: &ParquetFile,
) -> CommitOutcome {
    table.commit(Commit { partition, from, next, file }).await.expect("commit")
}

/// Where `partition`'s next commit starts, by the table.
pub async fn next_offset(table: &dyn Table, partition: i32) -> Option<i64> {
    table.committed(partition).await.expect("read").map(|committed| committed.next_offset)
}

/// Opens a fresh object of the table under test (another broker's, say).
pub type Open<'a> = &'a (dyn Fn() -> Box<dyn Table> + Sync);

/// Commits land once: a stale commit and one ahead of the table conflict, a fresh object
/// resumes from the table, partitions are separate. Leaves partition 3 committed as `0..3`
/// and `3..9` (files of offsets 0, 1, 2 and 4, 8) and partition 2 as `0..1`.
pub async fn commits_once_and_resumes(open: Open<'_>) {
    let table = open();
    assert_eq!(table.committed(3).await.expect("read"), None, "a new table has no commits");

    let first = order_file(ORDER_V1, 3, 0, 3, &[0, 1, 2]);
    assert_eq!(commit(&*table, 3, 0, 3, &first).await, CommitOutcome::Committed);
    let committed = table.committed(3).await.expect("read").expect("one commit");
    assert_eq!((committed.next_offset, committed.committed_at_ms), (3, COMMITTED_AT_MS));
    assert_eq!(committed.topic_id, "id-1");

    // A stale writer that also resumed from offset 0 loses and adds nothing.
    let stale = order_file(ORDER_V1, 3, 0, 5, &[0, 1, 2, 3, 4]);
    assert_eq!(commit(&*table, 3, 0, 5, &stale).await, CommitOutcome::Conflict);
    // So does one that thinks more was committed than the table says.
    assert_eq!(commit(&*table, 3, 7, 9, &stale).await, CommitOutcome::Conflict);

    let second = order_file(ORDER_V1, 3, 3, 9, &[4, 8]);
    assert_eq!(commit(&*table, 3, 3, 9, &second).await, CommitOutcome::Committed);

    // A fresh table object (another broker) resumes from the table alone.
    let other = open();
    assert_eq!(next_offset(&*other, 3).await, Some(9));
    assert_eq!(other.committed(2).await.expect("read"), None, "partitions are separate");

    // Another partition commits from 0 on its own, and leaves partition 3 where it was.
    let two = order_file(ORDER_V1, 2, 0, 1, &[0]);
    assert_eq!(commit(&*other, 2, 0, 1, &two).await, CommitOutcome::Committed);
    let ends = (next_offset(&*table, 2).await, next_offset(&*table, 3).await);
    assert_eq!(ends, (Some(1), Some(9)));
}

/// Four writers racing over one partition from the same offset: exactly one wins each of
/// three rounds. Then four writers of partitions 1 to 4 race, and all win. Leaves seven
/// winning commits (partition 0 at 6, the others at 1).
pub async fn races(open: Open<'_>) {
    let writers: Vec<Box<dyn Table>> = (0..4).map(|_| open()).collect();
    let mut from = 0;
    for round in 0..3 {
        let next = from + 2;
        let files: Vec<ParquetFile> = writers
            .iter()
            .map(|_| order_file(ORDER_V1, 0, from, next, &[from, from + 1]))
            .collect();
        let outcomes = futures::future::join_all(
            writers.iter().zip(&files).map(|(writer, f)| commit(&**writer, 0, from, next, f)),
        )
        .await;
        let won = outcomes.iter().filter(|o| **o == CommitOutcome::Committed).count();
        assert_eq!(won, 1, "round {round}: {outcomes:?}");
        from = next;
    }
    assert_eq!(next_offset(&*writers[0], 0).await, Some(from));

    let files: Vec<ParquetFile> = (1..=4).map(|p| order_file(ORDER_V1, p, 0, 1, &[0])).collect();
    let outcomes = futures::future::join_all(
        writers.iter().zip(&files).zip(1..).map(|((writer, f), p)| commit(&**writer, p, 0, 1, f)),
    )
    .await;
    assert!(outcomes.iter().all(|o| *o == CommitOutcome::Committed), "{outcomes:?}");
    for partition in 1..=4 {
        assert_eq!(next_offset(&*writers[0], partition).await, Some(1));
    }
}

/// Partition 0's commit adds a column (`ORDER_V2`) while partitions 1 to 3 append at the same
/// time: the appends that lose to the schema change try again on the new schema, and every
/// commit lands. Leaves five commits (partition 0 at 2, the others at 1).
pub async fn appends_go_through_a_concurrent_schema_change(open: Open<'_>) {
    let table = open();
    let first = order_file(ORDER_V1, 0, 0, 1, &[0]);
    assert_eq!(commit(&*table, 0, 0, 1, &first).await, CommitOutcome::Committed);
    let writers: Vec<Box<dyn Table>> = (0..4).map(|_| open()).collect();
    let files: Vec<(i32, i64, ParquetFile)> = (0..4)
        .map(|p| match p {
            0 => (0, 1, order_file(ORDER_V2, 0, 1, 2, &[1])),
            p => (p, 0, order_file(ORDER_V1, p, 0, 1, &[0])),
        })
        .collect();
    let outcomes = futures::future::join_all(
        writers.iter().zip(&files).map(|(w, (p, from, f))| commit(&**w, *p, *from, from + 1, f)),
    )
    .await;
    assert!(outcomes.iter().all(|o| *o == CommitOutcome::Committed), "{outcomes:?}");
    assert_eq!(next_offset(&*table, 0).await, Some(2));
}

/// What the tests that read a table back with another project's reader commit: partition 0's
/// offsets 0 and 1 (`0..2`, [`ORDER_V1`]), partition 1's offset 0 (`0..1`), partition 0's
/// offsets 2 and 4 (`2..5`) with `evolved` (a schema with more columns), then a stale commit
/// from 0 that must lose.
pub async fn commit_for_a_reader(table: &dyn Table, evolved: &str) {
    let commits = [
        (0, 0, 2, order_file(ORDER_V1, 0, 0, 2, &[0, 1])),
        (1, 0, 1, order_file(ORDER_V1, 1, 0, 1, &[0])),
        (0, 2, 5, order_file(evolved, 0, 2, 5, &[2, 4])),
    ];
    for (partition, from, next, file) in &commits {
        assert_eq!(commit(table, *partition, *from, *next, file).await, CommitOutcome::Committed);
    }
    let stale = order_file(evolved, 0, 0, 9, &[0, 1, 2, 3]);
    assert_eq!(commit(table, 0, 0, 9, &stale).await, CommitOutcome::Conflict);
}

/// Checks what a reader (`reader`, for the message) printed about the table
/// [`commit_for_a_reader`] made, as JSON with `columns` and `rows` sorted by partition and
/// offset: the Kafka columns, then the value's in name order with `note` (added by evolution)
/// last, and each committed row once. Returns the JSON for the format's own checks.
pub fn read_back(reader: &str, output: &std::process::Output) -> serde_json::Value {
    assert!(
        output.status.success(),
        "{reader} failed (is it in tests/requirements.txt installed?): {}",
        String::from_utf8_lossy(&output.stderr)
    );
    let read: serde_json::Value = serde_json::from_slice(&output.stdout).expect("JSON");
    let columns: Vec<&str> =
        read["columns"].as_array().expect("columns").iter().filter_map(|c| c.as_str()).collect();
    let value = ["attributes", "customer", "id", "tags", "note"];
    assert_eq!(
        columns,
        [&["_partition", "_offset", "_timestamp", "_key", "_headers"][..], &value].concat()
    );
    let rows = read["rows"].as_array().expect("rows");
    let keys: Vec<(i64, i64)> = rows
        .iter()
        .map(|row| {
            (row["_partition"].as_i64().expect("int"), row["_offset"].as_i64().expect("int"))
        })
        .collect();
    assert_eq!(keys, [(0, 0), (0, 1), (0, 2), (0, 4), (1, 0)], "each committed row once");
    assert_eq!(rows[0]["note"], serde_json::Value::Null, "an old row reads the new column as null");
    assert_eq!(rows[2]["note"], "n2");
    assert_eq!(rows[2]["tags"], serde_json::json!(["a", "b"]));
    assert_eq!(rows[2]["_timestamp"], "2023-11-14 22:13:20+00:00");
    read
}
