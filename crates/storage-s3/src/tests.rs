//! Tests against a real S3-compatible server: the one `scripts/services.sh` starts
//! (`moto_server`, single-threaded) and names in `SKIFF_TEST_S3_ENDPOINT`, with its bucket
//! `skiff-test`. Each test works under a fresh prefix. Never mocked: without the server these
//! tests fail, loudly.

use std::collections::BTreeSet;

use skiff_storage::testsuite::{batch, producer_batch};
use skiff_storage::{Batch, Storage, StorageError, TopicPartition, TopicSpec};

use crate::collector::Suspects;
use crate::S3Engine;

/// The bucket `scripts/s3_server.py` creates.
const BUCKET: &str = "skiff-test";

fn endpoint() -> String {
    match std::env::var("SKIFF_TEST_S3_ENDPOINT") {
        Ok(endpoint) => endpoint,
        Err(_) => panic!(
            "SKIFF_TEST_S3_ENDPOINT is not set: run `eval \"$(scripts/services.sh)\"` first \
             (it starts a local S3 server)"
        ),
    }
}

/// A URL for a fresh, empty prefix of the test bucket.
pub(crate) fn fresh_url(query: &str) -> String {
    let prefix = uuid::Uuid::new_v4().simple();
    format!("s3://{BUCKET}/test-{prefix}?endpoint={}{query}", endpoint())
}

pub(crate) fn fresh_storage() -> Storage {
    crate::open(&fresh_url("")).expect("open s3 storage")
}

async fn create(storage: &Storage, name: &str, partitions: i32) {
    storage
        .meta
        .create_topic(TopicSpec { name: name.into(), partitions, configs: Default::default() })
        .await
        .expect("create topic");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_appends_share_data_objects() {
    let url = fresh_url("&flush_ms=20");
    let engine = std::sync::Arc::new(S3Engine::open(&url).expect("open"));
    let storage = Storage {
        meta: engine.clone(),
        log: engine.clone(),
        state: engine.clone(),
        offsets: engine.clone(),
    };
    create(&storage, "t", 4).await;
    let before = engine.store.totals();
    let mut tasks = Vec::new();
    for index in 0..40 {
        let storage = storage.clone();
        tasks.push(tokio::spawn(async move {
            let partition = TopicPartition::new("t", index % 4);
            storage.log.append(&partition, vec![batch(5)]).await
        }));
    }
    for task in tasks {
        task.await.expect("task").expect("append");
    }
    let after = engine.store.totals();
    let puts = after.puts - before.puts;
    // 40 appends, 4 partitions: a few flushes of one data object and <= 4 heads each.
    assert!(puts <= 20, "{puts} PUTs for 40 coalescible appends");
    for partition in 0..4 {
        let marks =
            storage.log.watermarks(&TopicPartition::new("t", partition)).await.expect("marks");
        assert_eq!(marks.high, 50);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn brokers_on_one_prefix_get_unique_contiguous_offsets() {
    let url = fresh_url("&flush_ms=2");
    let brokers: Vec<Storage> = (0..3).map(|_| crate::open(&url).expect("open")).collect();
    create(&brokers[0], "t", 1).await;
    let partition = TopicPartition::new("t", 0);
    let mut tasks = Vec::new();
    for broker in &brokers {
        for _ in 0..3 {
            let broker = broker.clone();
            let partition = partition.clone();
            tasks.push(tokio::spawn(async move {
                let mut bases = Vec::new();
                for _ in 0..10 {
                    let result = broker.log.append(&partition, vec![batch(3)]).await;
                    bases.push(result.expect("append").base_offset);
                }
                bases
            }));
        }
    }
    let mut bases = BTreeSet::new();
    for task in tasks {
        for base in task.await.expect("task") {
            assert!(bases.insert(base), "offset {base} handed out twice");
        }
    }
    assert_eq!(bases, (0..270).step_by(3).collect::<BTreeSet<i64>>());
    // A broker's reads may trust a head it read within tail_cache_ms (250 by default).
    tokio::time::sleep(std::time::Duration::from_millis(300)).await;
    for broker in &brokers {
        let read = broker.log.read(&partition, 0, usize::MAX).await.expect("read");
        let offsets: Vec<i64> = read
            .batches
            .iter()
            .filter_map(|batch| skiff_protocol::batch::base_offset(batch))
            .collect();
        assert_eq!(offsets, (0..270).step_by(3).collect::<Vec<i64>>());
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn long_logs_roll_their_index_into_segments() {
    let storage = fresh_storage();
    create(&storage, "t", 1).await;
    let partition = TopicPartition::new("t", 0);
    for _ in 0..1100 {
        storage.log.append(&partition, vec![batch(1)]).await.expect("append");
    }
    let all = storage.log.read(&partition, 0, usize::MAX).await.expect("read");
    assert_eq!(all.batches.len(), 1100);
    let from_segment = storage.log.read(&partition, 10, 1).await.expect("read");
    assert_eq!(
        from_segment
            .batches
            .iter()
            .filter_map(|b| skiff_protocol::batch::base_offset(b))
            .collect::<Vec<_>>(),
        [10]
    );
    assert_eq!(storage.log.batch_sizes(&partition).await.expect("sizes").len(), 1100);
    storage.log.delete_records(&partition, 600).await.expect("delete");
    let sizes = storage.log.batch_sizes(&partition).await.expect("sizes");
    assert_eq!(sizes.first().map(|(base, _)| *base), Some(600));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unreachable_store_is_unavailable_not_a_crash() {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let port = listener.local_addr().expect("addr").port();
    drop(listener);
    let url = format!("s3://{BUCKET}/x?endpoint=http://127.0.0.1:{port}&retry_timeout_ms=300");
    let storage = crate::open(&url).expect("opening makes no request");
    let created = storage
        .meta
        .create_topic(TopicSpec { name: "t".into(), partitions: 1, configs: Default::default() })
        .await;
    assert!(matches!(created, Err(StorageError::Unavailable(_))), "{created:?}");
    let read = storage.log.read(&TopicPartition::new("t", 0), 0, 100).await;
    assert!(matches!(read, Err(StorageError::Unavailable(_))), "{read:?}");
}

/// A fresh engine, and the same engine as a `Storage`: for tests that call the engine's own
/// methods too.
fn engine_and_storage() -> (std::sync::Arc<S3Engine>, Storage) {
    let engine = std::sync::Arc::new(S3Engine::open(&fresh_url("")).expect("open"));
    let storage = Storage {
        meta: engine.clone(),
        log: engine.clone(),
        state: engine.clone(),
        offsets: engine.clone(),
    };
    (engine, storage)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unreferenced_data_objects_are_collected() {
    let (engine, storage) = engine_and_storage();
    create(&storage, "gone", 1).await;
    create(&storage, "kept", 1).await;
    let gone = TopicPartition::new("gone", 0);
    let kept = TopicPartition::new("kept", 0);
    storage.log.append(&gone, vec![batch(2)]).await.expect("append");
    storage.log.append(&kept, vec![batch(3)]).await.expect("append");
    // One object shared by both partitions, then one only `gone` references.
    let (one, two) = tokio::join!(
        storage.log.append(&gone, vec![batch(1)]),
        storage.log.append(&kept, vec![batch(1)])
    );
    one.expect("append");
    two.expect("append");
    storage.log.append(&gone, vec![batch(4)]).await.expect("append");
    storage.log.delete_records(&gone, 7).await.expect("delete all of gone");

    let young = engine
        .collect(std::time::Duration::from_secs(3600), &mut Suspects::default())
        .await
        .expect("collect");
    assert_eq!(young.deleted, 0, "objects younger than the grace period stay");
    let collected =
        engine.collect(std::time::Duration::ZERO, &mut Suspects::default()).await.expect("collect");
    assert!(collected.deleted >= 1, "{collected:?}");
    let read = storage.log.read(&kept, 0, usize::MAX).await.expect("kept is whole");
    assert_eq!(read.batches.len(), 2, "both batches of kept are still readable");
    let again =
        engine.collect(std::time::Duration::ZERO, &mut Suspects::default()).await.expect("collect");
    assert_eq!(again.deleted, 0, "everything left is referenced");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unreferenced_index_segments_are_collected() {
    let (engine, storage) = engine_and_storage();
    create(&storage, "t", 1).await;
    let partition = TopicPartition::new("t", 0);
    // More index entries than a head keeps: the head write rolls the oldest into a segment.
    let batches: Vec<Batch> = (0..1100).map(|_| batch(1)).collect();
    storage.log.append(&partition, batches).await.expect("append");
    let dir = engine.partition_dir(&partition).await.expect("dir");
    let orphan = engine.heads.write_segment(&dir, &[]).await.expect("a segment no head names");
    let index = dir.clone().join("index");
    let listed = |engine: std::sync::Arc<S3Engine>| {
        let index = index.clone();
        async move { engine.store.list(&index).await.expect("list") }
    };
    assert_eq!(listed(engine.clone()).await.len(), 2, "the rolled segment and the orphan");

    let mut suspects = Suspects::default();
    let first = engine.collect(std::time::Duration::ZERO, &mut suspects).await.expect("collect");
    assert_eq!((first.unreferenced_segments, first.deleted_segments), (1, 0), "{first:?}");
    let second = engine.collect(std::time::Duration::ZERO, &mut suspects).await.expect("collect");
    assert_eq!((second.unreferenced_segments, second.deleted_segments), (1, 1), "{second:?}");
    let left = listed(engine.clone()).await;
    assert_eq!(left.len(), 1, "{left:?}");
    assert_ne!(left[0].filename(), Some(orphan.as_str()), "the orphan went, the rolled one stays");
    let read = storage.log.read(&partition, 0, usize::MAX).await.expect("read through the segment");
    assert_eq!(read.batches.len(), 1100);
    let quiet = engine.collect(std::time::Duration::ZERO, &mut suspects).await.expect("collect");
    assert_eq!((quiet.unreferenced_segments, quiet.deleted_segments), (0, 0));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_reader_past_a_cached_tail_sees_the_other_brokers_appends() {
    let url = fresh_url("&tail_cache_ms=60000");
    let (reader, writer) = (crate::open(&url).expect("open"), crate::open(&url).expect("open"));
    create(&writer, "t", 1).await;
    let partition = TopicPartition::new("t", 0);
    writer.log.append(&partition, vec![batch(2)]).await.expect("append");
    let at_end = reader.log.read(&partition, 2, usize::MAX).await.expect("read");
    assert_eq!(at_end.watermarks.high, 2);
    writer.log.append(&partition, vec![batch(3)]).await.expect("append");
    // A client that learnt offset 5 elsewhere must not be told 5 is out of range.
    let beyond = reader.log.read(&partition, 5, usize::MAX).await.expect("read");
    assert_eq!(beyond.watermarks.high, 5);
    let middle = reader.log.read(&partition, 2, usize::MAX).await.expect("read");
    assert_eq!((middle.watermarks.high, middle.batches.len()), (5, 1), "the refreshed head");
    let from_start = reader.log.read(&partition, 0, usize::MAX).await.expect("read");
    assert_eq!(from_start.batches.len(), 2);
}

/// Found by the multi-broker kill soak (tests/soak): a producer whose requests move from broker A
/// to broker B and back. A remembers the head it wrote last; B's appends made it stale. A's
/// next batch must be planned against the head as stored, not refused as out of order because
/// A's own copy still ends at the old sequence (librdkafka's idempotent producer fails fatally
/// on that answer).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_producer_moving_between_brokers_keeps_its_sequence() {
    let url = fresh_url("&flush_ms=2");
    let (first, second) = (crate::open(&url).expect("open"), crate::open(&url).expect("open"));
    create(&first, "t", 1).await;
    let partition = TopicPartition::new("t", 0);
    let append = |broker: &Storage, sequence: i32| {
        let (broker, partition) = (broker.clone(), partition.clone());
        async move { broker.log.append(&partition, vec![producer_batch(7, 0, sequence, 5)]).await }
    };
    assert_eq!(append(&first, 0).await.expect("first broker").base_offset, 0);
    assert_eq!(append(&second, 5).await.expect("second broker").base_offset, 5);
    let back = append(&first, 10).await.expect("back on the first broker: in sequence");
    assert_eq!((back.base_offset, back.duplicate), (10, false));
    // A retry of the batch the second broker stored is still recognised by the first.
    let retry = append(&first, 5).await.expect("a retry");
    assert_eq!((retry.base_offset, retry.duplicate), (5, true));
}

mod conformance {
    skiff_storage::conformance_tests!(async { crate::tests::fresh_storage() });
}
