//! An independent reader: the `deltalake` Python package (delta-rs, tests/requirements.txt)
//! reads a table this crate wrote, with its schema evolved mid-way, and reports the same
//! `txn` versions. Skipped without the test venv (scripts/test.sh creates it).

mod common;

use std::process::Command;

use common::{file, ORDER_V1, ORDER_V2};
use skiff_sink::table::{Commit, CommitOutcome, Table};
use skiff_sink_delta::DeltaLakeTable;

const READ: &str = r#"
import json, sys
from deltalake import DeltaTable
table = DeltaTable(sys.argv[1])
data = table.to_pyarrow_table()
rows = sorted(data.to_pylist(), key=lambda row: (row["_partition"], row["_offset"]))
txn = {app: table.transaction_version(app) for app in sys.argv[2:]}
print(json.dumps({"columns": data.column_names, "rows": rows, "txn": txn}, default=str))
"#;

#[tokio::test]
async fn the_deltalake_python_package_reads_the_table() {
    let Some(python) = common::venv_python() else {
        eprintln!("SKIPPED the_deltalake_python_package_reads_the_table: no test venv");
        return;
    };
    let (dir, location) = common::local();
    let table = DeltaLakeTable::new(&location, "orders").expect("table");
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

    let output = Command::new(&python)
        .arg("-c")
        .arg(READ)
        .arg(dir.join("orders"))
        .args(["skiff-orders-0", "skiff-orders-1", "skiff-orders-2"])
        .output()
        .expect("python runs");
    std::fs::remove_dir_all(&dir).expect("cleaned up");
    assert!(
        output.status.success(),
        "deltalake failed (is deltalake in tests/requirements.txt installed?): {}",
        String::from_utf8_lossy(&output.stderr)
    );
    let read: serde_json::Value = serde_json::from_slice(&output.stdout).expect("JSON");
    let columns: Vec<&str> =
        read["columns"].as_array().expect("columns").iter().filter_map(|c| c.as_str()).collect();
    // JSON Schema properties come in name order; `note`, added by evolution, comes last.
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
    assert_eq!(rows[2]["customer"], serde_json::json!({"name": "c2"}));
    assert_eq!(rows[2]["tags"], serde_json::json!(["a", "b"]));
    assert_eq!(rows[2]["_timestamp"], "2023-11-14 22:13:20+00:00");
    assert_eq!(
        read["txn"],
        serde_json::json!({"skiff-orders-0": 5, "skiff-orders-1": 1, "skiff-orders-2": null})
    );
}
