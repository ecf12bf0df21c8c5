//! Engine-specific tests: what the shared conformance suite cannot see (files, several handles
//! on one file as several brokers would have, the schema, options).

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

use bytes::Bytes;
use rusqlite::Connection;
use skiff_storage::testsuite::batch;
use skiff_storage::{Storage, StorageError, TopicPartition, TopicSpec};

use crate::SqliteEngine;

/// A new engine on a new file in its own temporary directory, removed when the engine drops.
pub(crate) fn fresh_storage() -> Storage {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut engine = SqliteEngine::open(&dir.path().join("skiff.db"), "").expect("open");
    engine.temp_dir = Some(dir);
    Storage::from_engine(engine)
}

fn open(path: &Path) -> Storage {
    crate::open(path, "").expect("open")
}

async fn create(storage: &Storage, name: &str, partitions: i32) {
    let spec = TopicSpec { name: name.into(), partitions, configs: BTreeMap::new() };
    storage.meta.create_topic(spec).await.expect("create topic");
}

fn count(path: &Path, sql: &str) -> i64 {
    let conn = Connection::open(path).expect("open");
    conn.query_row(sql, [], |row| row.get(0)).expect("count")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn data_survives_close_and_reopen() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("skiff.db");
    let partition = TopicPartition::new("t", 1);
    let (written, id, version) = {
        let storage = open(&path);
        create(&storage, "t", 2).await;
        storage.log.append(&partition, vec![batch(3), batch(2)]).await.expect("append");
        storage.log.delete_records(&partition, 1).await.expect("delete records");
        let version = storage.state.put("k", Bytes::from_static(b"v"), None).await.expect("put");
        let read = storage.log.read(&partition, 1, usize::MAX).await.expect("read");
        let id = storage.meta.topic("t").await.expect("topic").expect("exists").id;
        (read, id, version)
    };

    let storage = open(&path);
    let read = storage.log.read(&partition, 1, usize::MAX).await.expect("read");
    assert_eq!(read, written);
    assert_eq!((read.watermarks.log_start, read.watermarks.high), (1, 5));
    let topic = storage.meta.topic("t").await.expect("topic").expect("exists");
    assert_eq!((topic.id, topic.partitions), (id, 2));
    let stored = storage.state.get("k").await.expect("get").expect("exists");
    assert_eq!((stored.value.as_ref(), stored.version), (&b"v"[..], version));
    let next = storage.state.put("k", Bytes::from_static(b"w"), Some(version)).await;
    assert!(next.expect("put") > version, "versions keep growing across reopen");
    assert_eq!(
        storage.log.append(&partition, vec![batch(1)]).await.expect("append").base_offset,
        5
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn two_handles_on_one_file_get_unique_contiguous_offsets() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("shared.db");
    let brokers = [open(&path), open(&path)];
    create(&brokers[0], "t", 1).await;
    let partition = TopicPartition::new("t", 0);
    let mut tasks = Vec::new();
    for storage in brokers.iter().cycle().take(8) {
        let (storage, partition) = (storage.clone(), partition.clone());
        tasks.push(tokio::spawn(async move {
            let mut bases = Vec::new();
            for _ in 0..25 {
                let appended = storage.log.append(&partition, vec![batch(3)]).await;
                bases.push(appended.expect("append").base_offset);
            }
            bases
        }));
    }
    let mut bases = BTreeSet::new();
    for task in tasks {
        for base in task.await.expect("task") {
            assert!(bases.insert(base), "offset {base} handed out twice");
        }
    }
    assert_eq!(bases, (0..600).step_by(3).collect::<BTreeSet<i64>>());
    for storage in &brokers {
        let read = storage.log.read(&partition, 0, usize::MAX).await.expect("read");
        assert_eq!(read.watermarks.high, 600);
        let stored: Vec<i64> = read
            .batches
            .iter()
            .map(|bytes| skiff_protocol::batch::base_offset(bytes).expect("base offset"))
            .collect();
        assert_eq!(stored, (0..600).step_by(3).collect::<Vec<i64>>());
    }
}

#[tokio::test]
async fn schema_version_is_recorded_and_not_reapplied() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("skiff.db");
    let history = |path: &Path| -> Vec<(i64, String, i64)> {
        let conn = Connection::open(path).expect("open");
        let mut statement = conn
            .prepare("SELECT version, name, applied_at_ms FROM schema_version ORDER BY version")
            .expect("prepare");
        let rows = statement.query_map([], |row| Ok((row.get(0)?, row.get(1)?, row.get(2)?)));
        rows.expect("query").collect::<rusqlite::Result<_>>().expect("rows")
    };
    drop(open(&path));
    let first = history(&path);
    assert_eq!(first.len(), crate::sql::MIGRATIONS.len());
    assert_eq!(first.last().map(|row| row.0), Some(crate::schema::latest_version()));

    std::thread::sleep(std::time::Duration::from_millis(5));
    let storage = open(&path);
    create(&storage, "after-reopen", 1).await;
    assert_eq!(history(&path), first, "reopening applies nothing again");

    let mut conn = Connection::open(&path).expect("open");
    assert!(crate::schema::migrate(&mut conn).expect("migrate").is_empty());
}

#[test]
fn a_newer_schema_is_refused() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("skiff.db");
    drop(open(&path));
    let conn = Connection::open(&path).expect("open");
    conn.execute("INSERT INTO schema_version VALUES (999, 'future', 0)", []).expect("insert");
    let opened = crate::open(&path, "");
    assert!(matches!(opened, Err(StorageError::InvalidArgument(_))), "newer schema opened");
}

#[test]
fn brokers_opening_a_new_file_at_once_migrate_it_once() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("race.db");
    let barrier = std::sync::Barrier::new(4);
    std::thread::scope(|scope| {
        let openers: Vec<_> = (0..4)
            .map(|_| {
                scope.spawn(|| {
                    barrier.wait();
                    crate::open(&path, "").map(drop)
                })
            })
            .collect();
        for opener in openers {
            opener.join().expect("thread").expect("open");
        }
    });
    let migrations = i64::try_from(crate::sql::MIGRATIONS.len()).expect("small");
    assert_eq!(count(&path, "SELECT count(*) FROM schema_version"), migrations);
}

#[tokio::test]
async fn delete_topic_removes_its_rows() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("skiff.db");
    let storage = open(&path);
    let spec = TopicSpec {
        name: "gone".into(),
        partitions: 2,
        configs: BTreeMap::from([("cleanup.policy".into(), "delete".into())]),
    };
    storage.meta.create_topic(spec).await.expect("create");
    create(&storage, "kept", 1).await;
    for partition in [TopicPartition::new("gone", 0), TopicPartition::new("kept", 0)] {
        storage.log.append(&partition, vec![batch(2), batch(1)]).await.expect("append");
    }
    storage.meta.delete_topic("gone").await.expect("delete");
    assert_eq!(count(&path, "SELECT count(*) FROM batches"), 2, "only kept's batches remain");
    assert_eq!(count(&path, "SELECT count(*) FROM partitions"), 1);
    assert_eq!(count(&path, "SELECT count(*) FROM topic_configs"), 0);
    assert_eq!(count(&path, "SELECT count(*) FROM topics"), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_database_locked_by_another_process_is_unavailable() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("skiff.db");
    let storage = crate::open(&path, "busy_timeout_ms=50").expect("open");
    create(&storage, "t", 1).await;
    let partition = TopicPartition::new("t", 0);

    let other = Connection::open(&path).expect("open");
    other.execute_batch("BEGIN IMMEDIATE").expect("lock");
    let blocked = storage.log.append(&partition, vec![batch(1)]).await;
    assert!(matches!(blocked, Err(StorageError::Unavailable(_))), "{blocked:?}");
    let marks = storage.log.watermarks(&partition).await.expect("reads still work");
    assert_eq!(marks.high, 0);

    other.execute_batch("COMMIT").expect("unlock");
    let appended = storage.log.append(&partition, vec![batch(1)]).await.expect("append");
    assert_eq!(appended.base_offset, 0, "the refused append left nothing behind");
}

#[tokio::test]
async fn synchronous_defaults_to_full_and_can_be_relaxed() {
    let dir = tempfile::tempdir().expect("tempdir");
    for (query, expected) in [("", 2), ("synchronous=normal", 1)] {
        let path = dir.path().join(format!("sync-{expected}.db"));
        let engine = SqliteEngine::open(&path, query).expect("open");
        let level: i64 = engine
            .writer
            .write(|conn| {
                conn.pragma_query_value(None, "synchronous", |row| row.get(0))
                    .map_err(crate::error::db_error)
            })
            .await
            .expect("pragma");
        assert_eq!(level, expected, "{query:?}");
    }
}

#[test]
fn unknown_options_are_refused() {
    let dir = tempfile::tempdir().expect("tempdir");
    let opened = crate::open(&dir.path().join("skiff.db"), "synchronus=normal");
    assert!(matches!(opened, Err(StorageError::InvalidArgument(_))), "typo accepted");
}

/// How often the cached statement `sql` was re-prepared on this connection.
fn reprepares(conn: &Connection, sql: &str) -> skiff_storage::Result<i32> {
    let statement = conn.prepare_cached(sql).map_err(crate::error::db_error)?;
    Ok(statement.get_status(rusqlite::StatementStatus::RePrepare))
}

/// Without the planner stability guarantee SQLite re-parses a cached statement whenever a bound
/// partition or offset changes; see `schema::configure`.
#[tokio::test]
async fn hot_statements_are_prepared_once() {
    use skiff_storage::{LogStore, MetaStore};

    let dir = tempfile::tempdir().expect("tempdir");
    let engine = SqliteEngine::open(&dir.path().join("skiff.db"), "").expect("open");
    let spec = TopicSpec { name: "t".into(), partitions: 4, configs: BTreeMap::new() };
    engine.create_topic(spec).await.expect("create");
    for round in 0..12 {
        let partition = TopicPartition::new("t", round % 4);
        engine.append(&partition, vec![batch(1)]).await.expect("append");
        engine.read(&partition, i64::from(round / 4), usize::MAX).await.expect("read");
    }
    let written = engine.writer.write(|conn| reprepares(conn, crate::sql::PARTITION_BY_NAME));
    assert_eq!(written.await.expect("status"), 0, "appends to other partitions re-prepared");
    let read = engine.readers.read(|conn| reprepares(conn, crate::sql::BATCHES_FROM));
    assert_eq!(read.await.expect("status"), 0, "reads from other offsets re-prepared");
}
