//! An independent reader: pyiceberg's `SqlCatalog` (tests/requirements.txt) on the same
//! catalog database reads a table this crate wrote, with its schema evolved mid-way, and sees
//! each commit as a snapshot with its offsets. Once with a SQLite catalog and a local table,
//! once with a Postgres catalog and the table on moto S3. Skipped without the test venv
//! (scripts/test.sh creates it).

mod common;

use std::process::Command;

use common::{PostgresCatalog, ORDER_V2_NESTED as ORDER_V2};
use skiff_sink::table::Location;
use skiff_sink::testing;
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
    testing::commit_for_a_reader(&table, ORDER_V2).await;

    let output = Command::new(&python).arg("-c").arg(READ).arg(uri).output().expect("python runs");
    let read = testing::read_back("pyiceberg", &output);
    let rows = read["rows"].as_array().expect("rows");
    assert_eq!(rows[0]["customer"], serde_json::json!({"name": "c0", "email": null}));
    assert_eq!(rows[2]["customer"], serde_json::json!({"name": "c2", "email": "e2"}));
    assert_eq!(rows[2]["id"], 2);
    assert_eq!(rows[2]["_key"], "b'k'");
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
