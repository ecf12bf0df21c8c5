//! An independent reader: pyiceberg's `SqlCatalog` (tests/requirements.txt) on the same
//! catalog database reads a table this crate wrote, with its schema evolved mid-way, and sees
//! each commit as a snapshot with its offsets. Once with a SQLite catalog and a local table,
//! once with a Postgres catalog and the table on moto S3. Skipped without the test venv
//! (scripts/test.sh creates it).

mod common;

use std::process::Command;

use common::{file, PostgresCatalog, ORDER_V1, ORDER_V2_NESTED as ORDER_V2};
use skiff_sink::table::{Commit, CommitOutcome, Location, Table};
use skiff_sink_iceberg::{CatalogConfig, IcebergTable};

const READ: &str = r#"
import json, os, sys
from pyiceberg.catalog.sql import SqlCatalog
properties = {"uri": sys.argv[1]}
endpoint = os.environ.get("SKIFF_TEST_S3_ENDPOINT")
if endpoint:
    properties.update({
        "s3.endpoint": endpoint,
        "s3.access-key-id": os.environ.get("AWS_ACCESS_KEY_ID", "test"),
        "s3.secret-access-key": os.environ.get("AWS_SECRET_ACCESS_KEY", "test"),
        "s3.region": os.environ.get("AWS_REGION", "us-east-1"),
    })
catalog = SqlCatalog("skiff", **properties)
table = catalog.load_table(("skiff", "orders"))
data = table.scan().to_arrow()
rows = sorted(data.to_pylist(), key=lambda row: (row["_partition"], row["_offset"]))
summaries = sorted(
    ({k: v for k, v in s.summary.additional_properties.items() if k.startswith("skiff.")}
     for s in table.snapshots()),
    key=lambda summary: (int(summary["skiff.partition"]), int(summary["skiff.from_offset"])),
)
properties = {k: v for k, v in table.properties.items() if k.startswith("skiff.")}
print(json.dumps({"columns": data.column_names, "rows": rows, "summaries": summaries,
                  "properties": properties}, default=str))
"#;

/// Commits three files (the schema evolving at the third) and a stale one, then reads the
/// table with pyiceberg; `uri` is the catalog as SQLAlchemy names it.
async fn read_back(location: &Location, catalog: &CatalogConfig, uri: &str) {
    let Some(python) = common::venv_python() else {
        eprintln!("SKIPPED pyiceberg reader: no test venv");
        return;
    };
    let table = IcebergTable::new(location, catalog, "orders").expect("table");
    let commits = [
        (0, 0, 2, file(ORDER_V1, 0, 0, 2, &[0, 1])),
        (1, 0, 1, file(ORDER_V1, 1, 0, 1, &[0])),
        (0, 2, 5, file(ORDER_V2, 0, 2, 5, &[2, 4])),
    ];
    for (partition, from, next, file) in &commits {
        let commit = Commit { partition: *partition, from: *from, next: *next, file };
        assert_eq!(table.commit(commit).await.expect("commit"), CommitOutcome::Committed);
    }
    let stale = file(ORDER_V2, 0, 0, 9, &[0, 1, 2, 3]);
    let commit = Commit { partition: 0, from: 0, next: 9, file: &stale };
    assert_eq!(table.commit(commit).await.expect("commit"), CommitOutcome::Conflict);

    let output = Command::new(&python).arg("-c").arg(READ).arg(uri).output().expect("python runs");
    assert!(
        output.status.success(),
        "pyiceberg failed (is pyiceberg in tests/requirements.txt installed?): {}",
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
    assert_eq!(rows[0]["customer"], serde_json::json!({"name": "c0", "email": null}));
    assert_eq!(rows[2]["note"], "n2");
    assert_eq!(rows[2]["customer"], serde_json::json!({"name": "c2", "email": "e2"}));
    assert_eq!(rows[2]["tags"], serde_json::json!(["a", "b"]));
    assert_eq!(rows[2]["id"], 2);
    assert_eq!(rows[2]["_key"], "b'k'");
    assert_eq!(rows[2]["_timestamp"], "2023-11-14 22:13:20+00:00");
    let summaries = read["summaries"].as_array().expect("summaries");
    let ranges: Vec<[&str; 3]> = summaries
        .iter()
        .map(|s| {
            ["skiff.partition", "skiff.from_offset", "skiff.next_offset"]
                .map(|key| s[key].as_str().unwrap_or_default())
        })
        .collect();
    assert_eq!(
        ranges,
        [["0", "0", "2"], ["0", "2", "5"], ["1", "0", "1"]],
        "a snapshot per commit"
    );
    assert_eq!(read["properties"]["skiff.partition.0.next-offset"], "5");
    assert_eq!(read["properties"]["skiff.partition.1.next-offset"], "1");
}

#[tokio::test]
async fn pyiceberg_reads_a_local_table_from_the_sqlite_catalog() {
    let (dir, location) = common::local();
    let (_, catalog) = common::sqlite_catalog(&dir);
    let uri = format!("sqlite:///{}", dir.join("catalog.db").display());
    read_back(&location, &catalog, &uri).await;
    std::fs::remove_dir_all(&dir).expect("cleaned up");
}

#[tokio::test]
async fn pyiceberg_reads_an_s3_table_from_the_postgres_catalog() {
    let postgres = PostgresCatalog::new().await;
    let uri = postgres.url.replacen("postgres://", "postgresql+psycopg2://", 1);
    read_back(&common::s3(), &postgres.config, &uri).await;
    postgres.drop_database().await;
}
