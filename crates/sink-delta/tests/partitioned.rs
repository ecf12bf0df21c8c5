//! `skiff.table.partition.by` on Delta tables, checked with deltalake's own log reading: the
//! table gets its partition columns (derived ones typed), a commit becomes one file per
//! partition value in one version, the files leave the partition columns to the log, a writer
//! resumes from a partitioned table, and a table created otherwise refuses other partitions.

mod common;

use std::collections::{BTreeSet, HashMap};

use bytes::Bytes;
use common::{file, ORDER_V1};
use deltalake::kernel::DataType;
use deltalake::parquet::file::reader::{FileReader, SerializedFileReader};
use deltalake::DeltaTable;
use object_store::path::Path;
use object_store::ObjectStoreExt;
use skiff_sink::table::{CommitOutcome, Location, PartitionBy, Table};
use skiff_sink::testing::{commit, next_offset, COMMITTED_AT_MS};
use skiff_sink_delta::DeltaLakeTable;

fn table(location: &Location, partition_by: &str) -> DeltaLakeTable {
    let partition_by = PartitionBy::parse(partition_by).expect("a valid partition.by");
    DeltaLakeTable::new(location, "orders").expect("table").partitioned_by(partition_by)
}

async fn loaded(table: &DeltaLakeTable) -> DeltaTable {
    table.delta_table().await.expect("loads").expect("a table")
}

/// Every committed file: its path, partition values and row count.
type Files = Vec<(String, HashMap<String, Option<String>>, i64)>;

fn files(delta: &DeltaTable) -> Files {
    let state = delta.snapshot().expect("state");
    let files = state.log_data();
    files
        .iter()
        .map(|file| {
            let rows = file.num_records().and_then(|n| i64::try_from(n).ok()).unwrap_or(-1);
            (file.path().into_owned(), file.partition_values_map(), rows)
        })
        .collect()
}

/// The column names of a committed data file, read from its footer.
async fn columns_of(delta: &DeltaTable, path: &str) -> Vec<String> {
    let store = delta.log_store().object_store(None);
    let bytes: Bytes =
        store.get(&Path::from(path)).await.expect("get").bytes().await.expect("bytes");
    let reader = SerializedFileReader::new(bytes).expect("a Parquet file");
    let schema = reader.metadata().file_metadata().schema_descr_ptr();
    schema.root_schema().get_fields().iter().map(|field| field.name().to_owned()).collect()
}

async fn one_file_per_partition_value(location: Location) {
    let by = "year(_timestamp), month(_timestamp), day(_timestamp), hour(_timestamp), id";
    let orders = table(&location, by);
    let offsets: Vec<i64> = (0..6).collect();
    let rows = file(ORDER_V1, 0, 0, 6, &offsets);
    assert_eq!(commit(&orders, 0, 0, 6, &rows).await, CommitOutcome::Committed);
    // The range is committed once, whatever its number of files.
    assert_eq!(commit(&orders, 0, 0, 6, &rows).await, CommitOutcome::Conflict);

    let delta = loaded(&orders).await;
    let state = delta.snapshot().expect("state");
    let names = ["_timestamp_year", "_timestamp_month", "_timestamp_day", "_timestamp_hour", "id"];
    assert_eq!(state.metadata().partition_columns().to_vec(), names.map(String::from).to_vec());
    let schema = state.schema();
    let type_of = |name: &str| schema.field(name).expect(name).data_type().clone();
    assert_eq!(type_of("_timestamp_year"), DataType::INTEGER);
    assert_eq!(type_of("_timestamp_month"), DataType::STRING);
    assert_eq!(type_of("_timestamp_day"), DataType::DATE);
    assert_eq!(type_of("_timestamp_hour"), DataType::STRING);
    assert_eq!(delta.version(), Some(1), "created, then one version for the commit");

    // The rows' time is 1_700_000_000_000 ms: 2023-11-14T22:13:20Z.
    let files = files(&delta);
    assert_eq!(files.len(), 6, "one file per id: {files:?}");
    let ids: BTreeSet<String> = files
        .iter()
        .map(|(path, values, rows)| {
            assert_eq!(*rows, 1, "{path}");
            let value = |name: &str| values.get(name).cloned().flatten().expect(name);
            assert_eq!(value("_timestamp_year"), "2023");
            assert_eq!(value("_timestamp_month"), "2023-11");
            assert_eq!(value("_timestamp_day"), "2023-11-14");
            assert_eq!(value("_timestamp_hour"), "2023-11-14-22");
            let id = value("id");
            let directory = format!(
                "_timestamp_year=2023/_timestamp_month=2023-11/_timestamp_day=2023-11-14/\
                 _timestamp_hour=2023-11-14-22/id={id}/0/00000000000000000000-"
            );
            assert!(path.starts_with(&directory), "{path}");
            id
        })
        .collect();
    assert_eq!(ids, offsets.iter().map(i64::to_string).collect());

    // Partition values are in the log only: the file has the other columns.
    let columns = columns_of(&delta, &files[0].0).await;
    assert!(columns.contains(&"_offset".to_owned()) && columns.contains(&"customer".to_owned()));
    assert!(!columns.iter().any(|c| c == "id" || c.starts_with("_timestamp_")), "{columns:?}");

    // A writer resumes from the partitioned table, and finds the commit facts of its files.
    let fresh = table(&location, by);
    assert_eq!(next_offset(&fresh, 0).await, Some(6));
    let committed = fresh.committed(0).await.expect("read").expect("committed");
    assert_eq!((committed.committed_at_ms, committed.topic_id.as_str()), (COMMITTED_AT_MS, "id-1"));
    let more = file(ORDER_V1, 0, 6, 8, &[6, 7]);
    assert_eq!(commit(&fresh, 0, 6, 8, &more).await, CommitOutcome::Committed);
    assert_eq!(self::files(&loaded(&fresh).await).len(), 8);
}

#[tokio::test]
async fn a_local_partitioned_table_has_one_file_per_partition_value() {
    let (dir, location) = common::local();
    one_file_per_partition_value(location).await;
    std::fs::remove_dir_all(&dir).expect("cleaned up");
}

#[tokio::test]
async fn an_s3_partitioned_table_has_one_file_per_partition_value() {
    one_file_per_partition_value(common::s3()).await;
}

/// Delta tables keep the partition columns they were created with: a writer asking for others
/// fails with a message saying so (and commits nothing), in both directions.
#[tokio::test]
async fn a_table_refuses_other_partition_columns() {
    let (dir, location) = common::local();
    let rows = file(ORDER_V1, 0, 0, 2, &[0, 1]);
    assert_eq!(
        commit(&table(&location, "day(_timestamp)"), 0, 0, 2, &rows).await,
        CommitOutcome::Committed
    );
    let more = file(ORDER_V1, 0, 2, 3, &[2]);
    for other in ["month(_timestamp)", ""] {
        let refused = table(&location, other)
            .commit(skiff_sink::table::Commit { partition: 0, from: 2, next: 3, file: &more })
            .await
            .expect_err(other);
        assert!(refused.to_string().contains("keeps the partition columns"), "{refused}");
    }
    assert_eq!(next_offset(&table(&location, "day(_timestamp)"), 0).await, Some(2), "no commit");
    std::fs::remove_dir_all(&dir).expect("cleaned up");
}

/// Bucket and truncate have no Delta counterpart: refused with the reason, nothing written.
#[tokio::test]
async fn bucket_partitions_are_refused() {
    let (dir, location) = common::local();
    let rows = file(ORDER_V1, 0, 0, 1, &[0]);
    let orders = table(&location, "bucket(4, id)");
    let refused = orders
        .commit(skiff_sink::table::Commit { partition: 0, from: 0, next: 1, file: &rows })
        .await
        .expect_err("refused");
    assert!(refused.to_string().contains("no bucket or truncate"), "{refused}");
    assert!(orders.delta_table().await.expect("reads").is_none());
    std::fs::remove_dir_all(&dir).expect("cleaned up");
}
