//! The Delta Lake format against a real directory and a real S3 server (moto, started by
//! `scripts/services.sh`, named in `SKIFF_TEST_S3_ENDPOINT`): commits appear once as versions
//! with a `txn` per partition, a second commit from the same offset loses, a writer resumes
//! from the table, partitions commit independently (also at the same time), and a schema that
//! gains a column evolves the table.

mod common;

use std::collections::HashSet;

use common::{file, ORDER_V1, ORDER_V2};
use deltalake::DeltaTable;
use skiff_sink::table::{CommitOutcome, Location, Table};
use skiff_sink::testing::{self, commit, next_offset};
use skiff_sink_delta::DeltaLakeTable;

/// The table as deltalake itself loads it (the log, with no skiff code in between).
async fn delta(location: &Location) -> DeltaTable {
    let table = DeltaLakeTable::new(location, "orders").expect("table");
    table.delta_table().await.expect("loads").expect("a table")
}

/// Opens fresh objects of the `orders` table at `location`, for the shared suite.
fn opener(location: &Location) -> impl Fn() -> Box<dyn Table> + Sync + '_ {
    move || Box::new(DeltaLakeTable::new(location, "orders").expect("table")) as Box<dyn Table>
}

async fn commits_once_and_resumes(location: Location) {
    testing::commits_once_and_resumes(&opener(&location)).await;

    // The log holds the three committed files, each under its partition, and one txn per
    // partition; the stale writer's rows are nowhere.
    let delta = delta(&location).await;
    let state = delta.snapshot().expect("state");
    let paths: Vec<String> = state.log_data().iter().map(|f| f.path().into_owned()).collect();
    assert_eq!(paths.len(), 3, "{paths:?}");
    assert_eq!(paths.iter().filter(|path| path.starts_with("3/")).count(), 2);
    assert!(paths.iter().any(|path| path.starts_with("3/00000000000000000003-")), "{paths:?}");
    let log = delta.log_store();
    let txn = |app: &str| state.transaction_version(log.as_ref(), app.to_owned());
    assert_eq!(txn("skiff-orders-3").await.expect("txn"), Some(9));
    assert_eq!(txn("skiff-orders-2").await.expect("txn"), Some(1));
}

#[tokio::test]
async fn a_local_delta_table_commits_once_and_resumes() {
    let (dir, location) = common::local();
    commits_once_and_resumes(location).await;
    std::fs::remove_dir_all(&dir).expect("cleaned up");
}

#[tokio::test]
async fn an_s3_delta_table_commits_once_and_resumes() {
    commits_once_and_resumes(common::s3()).await;
}

/// Writers racing over one partition: one wins each round, the losers refused by deltalake's
/// `ConcurrentTransaction` check; writers of other partitions all win.
async fn races(location: Location) {
    testing::races(&opener(&location)).await;
    let state_files = delta(&location).await.snapshot().expect("state").log_data().num_files();
    assert_eq!(state_files, 3 + 4, "one file per winning commit");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn local_writers_of_one_partition_race_and_one_wins() {
    let (dir, location) = common::local();
    races(location).await;
    std::fs::remove_dir_all(&dir).expect("cleaned up");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn s3_writers_of_one_partition_race_and_one_wins() {
    races(common::s3()).await;
}

/// The check deltalake makes for us: a version built on a snapshot that another version with a
/// `txn` of the same app id has since passed fails with `ConcurrentTransaction`, while one with
/// another app id goes through.
#[tokio::test]
async fn deltalake_refuses_a_txn_of_an_app_id_that_moved_on() {
    use deltalake::kernel::transaction::{
        CommitBuilder, CommitConflictError, CommitProperties, TransactionError,
    };
    use deltalake::kernel::Transaction;
    use deltalake::protocol::{DeltaOperation, SaveMode};
    use deltalake::DeltaTableError;

    let (dir, location) = common::local();
    let table = DeltaLakeTable::new(&location, "orders").expect("table");
    let first = file(ORDER_V1, 0, 0, 1, &[0]);
    assert_eq!(commit(&table, 0, 0, 1, &first).await, CommitOutcome::Committed);
    let stale = delta(&location).await;
    let second = file(ORDER_V1, 0, 1, 2, &[1]);
    assert_eq!(commit(&table, 0, 1, 2, &second).await, CommitOutcome::Committed);

    let attempt = |app: &str| {
        let properties =
            CommitProperties::default().with_application_transaction(Transaction::new(app, 2));
        let operation =
            DeltaOperation::Write { mode: SaveMode::Append, partition_by: None, predicate: None };
        CommitBuilder::from(properties).with_actions(Vec::new()).build(
            Some(stale.snapshot().expect("state")),
            stale.log_store(),
            operation,
        )
    };
    let refused = attempt("skiff-orders-0").await.map(|done| done.version());
    assert!(
        matches!(
            refused,
            Err(DeltaTableError::Transaction {
                source: TransactionError::CommitConflict(
                    CommitConflictError::ConcurrentTransaction
                )
            })
        ),
        "{refused:?}"
    );
    let other = attempt("skiff-orders-1").await.map(|done| done.version());
    assert_eq!(other.expect("another app id commits"), 3);
    std::fs::remove_dir_all(&dir).expect("cleaned up");
}

/// A file with a new column merges it into the table schema, nullable.
#[tokio::test]
async fn a_new_column_evolves_the_table() {
    let (dir, location) = common::local();
    let table = DeltaLakeTable::new(&location, "orders").expect("table");
    let old = file(ORDER_V1, 0, 0, 2, &[0, 1]);
    assert_eq!(commit(&table, 0, 0, 2, &old).await, CommitOutcome::Committed);
    let columns = |delta: &DeltaTable| -> HashSet<String> {
        let schema = delta.snapshot().expect("state").schema();
        schema.fields().map(|field| field.name().clone()).collect()
    };
    let before = columns(&delta(&location).await);
    assert!(before.contains("_offset") && before.contains("customer") && !before.contains("note"));

    let new = file(ORDER_V2, 0, 2, 3, &[2]);
    assert_eq!(commit(&table, 0, 2, 3, &new).await, CommitOutcome::Committed);
    let evolved = delta(&location).await;
    let after = columns(&evolved);
    assert_eq!(after.difference(&before).collect::<Vec<_>>(), vec!["note"]);
    let schema = evolved.snapshot().expect("state").schema();
    let note = schema.field("note").expect("note");
    assert!(note.is_nullable());

    // A file with the old schema still commits, and changes nothing.
    let version = evolved.version();
    let again = file(ORDER_V1, 0, 3, 4, &[3]);
    assert_eq!(commit(&table, 0, 3, 4, &again).await, CommitOutcome::Committed);
    assert_eq!(delta(&location).await.version(), version.map(|v| v + 1), "one version: the data");
    std::fs::remove_dir_all(&dir).expect("cleaned up");
}

/// deltalake writes a checkpoint every 100 versions (the table default); the `txn` versions
/// survive it, so a writer resuming from a checkpointed table starts where it should.
#[tokio::test]
async fn txn_versions_survive_a_checkpoint() {
    let (dir, location) = common::local();
    let table = DeltaLakeTable::new(&location, "orders").expect("table");
    // Version 0 creates the table, versions 1 to 100 are commits of two partitions in turn.
    for version in 0..100 {
        let (partition, from) = (version % 2, i64::from(version / 2));
        let f = file(ORDER_V1, partition, from, from + 1, &[from]);
        assert_eq!(commit(&table, partition, from, from + 1, &f).await, CommitOutcome::Committed);
    }
    // deltalake checkpoints version 99 (the 100th).
    let checkpoint = dir.join("orders/_delta_log/00000000000000000099.checkpoint.parquet");
    assert!(checkpoint.exists(), "no checkpoint at version 99");
    let fresh = DeltaLakeTable::new(&location, "orders").expect("table");
    assert_eq!((next_offset(&fresh, 0).await, next_offset(&fresh, 1).await), (Some(50), Some(50)));
    let stale = file(ORDER_V1, 1, 49, 51, &[49, 50]);
    assert_eq!(commit(&fresh, 1, 49, 51, &stale).await, CommitOutcome::Conflict);
    std::fs::remove_dir_all(&dir).expect("cleaned up");
}

/// One partition's commit adds a column while others append at the same time: the appends
/// that lose to the schema change try again on the new schema, and every commit lands.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn appends_go_through_a_concurrent_schema_change() {
    let (dir, location) = common::local();
    testing::appends_go_through_a_concurrent_schema_change(&opener(&location)).await;
    let delta = delta(&location).await;
    assert!(delta.snapshot().expect("state").schema().field("note").is_some());
    assert_eq!(delta.snapshot().expect("state").log_data().num_files(), 5);
    std::fs::remove_dir_all(&dir).expect("cleaned up");
}
