//! An independent reader: the `deltalake` Python package (delta-rs, tests/requirements.txt)
//! reads a table this crate wrote, with its schema evolved mid-way, and reports the same
//! `txn` versions. Skipped without the test venv (scripts/test.sh creates it).

mod common;

use std::process::Command;

use common::ORDER_V2;
use skiff_sink::testing;
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
    testing::commit_for_a_reader(&table, ORDER_V2).await;

    let output = Command::new(&python)
        .arg("-c")
        .arg(READ)
        .arg(dir.join("orders"))
        .args(["skiff-orders-0", "skiff-orders-1", "skiff-orders-2"])
        .output()
        .expect("python runs");
    std::fs::remove_dir_all(&dir).expect("cleaned up");
    let read = testing::read_back("deltalake", &output);
    let rows = read["rows"].as_array().expect("rows");
    assert_eq!(rows[2]["customer"], serde_json::json!({"name": "c2"}));
    assert_eq!(
        read["txn"],
        serde_json::json!({"skiff-orders-0": 5, "skiff-orders-1": 1, "skiff-orders-2": null})
    );
}
