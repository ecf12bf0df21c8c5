//! The Delta Lake format against a real directory and a real S3 server (moto, started by
//! `scripts/services.sh`, named in `SKIFF_TEST_S3_ENDPOINT`): commits appear once as versions
//! with a `txn` per partition, a second commit from the same offset loses, a writer resumes
//! from the table, partitions commit independently (also at the same time), and a schema that
//! gains a column evolves the table.

mod common;

use std::collections::HashSet;

use common::{file, ORDER_V1, ORDER_V2};
use deltalake::DeltaTable;
use skiff_sink::parquet::ParquetFile;
use skiff_sink::table::{Commit, CommitOutcome, Location, Table};
use skiff_sink_delta::DeltaLakeTable;

async fn commit(
    table: &DeltaLakeTable,
    partition: i32,
    from: i64,
    next: i64,
    file: &ParquetFile,
) -> CommitOutcome {
    table.commit(Commit { partition, from, next, file }).await.expect("commit")
}

async fn next_offset(table: &DeltaLakeTable, partition: i32) -> Option<i64> {
    table.committed(partition).await.expect("read").map(|committed| committed.next_offset)
}

/// The table as deltalake itself loads it (the log, with no skiff code in between).
async fn delta(location: &Location) -> DeltaTable {
    let table = DeltaLakeTable::new(location, "orders").expect("table");
    table.delta_table().await.expect("loads").expect("a table")
}

async fn commits_once_and_resumes(location: Location) {
    let table = DeltaLakeTable::new(&location, "orders").expect("table");
    assert_eq!(table.committed(3).await.expect("read"), None, "a new table has no commits");

    let first = file(ORDER_V1, 3, 0, 3, &[0, 1, 2]);
    assert_eq!(commit(&table, 3, 0, 3, &first).await, CommitOutcome::Committed);
    let committed = table.committed(3).await.expect("read").expect("one commit");
    assert_eq!((committed.next_offset, committed.committed_at_ms), (3, common::COMMITTED_AT_MS));
    assert_eq!(committed.topic_id, "id-1");

    // A stale writer that also resumed from offset 0 loses and adds nothing.
    let stale = file(ORDER_V1, 3, 0, 5, &[0, 1, 2, 3, 4]);
    assert_eq!(commit(&table, 3, 0, 5, &stale).await, CommitOutcome::Conflict);
    // So does one that thinks more was committed than the table says.
    assert_eq!(commit(&table, 3, 7, 9, &stale).await, CommitOutcome::Conflict);

    let second = file(ORDER_V1, 3, 3, 9, &[4, 8]);
    assert_eq!(commit(&table, 3, 3, 9, &second).await, CommitOutcome::Committed);

    // A fresh table object (another broker) resumes from the log alone.
    let other = DeltaLakeTable::new(&location, "orders").expect("table");
    assert_eq!(next_offset(&other, 3).await, Some(9));
    assert_eq!(other.committed(2).await.expect("read"), None, "partitions are separate");

    // Another partition commits from 0 on its own, and leaves partition 3 where it was.
    let two = file(ORDER_V1, 2, 0, 1, &[0]);
    assert_eq!(commit(&other, 2, 0, 1, &two).await, CommitOutcome::Committed);
    assert_eq!((next_offset(&table, 2).await, next_offset(&table, 3).await), (Some(1), Some(9)));

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

/// Writers racing over one partition from the same offset: exactly one wins each round, on a
/// directory and on S3. Racing writers of other partitions all win.
async fn races(location: Location) {
    let writers: Vec<DeltaLakeTable> =
        (0..4).map(|_| DeltaLakeTable::new(&location, "orders").expect("table")).collect();
    let mut from = 0;
    for round in 0..3 {
        let next = from + 2;
        let files: Vec<ParquetFile> =
            writers.iter().map(|_| file(ORDER_V1, 0, from, next, &[from, from + 1])).collect();
        let outcomes = futures::future::join_all(
            writers.iter().zip(&files).map(|(writer, f)| commit(writer, 0, from, next, f)),
        )
        .await;
        let won = outcomes.iter().filter(|o| **o == CommitOutcome::Committed).count();
        assert_eq!(won, 1, "round {round}: {outcomes:?}");
        from = next;
    }
    assert_eq!(next_offset(&writers[0], 0).await, Some(from));

    let files: Vec<ParquetFile> = (1..=4).map(|p| file(ORDER_V1, p, 0, 1, &[0])).collect();
    let outcomes = futures::future::join_all(
        writers.iter().zip(&files).zip(1..).map(|((writer, f), p)| commit(writer, p, 0, 1, f)),
    )
    .await;
    assert!(outcomes.iter().all(|o| *o == CommitOutcome::Committed), "{outcomes:?}");
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
    let table = DeltaLakeTable::new(&location, "orders").expect("table");
    let first = file(ORDER_V1, 0, 0, 1, &[0]);
    assert_eq!(commit(&table, 0, 0, 1, &first).await, CommitOutcome::Committed);
    let writers: Vec<DeltaLakeTable> =
        (0..4).map(|_| DeltaLakeTable::new(&location, "orders").expect("table")).collect();
    let files: Vec<(i32, i64, ParquetFile)> = (0..4)
        .map(|p| match p {
            0 => (0, 1, file(ORDER_V2, 0, 1, 2, &[1])),
            p => (p, 0, file(ORDER_V1, p, 0, 1, &[0])),
        })
        .collect();
    let outcomes = futures::future::join_all(
        writers.iter().zip(&files).map(|(w, (p, from, f))| commit(w, *p, *from, from + 1, f)),
    )
    .await;
    assert!(outcomes.iter().all(|o| *o == CommitOutcome::Committed), "{outcomes:?}");
    let delta = delta(&location).await;
    assert!(delta.snapshot().expect("state").schema().field("note").is_some());
    assert_eq!(delta.snapshot().expect("state").log_data().num_files(), 5);
    std::fs::remove_dir_all(&dir).expect("cleaned up");
}
