//! `skiff.table.partition.by` on Iceberg tables, checked with iceberg's own scan planning: a
//! partitioned table gets the spec asked for, a commit becomes one data file per partition
//! value in one snapshot, a filter on a partition source prunes files, and a table whose
//! config changed evolves its spec with its older files kept.

mod common;

use std::collections::BTreeSet;

use arrow_array::{Array, Int64Array, RecordBatch};
use common::{file, planned, PostgresCatalog, ORDER_V1};
use futures::TryStreamExt;
use iceberg::expr::Reference;
use iceberg::spec::{Datum, Transform};
use iceberg::table::Table as Iceberg;
use skiff_sink::table::{CommitOutcome, Location, PartitionBy};
use skiff_sink::testing::commit;
use skiff_sink_iceberg::{CatalogConfig, IcebergTable};

fn table(location: &Location, catalog: &CatalogConfig, partition_by: &str) -> IcebergTable {
    let partition_by = PartitionBy::parse(partition_by).expect("a valid partition.by");
    IcebergTable::new(location, catalog, "orders").expect("table").partitioned_by(partition_by)
}

async fn loaded(table: &IcebergTable) -> Iceberg {
    table.iceberg_table().await.expect("loads").expect("a table")
}

/// The `id` column of every row a scan with `filter` reads.
async fn ids(table: &Iceberg, filter: Option<iceberg::expr::Predicate>) -> Vec<i64> {
    let mut scan = table.scan().select(["id"]);
    if let Some(filter) = filter {
        scan = scan.with_filter(filter);
    }
    let stream = scan.build().expect("a scan").to_arrow().await.expect("a stream");
    let batches: Vec<RecordBatch> = stream.try_collect().await.expect("rows");
    let mut ids = Vec::new();
    for batch in batches {
        let column = batch.column(0).as_any().downcast_ref::<Int64Array>().expect("ids").clone();
        ids.extend((0..column.len()).map(|row| column.value(row)));
    }
    ids.sort_unstable();
    ids
}

async fn one_file_per_partition_value(location: Location, catalog: CatalogConfig) {
    let orders = table(&location, &catalog, "bucket(4, id), day(_timestamp)");
    let offsets: Vec<i64> = (0..20).collect();
    let rows = file(ORDER_V1, 0, 0, 20, &offsets);
    assert_eq!(commit(&orders, 0, 0, 20, &rows).await, CommitOutcome::Committed);
    // The range is committed once, whatever its number of files.
    assert_eq!(commit(&orders, 0, 0, 20, &rows).await, CommitOutcome::Conflict);

    let iceberg = loaded(&orders).await;
    let spec = iceberg.metadata().default_partition_spec();
    let fields: Vec<(&str, Transform)> =
        spec.fields().iter().map(|f| (f.name.as_str(), f.transform)).collect();
    assert_eq!(fields, [("id_bucket", Transform::Bucket(4)), ("_timestamp_day", Transform::Day)]);
    assert_eq!(iceberg.metadata().snapshots().count(), 1, "one commit, one snapshot");

    let files = planned(&iceberg, None).await;
    assert!(files.len() > 1 && files.len() <= 4, "one file per bucket: {files:?}");
    assert_eq!(files.iter().map(|(_, rows)| rows).sum::<u64>(), 20, "{files:?}");
    let buckets: BTreeSet<&str> = files
        .iter()
        .map(|(path, _)| {
            let (_, rest) = path.split_once("/data/id_bucket=").expect("a bucket directory");
            let (bucket, rest) = rest.split_once('/').expect("a day below the bucket");
            assert!(
                rest.starts_with("_timestamp_day=2023-11-14/0/00000000000000000000-"),
                "{path}"
            );
            bucket
        })
        .collect();
    assert_eq!(buckets.len(), files.len(), "each bucket in one file: {files:?}");
    assert_eq!(ids(&iceberg, None).await, offsets, "every row once");

    // A filter on a source column reads only the matching partition's file.
    let id_5 = Reference::new("id").equal_to(Datum::long(5));
    let pruned = planned(&iceberg, Some(id_5.clone())).await;
    assert_eq!(pruned.len(), 1, "{pruned:?}");
    assert_eq!(ids(&iceberg, Some(id_5)).await, [5]);
    let other_day =
        Reference::new("_timestamp").greater_than(Datum::timestamptz_micros(1_800_000_000_000_000));
    assert_eq!(planned(&iceberg, Some(other_day)).await, [], "no file of a later day");
}

#[tokio::test]
async fn a_local_partitioned_table_has_one_file_per_partition_value() {
    let (dir, location) = common::local();
    let (_, catalog) = common::sqlite_catalog(&dir);
    one_file_per_partition_value(location, catalog).await;
    std::fs::remove_dir_all(&dir).expect("cleaned up");
}

#[tokio::test]
async fn an_s3_partitioned_table_in_postgres_has_one_file_per_partition_value() {
    let postgres = PostgresCatalog::new().await;
    one_file_per_partition_value(common::s3(), postgres.config.clone()).await;
    postgres.drop_database().await;
}

/// A table created unpartitioned, then asked for `bucket(2, id)`: the new spec becomes the
/// default in a version of its own, later commits are split by it, the first file keeps the
/// spec it was written with, and every row reads once.
#[tokio::test]
async fn a_changed_partition_by_evolves_the_spec() {
    let (dir, location) = common::local();
    let (_, catalog) = common::sqlite_catalog(&dir);
    let plain = table(&location, &catalog, "");
    assert_eq!(
        commit(&plain, 0, 0, 4, &file(ORDER_V1, 0, 0, 4, &[0, 1, 2, 3])).await,
        CommitOutcome::Committed
    );
    assert!(loaded(&plain).await.metadata().default_partition_spec().is_unpartitioned());

    let bucketed = table(&location, &catalog, "bucket(2, id)");
    let later = file(ORDER_V1, 0, 4, 8, &[4, 5, 6, 7]);
    assert_eq!(commit(&bucketed, 0, 4, 8, &later).await, CommitOutcome::Committed);
    let iceberg = loaded(&bucketed).await;
    let metadata = iceberg.metadata();
    assert_eq!(metadata.partition_specs_iter().count(), 2);
    let spec = metadata.default_partition_spec();
    assert_eq!(spec.fields().len(), 1);
    assert_eq!(spec.fields()[0].transform, Transform::Bucket(2));
    let files = planned(&iceberg, None).await;
    let (old, new): (Vec<_>, Vec<_>) =
        files.iter().partition(|(path, _)| path.contains("/data/0/"));
    assert_eq!(old.len(), 1, "the unpartitioned file: {files:?}");
    assert_eq!(new.len(), 2, "one file per bucket: {files:?}");
    assert!(new.iter().all(|(path, _)| path.contains("/data/id_bucket=")), "{files:?}");
    assert_eq!(ids(&iceberg, None).await, (0..8).collect::<Vec<i64>>());

    // Back to unpartitioned: one more spec change, one file.
    assert_eq!(
        commit(&plain, 0, 8, 9, &file(ORDER_V1, 0, 8, 9, &[8])).await,
        CommitOutcome::Committed
    );
    let iceberg = loaded(&plain).await;
    assert!(iceberg.metadata().default_partition_spec().is_unpartitioned());
    assert_eq!(ids(&iceberg, None).await, (0..9).collect::<Vec<i64>>());
    std::fs::remove_dir_all(&dir).expect("cleaned up");
}
