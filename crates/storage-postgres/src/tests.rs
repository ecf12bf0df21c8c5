//! Engine tests beyond the conformance suite: several engines (brokers) on one database,
//! reopening, migrations racing, headers, rows people query, Postgres unreachable, TLS.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

use bytes::Bytes;
use skiff_protocol::batch::split_batches;
use skiff_protocol::records::RecordHeader;
use skiff_storage::testsuite::batch;
use skiff_storage::{Batch, StorageError, TopicPartition, TopicSpec};

use crate::codec::{self, BatchFields, RowRecord};
use crate::testdb::{self, TestDatabase};
use crate::PostgresEngine;

async fn create_topic(engine: &PostgresEngine, name: &str) {
    use skiff_storage::MetaStore;
    let spec = TopicSpec { name: name.into(), partitions: 1, configs: BTreeMap::new() };
    engine.create_topic(spec).await.expect("create topic");
}

fn header(key: &str, value: &str) -> RecordHeader {
    RecordHeader { key: key.into(), value: Some(value.as_bytes().to_vec()) }
}

/// One producer-less record carrying `headers`, as a validated batch.
fn batch_with_headers(key: &str, value: &str, headers: Vec<RecordHeader>) -> Batch {
    let fields = BatchFields {
        base_offset: 0,
        last_offset_delta: 0,
        attributes: 0,
        producer_id: -1,
        producer_epoch: -1,
        base_sequence: -1,
        leader_epoch: 0,
        base_timestamp: 1_700_000_000_000,
        max_timestamp: 1_700_000_000_000,
    };
    let record = RowRecord {
        offset_delta: 0,
        timestamp: fields.base_timestamp,
        key: Some(Bytes::copy_from_slice(key.as_bytes())),
        value: Some(Bytes::copy_from_slice(value.as_bytes())),
        headers,
    };
    let bytes = codec::encode(&fields, &[record], 0).expect("encodes");
    split_batches(&bytes).expect("valid batch").remove(0)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn two_engines_appending_to_one_partition_get_unique_contiguous_offsets() {
    use skiff_storage::LogStore;
    let database = TestDatabase::create().await;
    let engines = [database.engine(), database.engine()];
    create_topic(&engines[0], "shared").await;
    let partition = TopicPartition::new("shared", 0);
    let mut tasks = Vec::new();
    for engine in engines.iter().cycle().take(6) {
        let (engine, partition) = (Arc::clone(engine), partition.clone());
        tasks.push(tokio::spawn(async move {
            let mut bases = Vec::new();
            for _ in 0..20 {
                bases.push(engine.append(&partition, vec![batch(3)]).await.expect("append"));
            }
            bases
        }));
    }
    let mut bases = BTreeSet::new();
    for task in tasks {
        for result in task.await.expect("task") {
            assert!(bases.insert(result.base_offset), "{} handed out twice", result.base_offset);
        }
    }
    assert_eq!(bases, (0..360).step_by(3).collect::<BTreeSet<i64>>());
    let read = engines[1].read(&partition, 0, usize::MAX).await.expect("read");
    assert_eq!(read.batches.len(), 120);
    assert_eq!(read.watermarks.high, 360);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn data_survives_reopening() {
    use skiff_storage::LogStore;
    let database = TestDatabase::create().await;
    let partition = TopicPartition::new("kept", 0);
    let written = {
        let engine = database.engine();
        create_topic(&engine, "kept").await;
        engine.append(&partition, vec![batch(4)]).await.expect("append");
        engine.read(&partition, 0, usize::MAX).await.expect("read")
    };
    let reopened = database.engine();
    let read = reopened.read(&partition, 0, usize::MAX).await.expect("read after reopening");
    assert_eq!(read, written);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn migrations_run_once_when_engines_start_together() {
    use skiff_storage::MetaStore;
    let database = TestDatabase::create().await;
    let mut tasks = Vec::new();
    for _ in 0..4 {
        let engine = database.engine();
        tasks.push(tokio::spawn(async move { engine.topics().await }));
    }
    for task in tasks {
        assert_eq!(task.await.expect("task").expect("schema ready"), vec![]);
    }
    let client = testdb::connect(&database.url).await;
    let applied: i64 = client
        .query_one("SELECT count(*) FROM skiff.schema_migrations", &[])
        .await
        .expect("count")
        .get(0);
    assert_eq!(applied, i64::from(crate::schema::latest_version()));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn repeated_header_keys_round_trip_in_order() {
    use skiff_storage::LogStore;
    let database = TestDatabase::create().await;
    let engine = database.engine();
    create_topic(&engine, "headers").await;
    let partition = TopicPartition::new("headers", 0);
    let headers = vec![header("h", "1"), header("h", "2"), header("other", "x")];
    let sent = batch_with_headers("k", "v", headers.clone());
    engine.append(&partition, vec![sent.clone()]).await.expect("append");

    let read = engine.read(&partition, 0, usize::MAX).await.expect("read");
    assert_eq!(read.batches, vec![sent.bytes.clone()], "fetched exactly as produced");
    let fetched = split_batches(&read.batches[0]).expect("valid").remove(0);
    let records = codec::decode(&fetched).expect("decodes");
    assert_eq!(records[0].headers, headers);

    let client = testdb::connect(&database.url).await;
    let row = client
        .query_one(
            "SELECT array_agg(h.key ORDER BY n), array_agg(convert_from(h.value, 'UTF8') \
             ORDER BY n) FROM skiff.records, unnest(headers) WITH ORDINALITY AS h(key, value, n) \
             WHERE topic = 'headers'",
            &[],
        )
        .await
        .expect("query headers");
    let keys: Vec<String> = row.get(0);
    let values: Vec<String> = row.get(1);
    assert_eq!(
        (keys, values),
        (vec!["h".into(), "h".into(), "other".into()], vec!["1".into(), "2".into(), "x".into()])
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn records_are_rows_people_can_query() {
    use skiff_storage::LogStore;
    let database = TestDatabase::create().await;
    let engine = database.engine();
    create_topic(&engine, "orders").await;
    let partition = TopicPartition::new("orders", 0);
    engine.append(&partition, vec![batch(3)]).await.expect("append");
    let client = testdb::connect(&database.url).await;
    let rows = client
        .query(
            "SELECT \"offset\", key, value FROM skiff.records WHERE topic = 'orders' \
             ORDER BY \"offset\"",
            &[],
        )
        .await
        .expect("query");
    let found: Vec<(i64, Vec<u8>, Vec<u8>)> =
        rows.iter().map(|row| (row.get(0), row.get(1), row.get(2))).collect();
    let expected: Vec<(i64, Vec<u8>, Vec<u8>)> = (0..3)
        .map(|i| (i, format!("key-{i}").into_bytes(), format!("value-{i}").into_bytes()))
        .collect();
    assert_eq!(found, expected);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unreachable_postgres_is_unavailable_not_a_panic() {
    use skiff_storage::{LogStore, MetaStore};
    let engine = PostgresEngine::new("postgres://postgres@127.0.0.1:1/none?connect_timeout=2")
        .expect("opening makes no connection");
    let topics = engine.topics().await;
    assert!(matches!(topics, Err(StorageError::Unavailable(_))), "{topics:?}");
    let append = engine.append(&TopicPartition::new("t", 0), vec![batch(1)]).await;
    assert!(matches!(append, Err(StorageError::Unavailable(_))), "{append:?}");
}

/// `prefer` (the default) uses TLS when the server has it on, as Debian's does; `require` then
/// works too. With TLS off (a server started by scripts/services.sh), prefer falls back to plain.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sslmode_prefer_uses_tls_when_the_server_offers_it() {
    let database = TestDatabase::create().await;
    let client = testdb::connect(&database.url).await;
    let server_tls: String = client.query_one("SHOW ssl", &[]).await.expect("show ssl").get(0);
    let encrypted: bool = client
        .query_one("SELECT ssl FROM pg_stat_ssl WHERE pid = pg_backend_pid()", &[])
        .await
        .expect("pg_stat_ssl")
        .get(0);
    assert_eq!(encrypted, server_tls == "on", "prefer encrypts exactly when the server can");
    if server_tls == "on" {
        let require = format!("{}?sslmode=require", database.url);
        testdb::connect(&require).await.simple_query("SELECT 1").await.expect("require works");
    } else {
        eprintln!("NOTE: server has ssl=off, sslmode=require not exercised");
    }
}

/// The outbox: `skiff.produce` inside an application's transaction.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn outbox_records_appear_on_commit_and_vanish_on_rollback() {
    use skiff_storage::LogStore;
    let database = TestDatabase::create().await;
    let engine = database.engine();
    create_topic(&engine, "order-events").await;
    let partition = TopicPartition::new("order-events", 0);
    let mut app = testdb::connect(&database.url).await;
    app.batch_execute("CREATE TABLE orders (id integer PRIMARY KEY, status text)")
        .await
        .expect("app table");

    let tx = app.transaction().await.expect("begin");
    tx.execute("INSERT INTO orders VALUES (1, 'paid')", &[]).await.expect("order");
    let offset: i64 = tx
        .query_one(
            "SELECT skiff.produce('order-events', 0, 'order-1', 'paid', \
             ARRAY[ROW('h', '1')::skiff.header, ROW('h', '2')::skiff.header])",
            &[],
        )
        .await
        .expect("produce")
        .get(0);
    assert_eq!(offset, 0);
    let during = engine.read(&partition, 0, usize::MAX).await.expect("read");
    assert!(during.batches.is_empty(), "invisible before commit");
    tx.commit().await.expect("commit");

    let rolled_back = app.transaction().await.expect("begin");
    rolled_back
        .execute("SELECT skiff.produce('order-events', 0, 'order-2', 'lost')", &[])
        .await
        .expect("produce");
    rolled_back.rollback().await.expect("rollback");
    let appended = engine.append(&partition, vec![batch(2)]).await.expect("broker append");
    assert_eq!(appended.base_offset, 1, "the rolled-back record left no gap");

    let read = engine.read(&partition, 0, usize::MAX).await.expect("read");
    assert_eq!(read.batches.len(), 2);
    let outboxed = split_batches(&read.batches[0]).expect("valid batch").remove(0);
    let records = codec::decode(&outboxed).expect("decodes");
    assert_eq!(records.len(), 1);
    assert_eq!(records[0].key.as_deref(), Some(&b"order-1"[..]));
    assert_eq!(records[0].value.as_deref(), Some(&b"paid"[..]));
    assert_eq!(records[0].headers, vec![header("h", "1"), header("h", "2")]);
    let missing = app.query_one("SELECT skiff.produce('nope', 0, NULL, 'x')", &[]).await;
    assert!(missing.is_err(), "unknown partitions are refused");
}

/// Fetch compresses per the topic's `compression.type`; `producer` keeps the producer's codec.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fetch_compresses_per_topic_config() {
    use skiff_storage::{LogStore, MetaStore};
    let database = TestDatabase::create().await;
    let engine = database.engine();
    for (name, compression) in [("zstd-topic", "zstd"), ("plain-topic", "uncompressed")] {
        let configs = BTreeMap::from([("compression.type".into(), compression.into())]);
        let spec = TopicSpec { name: name.into(), partitions: 1, configs };
        engine.create_topic(spec).await.expect("create");
    }
    let gzip = skiff_storage::testsuite::batch_with(
        &["a", "b"],
        &[1, 2],
        kafka_protocol::records::Compression::Gzip,
    );
    for (name, codec) in [("zstd-topic", 4), ("plain-topic", 0)] {
        let partition = TopicPartition::new(name, 0);
        engine.append(&partition, vec![gzip.clone()]).await.expect("append");
        let read = engine.read(&partition, 0, usize::MAX).await.expect("read");
        let fetched = split_batches(&read.batches[0]).expect("valid batch").remove(0);
        assert_eq!(fetched.header.compression(), codec, "{name}");
        let values: Vec<_> =
            codec::decode(&fetched).expect("decodes").into_iter().map(|r| r.value).collect();
        assert_eq!(values, [Some(Bytes::from_static(b"a")), Some(Bytes::from_static(b"b"))]);
    }
}

/// Connections lost under the engine (as when Postgres restarts) give retriable errors at worst,
/// never a panic, and the pool reconnects by itself; nothing acknowledged is lost.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn lost_connections_are_retriable_and_replaced() {
    use skiff_storage::LogStore;
    let database = TestDatabase::create().await;
    let engine = database.engine();
    create_topic(&engine, "survivor").await;
    let partition = TopicPartition::new("survivor", 0);
    engine.append(&partition, vec![batch(2)]).await.expect("append");

    let admin = testdb::connect(&database.url).await;
    let killed: i64 = admin
        .query_one(
            "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity \
             WHERE datname = current_database() AND pid <> pg_backend_pid()",
            &[],
        )
        .await
        .expect("terminate")
        .get(0);
    assert!(killed >= 1, "the engine had a connection to terminate");

    let mut appended = None;
    for _ in 0..5 {
        match engine.append(&partition, vec![batch(1)]).await {
            Ok(result) => {
                appended = Some(result.base_offset);
                break;
            }
            Err(StorageError::Unavailable(_)) => {
                tokio::time::sleep(std::time::Duration::from_millis(50)).await;
            }
            Err(other) => panic!("expected a retriable error, got {other:?}"),
        }
    }
    assert_eq!(appended, Some(2), "the pool reconnected and offsets continued");
    let read = engine.read(&partition, 0, usize::MAX).await.expect("read");
    assert_eq!(read.watermarks.high, 3);
}

/// A call that cannot finish (here: its partition row is locked by a session that never
/// commits, as a broker wedged mid-append would leave it) is given up at the engine's time limit
/// and answered `Unavailable`, with nothing applied; once the lock goes, the engine carries on
/// with the same pool and the offsets continue without a gap.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_call_that_cannot_finish_is_unavailable_at_the_time_limit() {
    use skiff_storage::LogStore;
    let database = TestDatabase::create().await;
    let url = format!("{}?operation_timeout=1&pool_size=1", database.url);
    let engine = PostgresEngine::new(&url).expect("engine opens");
    create_topic(&engine, "wedged").await;
    let partition = TopicPartition::new("wedged", 0);
    engine.append(&partition, vec![batch(2)]).await.expect("append");

    let mut admin = testdb::connect(&database.url).await;
    let holder = admin.transaction().await.expect("begin");
    holder
        .execute(
            "SELECT high FROM skiff.partitions WHERE topic = 'wedged' AND partition = 0 FOR UPDATE",
            &[],
        )
        .await
        .expect("lock the partition row");
    let started = std::time::Instant::now();
    let stuck = engine.append(&partition, vec![batch(1)]).await;
    assert!(matches!(stuck, Err(StorageError::Unavailable(_))), "{stuck:?}");
    assert!(started.elapsed() < std::time::Duration::from_secs(10), "gave up at the limit");
    holder.rollback().await.expect("release the lock");

    let next = engine.append(&partition, vec![batch(1)]).await.expect("append after the lock");
    assert_eq!(next.base_offset, 2, "the given-up append left nothing behind");
    assert_eq!(engine.watermarks(&partition).await.expect("marks").high, 3);
}

/// Soak bug 6: on a table Postgres has not analyzed yet (every new database, until autovacuum
/// runs) the planner estimated one row everywhere and joined a fetch's batches to all of the
/// partition's records, filtering afterwards: seconds per fetch at a few thousand records, so
/// consumers stalled. The fetch must look records up by each batch's offset range whatever the
/// statistics say; this checks the generic plan (what a cached statement runs) on such a table.
#[tokio::test]
async fn fetch_looks_records_up_by_batch_range_without_statistics() {
    use skiff_storage::LogStore;
    let database = TestDatabase::create().await;
    let engine = database.engine();
    create_topic(&engine, "fresh").await;
    let partition = TopicPartition::new("fresh", 0);
    for _ in 0..50 {
        engine.append(&partition, vec![batch(3)]).await.expect("append");
    }
    let client = testdb::connect(&database.url).await;
    client.batch_execute("SET plan_cache_mode = force_generic_plan").await.expect("generic");
    let prepare = format!(
        "PREPARE records_fetch(text, int, bigint, bigint, bigint, bigint) AS {}",
        crate::sql::LOG_FETCH
    );
    client.batch_execute(&prepare).await.expect("prepare the fetch");
    let plan: Vec<String> = client
        .query("EXPLAIN EXECUTE records_fetch('fresh', 0, 0, 150, 1048576, 1000)", &[])
        .await
        .expect("explain")
        .iter()
        .map(|row| row.get(0))
        .collect();
    let plan = plan.join("\n");
    let records_scan =
        plan.lines().skip_while(|line| !line.contains("on records")).nth(1).unwrap_or_default();
    assert!(
        records_scan.contains("Index Cond") && records_scan.contains("c.base_offset"),
        "records are not looked up by the batch's range:\n{plan}"
    );
}

#[test]
fn tls_settings_that_cannot_work_are_refused_at_open() {
    let missing = "postgres://postgres@127.0.0.1/x?sslmode=verify-ca&sslrootcert=/nonexistent.pem";
    let half = "postgres://postgres@127.0.0.1/x?sslcert=/client.pem";
    for url in [missing, half] {
        let opened = PostgresEngine::new(url);
        assert!(matches!(opened, Err(StorageError::InvalidArgument(_))), "{url}");
    }
}

/// `verify-full` checks the server's certificate: one that does not chain to `sslrootcert` is
/// refused (as a retriable error, never a panic).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn verify_full_refuses_a_certificate_from_another_ca() {
    use skiff_storage::MetaStore;
    let database = TestDatabase::create().await;
    let client = testdb::connect(&database.url).await;
    let server_tls: String = client.query_one("SHOW ssl", &[]).await.expect("show ssl").get(0);
    if server_tls != "on" {
        eprintln!("NOTE: server has ssl=off, verify-full not exercised");
        return;
    }
    let ca = concat!(env!("CARGO_MANIFEST_DIR"), "/testdata/unrelated_ca.pem");
    let url = format!("{}?sslmode=verify-full&sslrootcert={ca}", database.url);
    let engine = PostgresEngine::new(&url).expect("opens");
    let topics = engine.topics().await;
    let refused = matches!(&topics, Err(StorageError::Unavailable(message)) if message.contains("certificate"));
    assert!(refused, "{topics:?}");
}

/// Deleting a topic while brokers append to it leaves no row behind: appends in flight commit
/// first and are deleted with the rest, later ones find no partition.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn deleting_a_topic_under_appends_leaves_no_rows() {
    use skiff_storage::{LogStore, MetaStore};
    let database = TestDatabase::create().await;
    let engine = database.engine();
    create_topic(&engine, "doomed").await;
    let partition = TopicPartition::new("doomed", 0);
    let mut appenders = Vec::new();
    for _ in 0..4 {
        let (engine, partition) = (Arc::clone(&engine), partition.clone());
        appenders.push(tokio::spawn(async move {
            loop {
                match engine.append(&partition, vec![batch(5)]).await {
                    Ok(_) => {}
                    Err(StorageError::NotFound(_)) => return,
                    Err(other) => panic!("unexpected {other:?}"),
                }
            }
        }));
    }
    tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    engine.delete_topic("doomed").await.expect("delete");
    for appender in appenders {
        appender.await.expect("appender");
    }
    let client = testdb::connect(&database.url).await;
    for table in ["records", "batches", "partitions", "producer_states"] {
        let left: i64 = client
            .query_one(&format!("SELECT count(*) FROM skiff.{table} WHERE topic = 'doomed'"), &[])
            .await
            .expect("count")
            .get(0);
        assert_eq!(left, 0, "rows left in skiff.{table}");
    }
}

/// A database left at version 2 (metadata as text) with values holding U+0001, as an older
/// Skiff could have written them, then opened by this one.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn migration_3_keeps_existing_client_strings() {
    use skiff_storage::{LogStore, MetaStore, OffsetStore, StateStore};
    let database = TestDatabase::create().await;
    let client = testdb::connect(&database.url).await;
    client.batch_execute(crate::sql::SCHEMA_BOOTSTRAP).await.expect("bootstrap");
    for migration in &crate::sql::MIGRATIONS[..2] {
        client.batch_execute(migration.sql).await.expect("old migration");
        client
            .execute(crate::sql::SCHEMA_VERSION_RECORD, &[&migration.version, &migration.name])
            .await
            .expect("record version");
    }
    client
        .batch_execute(
            "INSERT INTO skiff.topics (name, id, partitions) VALUES ('t', gen_random_uuid(), 1);
             INSERT INTO skiff.partitions (topic, partition) VALUES ('t', 0);
             INSERT INTO skiff.topic_configs VALUES ('t', E'k\\x01', E'v\\x01');
             INSERT INTO skiff.state VALUES (E'groups/a\\x01', 'x', 1);
             INSERT INTO skiff.group_offsets VALUES
                 (E'g\\x01', 't', 0, 5, -1, 'meta', 1), ('billing', 't', 0, 6, -1, NULL, 1);
             SELECT skiff.produce('t', 0, NULL, 'v', ARRAY[ROW(E'h\\x01', '1')::skiff.header]);",
        )
        .await
        .expect("version 2 rows");

    let engine = database.engine();
    let topic = engine.topic("t").await.expect("migrated").expect("exists");
    assert_eq!(topic.configs, BTreeMap::from([("k\u{1}".into(), "v\u{1}".into())]));
    let keys: Vec<String> =
        engine.list("groups/").await.expect("list").into_iter().map(|(key, _)| key).collect();
    assert_eq!(keys, ["groups/a\u{1}"]);
    assert_eq!(engine.offset_groups().await.expect("groups"), ["billing", "g\u{1}"]);
    let offsets = engine.committed_offsets("g\u{1}", None).await.expect("offsets");
    assert_eq!(offsets[0].1.metadata.as_deref(), Some("meta"));
    let read = engine.read(&TopicPartition::new("t", 0), 0, usize::MAX).await.expect("read");
    let fetched = split_batches(&read.batches[0]).expect("valid").remove(0);
    assert_eq!(codec::decode(&fetched).expect("decodes")[0].headers, vec![header("h\u{1}", "1")]);

    // Rows without U+0000 or U+0001 read as they are; metadata is bytes.
    let row = client
        .query_one(
            "SELECT group_id, convert_from(metadata, 'UTF8') FROM skiff.group_offsets \
             WHERE group_id <> 'billing'",
            &[],
        )
        .await
        .expect("query offsets");
    assert_eq!(
        (row.get::<_, String>(0), row.get::<_, String>(1)),
        ("g\u{1}\u{2}".into(), "meta".into())
    );
    // The outbox stores header keys in the same form, so they read back through Kafka as sent.
    client
        .execute(
            "SELECT skiff.produce('t', 0, NULL, 'w', ARRAY[ROW(E'\\x01', '2')::skiff.header])",
            &[],
        )
        .await
        .expect("outbox");
    let read = engine.read(&TopicPartition::new("t", 0), 1, usize::MAX).await.expect("read");
    let fetched = split_batches(&read.batches[0]).expect("valid").remove(0);
    assert_eq!(codec::decode(&fetched).expect("decodes")[0].headers, vec![header("\u{1}", "2")]);
}

/// What people see in SQL: plain ids as they are, U+0000 escaped, metadata as its bytes.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn client_strings_are_queryable_rows() {
    use skiff_storage::{CommittedOffset, OffsetStore};
    let database = TestDatabase::create().await;
    let engine = database.engine();
    let commit = |metadata: &str| {
        let offset = CommittedOffset {
            offset: 1,
            leader_epoch: -1,
            metadata: Some(metadata.into()),
            commit_timestamp_ms: 1,
        };
        vec![(TopicPartition::new("t", 0), offset)]
    };
    engine.commit_offsets("billing", commit("Hello\0world!")).await.expect("commit");
    engine.commit_offsets("a\0b", commit("m")).await.expect("commit");
    let client = testdb::connect(&database.url).await;
    let rows = client
        .query("SELECT group_id, metadata FROM skiff.group_offsets ORDER BY group_id", &[])
        .await
        .expect("query");
    let found: Vec<(String, Vec<u8>)> = rows.iter().map(|row| (row.get(0), row.get(1))).collect();
    assert_eq!(
        found,
        vec![("a\u{1}\u{1}b".into(), b"m".to_vec()), ("billing".into(), b"Hello\0world!".to_vec()),]
    );
}
