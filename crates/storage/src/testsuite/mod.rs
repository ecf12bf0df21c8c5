//! The conformance suite: what every storage engine must do, written once.
//!
//! An engine crate expands it with [`conformance_tests!`](crate::conformance_tests), giving an
//! expression that opens a fresh, empty [`Storage`]; each case becomes its own `#[tokio::test]`.

mod client_strings;
mod compaction;
mod faulty;
mod gate;

use std::collections::{BTreeMap, BTreeSet};

use bytes::{Bytes, BytesMut};
use kafka_protocol::records::{
    Compression, Record, RecordBatchDecoder, RecordBatchEncoder, RecordEncodeOptions, TimestampType,
};
use skiff_protocol::batch::{control_batch, split_batches, ControlType};

pub use client_strings::*;
pub use compaction::*;
pub use faulty::*;
pub use gate::{gated, Gate};

use crate::{
    Batch, ConfigChange, Storage, StorageError, TimestampOffset, TopicPartition, TopicSpec,
};

/// Expands the whole suite for one engine. `$open` is an expression of type
/// `impl Future<Output = Storage>` giving a fresh, empty store each time it is evaluated.
#[macro_export]
macro_rules! conformance_tests {
    ($open:expr) => {
        $crate::conformance_tests!(@cases $open;
            topic_lifecycle,
            recreated_topic_starts_empty,
            offsets_are_consecutive,
            multi_batch_append_is_one_range,
            read_respects_bounds,
            read_returns_assigned_offsets,
            partitions_are_independent_and_grow,
            append_to_missing_partition_fails,
            configs_alter_and_replace,
            delete_records_moves_log_start,
            offsets_by_timestamp,
            max_timestamp_ignores_deleted_records,
            concurrent_appenders_get_unique_offsets,
            state_compare_and_set,
            state_counter_allocates_unique_ids_under_contention,
            idempotent_appends_are_deduplicated,
            queued_appends_keep_their_order,
            producer_epochs_fence_and_reset,
            committed_offsets_round_trip,
            deleting_a_topic_forgets_its_offsets,
            transactions_bound_the_last_stable_offset,
            markers_fence_older_epochs,
            late_markers_leave_the_next_transaction_open,
            sequences_reused_after_an_abort_are_not_duplicates,
            batch_sizes_follow_the_log,
            removed_records_leave_the_rest_of_their_batch,
            emptied_batches_disappear,
            removal_stops_at_the_last_stable_offset,
            offset_metadata_and_group_ids_keep_nul,
            state_keys_keep_nul,
            config_values_keep_nul,
            header_keys_keep_nul,
            topic_names_with_nul_name_no_topic,
            idempotent_appends_survive_faults,
            compare_and_set_survives_lost_replies,
            offset_commits_survive_lost_replies,
        );
    };
    (@cases $open:expr; $($case:ident),* $(,)?) => {
        $(
            #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
            async fn $case() {
                let storage = $open.await;
                $crate::testsuite::$case(&storage).await;
            }
        )*
    };
}

/// Encodes one v2 batch of `values` with the given timestamps (producer-less, uncompressed
/// unless `compression` says otherwise).
pub fn batch_with(values: &[&str], timestamps: &[i64], compression: Compression) -> Batch {
    let records: Vec<Record> = values
        .iter()
        .zip(timestamps)
        .enumerate()
        .map(|(index, (value, timestamp))| Record {
            key: Some(Bytes::from(format!("key-{index}"))),
            ..plain_record(index as i64, *timestamp, Bytes::copy_from_slice(value.as_bytes()))
        })
        .collect();
    encode_batch(&records, compression)
}

/// A producer-less record at `offset` (sequence the same, as the encoder wants: DESIGN 10.2),
/// without key or headers.
fn plain_record(offset: i64, timestamp: i64, value: Bytes) -> Record {
    Record {
        transactional: false,
        control: false,
        delete_horizon: false,
        partition_leader_epoch: 0,
        producer_id: -1,
        producer_epoch: -1,
        timestamp_type: TimestampType::Creation,
        offset,
        sequence: offset as i32,
        timestamp,
        key: None,
        value: Some(value),
        headers: Default::default(),
    }
}

/// `records` as one v2 batch, as a client would send it.
fn encode_batch(records: &[Record], compression: Compression) -> Batch {
    let mut buf = BytesMut::new();
    RecordBatchEncoder::encode(&mut buf, records, &RecordEncodeOptions { version: 2, compression })
        .expect("test batch encodes");
    let mut batches = split_batches(&buf.freeze()).expect("test batch is valid");
    assert_eq!(batches.len(), 1);
    batches.remove(0)
}

/// A producer-less batch of (key, value) records (a `None` key: keyless), stamped 1000, 1001, ...
pub fn keyed_batch(records: &[(Option<&str>, Bytes)], compression: Compression) -> Batch {
    let records: Vec<Record> = records
        .iter()
        .zip(0..)
        .map(|((key, value), offset)| Record {
            key: key.map(|key| Bytes::copy_from_slice(key.as_bytes())),
            ..plain_record(offset, 1000 + offset, value.clone())
        })
        .collect();
    encode_batch(&records, compression)
}

/// A batch of `count` records from an idempotent producer, sequences from `base_sequence`.
pub fn producer_batch(producer_id: i64, epoch: i16, base_sequence: i32, count: usize) -> Batch {
    sequenced_batch(producer_id, epoch, base_sequence, count, false)
}

/// Like [`producer_batch`], inside a transaction.
pub fn transactional_batch(
    producer_id: i64,
    epoch: i16,
    base_sequence: i32,
    count: usize,
) -> Batch {
    sequenced_batch(producer_id, epoch, base_sequence, count, true)
}

/// A transaction marker that ends whatever transaction its producer has open.
pub fn marker(producer_id: i64, epoch: i16, commit: bool) -> Batch {
    bounded_marker(producer_id, epoch, commit, i64::MAX)
}

/// A marker that ends only a transaction begun below `ends_before`.
pub fn bounded_marker(producer_id: i64, epoch: i16, commit: bool, ends_before: i64) -> Batch {
    let kind = if commit { ControlType::Commit } else { ControlType::Abort };
    control_batch(producer_id, epoch, kind, 2000, ends_before).expect("marker encodes")
}

fn sequenced_batch(
    producer_id: i64,
    epoch: i16,
    base_sequence: i32,
    count: usize,
    transactional: bool,
) -> Batch {
    let records: Vec<Record> = (0..count)
        .map(|index| {
            let sequence = base_sequence + index as i32;
            let value = Bytes::from(format!("p{producer_id}-{sequence}"));
            Record {
                transactional,
                producer_id,
                producer_epoch: epoch,
                sequence,
                ..plain_record(index as i64, 1000 + index as i64, value)
            }
        })
        .collect();
    encode_batch(&records, Compression::None)
}

/// A batch of `count` small records stamped 1000, 1001, ...
pub fn batch(count: usize) -> Batch {
    let values: Vec<String> = (0..count).map(|i| format!("value-{i}")).collect();
    let refs: Vec<&str> = values.iter().map(String::as_str).collect();
    let timestamps: Vec<i64> = (0..count as i64).map(|i| 1000 + i).collect();
    batch_with(&refs, &timestamps, Compression::None)
}

async fn create(storage: &Storage, name: &str, partitions: i32) {
    storage
        .meta
        .create_topic(TopicSpec { name: name.into(), partitions, configs: BTreeMap::new() })
        .await
        .expect("create topic");
}

/// Offsets of every record in `batches`, in order.
fn record_offsets(batches: &[Bytes]) -> Vec<i64> {
    let mut offsets = Vec::new();
    for batch in batches {
        let mut buf = batch.clone();
        let set = RecordBatchDecoder::decode(&mut buf).expect("stored batch decodes");
        offsets.extend(set.records.iter().map(|record| record.offset));
    }
    offsets
}

pub async fn topic_lifecycle(storage: &Storage) {
    let created = storage
        .meta
        .create_topic(TopicSpec {
            name: "orders".into(),
            partitions: 3,
            configs: BTreeMap::from([("retention.ms".into(), "1000".into())]),
        })
        .await
        .expect("create");
    assert_eq!(created.partitions, 3);
    assert_eq!(created.configs.get("retention.ms").map(String::as_str), Some("1000"));

    let again = storage
        .meta
        .create_topic(TopicSpec { name: "orders".into(), partitions: 1, configs: BTreeMap::new() })
        .await;
    assert!(matches!(again, Err(StorageError::AlreadyExists(_))), "{again:?}");
    for partitions in [0, -1] {
        let empty = storage
            .meta
            .create_topic(TopicSpec { name: "empty".into(), partitions, configs: BTreeMap::new() })
            .await;
        assert!(matches!(empty, Err(StorageError::InvalidArgument(_))), "{empty:?}");
    }

    create(storage, "audit", 1).await;
    let names: Vec<String> =
        storage.meta.topics().await.expect("list").into_iter().map(|t| t.name).collect();
    assert_eq!(names, ["audit", "orders"]);

    let by_name = storage.meta.topic("orders").await.expect("get").expect("exists");
    assert_eq!(by_name, created);
    let by_id = storage.meta.topic_by_id(created.id).await.expect("get").expect("exists");
    assert_eq!(by_id.name, "orders");

    storage.meta.delete_topic("orders").await.expect("delete");
    assert_eq!(storage.meta.topic("orders").await.expect("get"), None);
    let missing = storage.meta.delete_topic("orders").await;
    assert!(matches!(missing, Err(StorageError::NotFound(_))), "{missing:?}");
    let append = storage.log.append(&TopicPartition::new("orders", 0), vec![batch(1)]).await;
    assert!(matches!(append, Err(StorageError::NotFound(_))), "{append:?}");
}

pub async fn recreated_topic_starts_empty(storage: &Storage) {
    create(storage, "events", 1).await;
    let partition = TopicPartition::new("events", 0);
    storage.log.append(&partition, vec![batch(4)]).await.expect("append");
    let first_id = storage.meta.topic("events").await.expect("get").expect("exists").id;
    storage.meta.delete_topic("events").await.expect("delete");

    create(storage, "events", 1).await;
    let second_id = storage.meta.topic("events").await.expect("get").expect("exists").id;
    assert_ne!(first_id, second_id, "a recreated topic gets a new id");
    let marks = storage.log.watermarks(&partition).await.expect("watermarks");
    assert_eq!((marks.log_start, marks.high), (0, 0));
}

pub async fn offsets_are_consecutive(storage: &Storage) {
    create(storage, "t", 1).await;
    let partition = TopicPartition::new("t", 0);
    let mut bases = Vec::new();
    for count in [3, 1, 5] {
        bases.push(
            storage.log.append(&partition, vec![batch(count)]).await.expect("append").base_offset,
        );
    }
    assert_eq!(bases, [0, 3, 4]);
    let marks = storage.log.watermarks(&partition).await.expect("watermarks");
    assert_eq!((marks.log_start, marks.high), (0, 9));
}

pub async fn multi_batch_append_is_one_range(storage: &Storage) {
    create(storage, "t", 1).await;
    let partition = TopicPartition::new("t", 0);
    storage.log.append(&partition, vec![batch(1)]).await.expect("append");
    let result =
        storage.log.append(&partition, vec![batch(2), batch(3)]).await.expect("append two");
    assert_eq!(result.base_offset, 1);
    let read = storage.log.read(&partition, 0, usize::MAX).await.expect("read");
    assert_eq!(record_offsets(&read.batches), (0..6).collect::<Vec<_>>());
    assert_eq!(read.watermarks.high, 6);
}

pub async fn read_respects_bounds(storage: &Storage) {
    create(storage, "t", 1).await;
    let partition = TopicPartition::new("t", 0);
    for _ in 0..4 {
        storage.log.append(&partition, vec![batch(2)]).await.expect("append");
    }
    let one = storage.log.read(&partition, 0, 1).await.expect("read");
    assert_eq!(one.batches.len(), 1, "the first batch comes even when larger than max_bytes");
    let size = one.byte_len();

    let two = storage.log.read(&partition, 0, size * 2).await.expect("read");
    assert_eq!(two.batches.len(), 2);
    let two_and_a_bit = storage.log.read(&partition, 0, size * 2 + size / 2).await.expect("read");
    assert_eq!(two_and_a_bit.batches.len(), 2, "batches are never cut");

    let middle = storage.log.read(&partition, 3, usize::MAX).await.expect("read");
    assert_eq!(record_offsets(&middle.batches), (2..8).collect::<Vec<_>>(), "whole batches");

    let at_end = storage.log.read(&partition, 8, usize::MAX).await.expect("read");
    assert!(at_end.batches.is_empty());
    assert_eq!(at_end.watermarks.high, 8);
    let beyond = storage.log.read(&partition, 100, usize::MAX).await.expect("read");
    assert!(beyond.batches.is_empty());
    assert_eq!(beyond.watermarks, at_end.watermarks);
}

pub async fn read_returns_assigned_offsets(storage: &Storage) {
    create(storage, "t", 1).await;
    let partition = TopicPartition::new("t", 0);
    let compressed = batch_with(&["a", "b", "c"], &[5, 6, 7], Compression::Gzip);
    storage.log.append(&partition, vec![batch(2)]).await.expect("append");
    storage.log.append(&partition, vec![compressed.clone()]).await.expect("append");
    let read = storage.log.read(&partition, 2, usize::MAX).await.expect("read");
    assert_eq!(read.batches.len(), 1);
    let stored = &read.batches[0];
    assert_eq!(skiff_protocol::batch::base_offset(stored), Some(2));
    assert_eq!(stored[8..], compressed.bytes[8..], "bytes kept as produced, but the offset");
    let revalidated = split_batches(stored).expect("still a valid batch");
    assert_eq!(revalidated[0].header.last_offset(), 4);
}

pub async fn partitions_are_independent_and_grow(storage: &Storage) {
    create(storage, "t", 2).await;
    let zero = TopicPartition::new("t", 0);
    let one = TopicPartition::new("t", 1);
    storage.log.append(&zero, vec![batch(3)]).await.expect("append");
    assert_eq!(storage.log.append(&one, vec![batch(1)]).await.expect("append").base_offset, 0);
    assert_eq!(storage.log.watermarks(&zero).await.expect("marks").high, 3);
    assert_eq!(storage.log.watermarks(&one).await.expect("marks").high, 1);

    let grown = storage.meta.create_partitions("t", 4).await.expect("grow");
    assert_eq!(grown.partitions, 4);
    let three = TopicPartition::new("t", 3);
    assert_eq!(storage.log.append(&three, vec![batch(1)]).await.expect("append").base_offset, 0);
    let shrink = storage.meta.create_partitions("t", 2).await;
    assert!(matches!(shrink, Err(StorageError::InvalidArgument(_))), "{shrink:?}");
    let missing = storage.meta.create_partitions("nope", 2).await;
    assert!(matches!(missing, Err(StorageError::NotFound(_))), "{missing:?}");
}

pub async fn append_to_missing_partition_fails(storage: &Storage) {
    create(storage, "t", 1).await;
    for partition in [TopicPartition::new("t", 1), TopicPartition::new("t", -1)] {
        let result = storage.log.append(&partition, vec![batch(1)]).await;
        assert!(matches!(result, Err(StorageError::NotFound(_))), "{result:?}");
        let marks = storage.log.watermarks(&partition).await;
        assert!(matches!(marks, Err(StorageError::NotFound(_))), "{marks:?}");
    }
    let read = storage.log.read(&TopicPartition::new("none", 0), 0, 100).await;
    assert!(matches!(read, Err(StorageError::NotFound(_))), "{read:?}");
}

pub async fn configs_alter_and_replace(storage: &Storage) {
    storage
        .meta
        .create_topic(TopicSpec {
            name: "t".into(),
            partitions: 1,
            configs: BTreeMap::from([("a".into(), "1".into()), ("b".into(), "2".into())]),
        })
        .await
        .expect("create");
    let change = |key: &str, value: Option<&str>| ConfigChange {
        key: key.into(),
        value: value.map(Into::into),
    };
    let altered = storage
        .meta
        .alter_configs("t", vec![change("a", None), change("c", Some("3"))], false)
        .await
        .expect("incremental");
    assert_eq!(
        altered.configs,
        BTreeMap::from([("b".into(), "2".into()), ("c".into(), "3".into())])
    );

    let replaced =
        storage.meta.alter_configs("t", vec![change("d", Some("4"))], true).await.expect("replace");
    assert_eq!(replaced.configs, BTreeMap::from([("d".into(), "4".into())]));
    let stored = storage.meta.topic("t").await.expect("get").expect("exists");
    assert_eq!(stored.configs, replaced.configs);

    let missing = storage.meta.alter_configs("nope", vec![], false).await;
    assert!(matches!(missing, Err(StorageError::NotFound(_))), "{missing:?}");
}

pub async fn delete_records_moves_log_start(storage: &Storage) {
    create(storage, "t", 1).await;
    let partition = TopicPartition::new("t", 0);
    for _ in 0..3 {
        storage.log.append(&partition, vec![batch(2)]).await.expect("append");
    }
    assert_eq!(storage.log.delete_records(&partition, 3).await.expect("delete"), 3);
    let marks = storage.log.watermarks(&partition).await.expect("marks");
    assert_eq!((marks.log_start, marks.high), (3, 6));

    let read = storage.log.read(&partition, 3, usize::MAX).await.expect("read");
    assert_eq!(read.watermarks.log_start, 3);
    assert_eq!(record_offsets(&read.batches), (2..6).collect::<Vec<_>>());
    let below = storage.log.read(&partition, 0, usize::MAX).await.expect("read");
    assert!(below.batches.is_empty(), "offsets below the log start are not served");

    assert_eq!(storage.log.delete_records(&partition, 1).await.expect("no-op"), 3);
    let beyond = storage.log.delete_records(&partition, 7).await;
    assert!(matches!(beyond, Err(StorageError::OffsetOutOfRange { .. })), "{beyond:?}");
    assert_eq!(storage.log.delete_records(&partition, 6).await.expect("all"), 6);
    let after = storage.log.append(&partition, vec![batch(1)]).await.expect("append");
    assert_eq!(after.base_offset, 6, "offsets continue after deleting everything");
    let tail = storage.log.read(&partition, 6, usize::MAX).await.expect("read");
    assert_eq!(record_offsets(&tail.batches), [6]);
}

pub async fn offsets_by_timestamp(storage: &Storage) {
    create(storage, "t", 1).await;
    let partition = TopicPartition::new("t", 0);
    assert_eq!(storage.log.offset_for_time(&partition, 0).await.expect("empty"), None);
    assert_eq!(storage.log.max_timestamp(&partition).await.expect("empty"), None);
    storage
        .log
        .append(&partition, vec![batch_with(&["a", "b", "c"], &[100, 300, 200], Compression::None)])
        .await
        .expect("append");
    storage
        .log
        .append(&partition, vec![batch_with(&["d", "e"], &[400, 500], Compression::Lz4)])
        .await
        .expect("append");
    let at = |timestamp, offset| Some(TimestampOffset { timestamp, offset });
    let find = |ts| storage.log.offset_for_time(&partition, ts);
    assert_eq!(find(0).await.expect("find"), at(100, 0));
    assert_eq!(
        find(150).await.expect("find"),
        at(300, 1),
        "first record at or after, in offset order"
    );
    assert_eq!(find(300).await.expect("find"), at(300, 1));
    assert_eq!(find(301).await.expect("find"), at(400, 3));
    assert_eq!(find(450).await.expect("find"), at(500, 4));
    assert_eq!(find(501).await.expect("find"), None);
    assert_eq!(storage.log.max_timestamp(&partition).await.expect("max"), at(500, 4));

    storage.log.delete_records(&partition, 2).await.expect("delete");
    assert_eq!(find(0).await.expect("find"), at(200, 2), "deleted records are not found");
}

pub async fn max_timestamp_ignores_deleted_records(storage: &Storage) {
    create(storage, "t", 1).await;
    let partition = TopicPartition::new("t", 0);
    let batches = vec![
        batch_with(&["a", "b"], &[900, 100], Compression::None),
        batch_with(&["c", "d"], &[500, 500], Compression::None),
        batch_with(&["e"], &[300], Compression::None),
    ];
    storage.log.append(&partition, batches).await.expect("append");
    let at = |timestamp, offset| Some(TimestampOffset { timestamp, offset });
    assert_eq!(storage.log.max_timestamp(&partition).await.expect("max"), at(900, 0));

    // The batch holding 900 is cut by the new log start: its header still says 900.
    storage.log.delete_records(&partition, 1).await.expect("delete records");
    assert_eq!(
        storage.log.max_timestamp(&partition).await.expect("max"),
        at(500, 2),
        "the earliest record of the tie after the log start"
    );
    assert_eq!(storage.log.offset_for_time(&partition, 200).await.expect("find"), at(500, 2));
}

pub async fn concurrent_appenders_get_unique_offsets(storage: &Storage) {
    create(storage, "t", 1).await;
    let partition = TopicPartition::new("t", 0);
    let mut tasks = Vec::new();
    for _ in 0..8 {
        let storage = storage.clone();
        let partition = partition.clone();
        tasks.push(tokio::spawn(async move {
            let mut bases = Vec::new();
            for _ in 0..25 {
                bases.push(
                    storage
                        .log
                        .append(&partition, vec![batch(2)])
                        .await
                        .expect("append")
                        .base_offset,
                );
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
    assert_eq!(bases, (0..400).step_by(2).collect::<BTreeSet<i64>>());
    let read = storage.log.read(&partition, 0, usize::MAX).await.expect("read");
    assert_eq!(record_offsets(&read.batches), (0..400).collect::<Vec<_>>());
}

pub async fn state_compare_and_set(storage: &Storage) {
    let state = &storage.state;
    assert_eq!(state.get("groups/g1").await.expect("get"), None);
    let v1 = state.put("groups/g1", Bytes::from_static(b"one"), None).await.expect("create");
    let exists = state.put("groups/g1", Bytes::from_static(b"x"), None).await;
    assert!(matches!(exists, Err(StorageError::Conflict(_))), "{exists:?}");

    let v2 = state.put("groups/g1", Bytes::from_static(b"two"), Some(v1)).await.expect("update");
    assert_ne!(v1, v2);
    let stale = state.put("groups/g1", Bytes::from_static(b"stale"), Some(v1)).await;
    assert!(matches!(stale, Err(StorageError::Conflict(_))), "{stale:?}");
    let read = state.get("groups/g1").await.expect("get").expect("exists");
    assert_eq!((read.value.as_ref(), read.version), (&b"two"[..], v2));

    let absent = state.put("groups/none", Bytes::from_static(b"x"), Some(1)).await;
    assert!(matches!(absent, Err(StorageError::Conflict(_))), "{absent:?}");

    state.put("groups/g2", Bytes::from_static(b"b"), None).await.expect("create");
    state.put("producers/p", Bytes::from_static(b"p"), None).await.expect("create");
    let keys: Vec<String> =
        state.list("groups/").await.expect("list").into_iter().map(|(key, _)| key).collect();
    assert_eq!(keys, ["groups/g1", "groups/g2"]);

    let wrong = state.delete("groups/g1", v1).await;
    assert!(matches!(wrong, Err(StorageError::Conflict(_))), "{wrong:?}");
    state.delete("groups/g1", v2).await.expect("delete");
    assert_eq!(state.get("groups/g1").await.expect("get"), None);
    let gone = state.delete("groups/g1", v2).await;
    assert!(matches!(gone, Err(StorageError::NotFound(_))), "{gone:?}");

    // Racing writers: exactly one wins each round.
    let base = state.put("race", Bytes::from_static(b"0"), None).await.expect("create");
    let mut tasks = Vec::new();
    for i in 0..8u8 {
        let state = state.clone();
        tasks.push(tokio::spawn(async move {
            state.put("race", Bytes::from(vec![i]), Some(base)).await
        }));
    }
    let mut wins = 0;
    for task in tasks {
        match task.await.expect("task") {
            Ok(_) => wins += 1,
            Err(StorageError::Conflict(_)) => {}
            Err(other) => panic!("unexpected {other:?}"),
        }
    }
    assert_eq!(wins, 1);
}

/// What the Schema Registry builds cluster-wide ids on: many writers (brokers) incrementing one
/// counter by read / compare-and-set / retry get every id exactly once, none lost, none twice;
/// and of writers racing to create the same key (a schema fingerprint) exactly one wins while
/// all of them read the winner's value afterwards. Keys are the registry's real ones, with
/// subjects holding `/` and spaces, which prefix listing must keep apart.
pub async fn state_counter_allocates_unique_ids_under_contention(storage: &Storage) {
    const WRITERS: usize = 6;
    const IDS_EACH: usize = 5;
    let mut tasks = Vec::new();
    for _ in 0..WRITERS {
        let state = storage.state.clone();
        tasks.push(tokio::spawn(async move {
            let mut taken = Vec::new();
            while taken.len() < IDS_EACH {
                let current = state.get("registry/next-id").await.expect("get");
                let next = current
                    .as_ref()
                    .map(|stored| {
                        String::from_utf8_lossy(&stored.value).parse::<u64>().expect("a number")
                    })
                    .unwrap_or(1);
                let value = Bytes::from((next + 1).to_string());
                match state
                    .put("registry/next-id", value, current.map(|stored| stored.version))
                    .await
                {
                    Ok(_) => taken.push(next),
                    Err(StorageError::Conflict(_)) => tokio::task::yield_now().await,
                    Err(other) => panic!("unexpected {other:?}"),
                }
            }
            taken
        }));
    }
    let mut ids = Vec::new();
    for task in tasks {
        ids.extend(task.await.expect("task"));
    }
    ids.sort_unstable();
    let expected: Vec<u64> = (1..=(WRITERS * IDS_EACH) as u64).collect();
    assert_eq!(ids, expected, "every id handed out exactly once");

    let mut creators = Vec::new();
    for writer in 0..WRITERS {
        let state = storage.state.clone();
        creators.push(tokio::spawn(async move {
            let value = Bytes::from(format!("{{\"id\":{writer}}}"));
            state.put("registry/fingerprints/abc123", value, None).await
        }));
    }
    let mut winners = 0;
    for creator in creators {
        match creator.await.expect("task") {
            Ok(_) => winners += 1,
            Err(StorageError::Conflict(_)) => {}
            Err(other) => panic!("unexpected {other:?}"),
        }
    }
    assert_eq!(winners, 1, "one fingerprint, one id");

    for subject in ["orders-value", "team a/orders-value", "team a/orders-value/x"] {
        let key = format!("registry/subjects/{subject}");
        storage.state.put(&key, Bytes::from_static(b"{}"), None).await.expect("create");
    }
    let listed: Vec<String> = storage
        .state
        .list("registry/subjects/team a/")
        .await
        .expect("list")
        .into_iter()
        .map(|(key, _)| key)
        .collect();
    assert_eq!(
        listed,
        ["registry/subjects/team a/orders-value", "registry/subjects/team a/orders-value/x"]
    );
}

pub async fn idempotent_appends_are_deduplicated(storage: &Storage) {
    create(storage, "t", 2).await;
    let partition = TopicPartition::new("t", 0);
    let append = |batch: Batch| storage.log.append(&partition, vec![batch]);
    let first = append(producer_batch(7, 0, 0, 3)).await.expect("first");
    assert_eq!((first.base_offset, first.duplicate), (0, false));
    append(batch(1)).await.expect("a plain batch in between");
    let second = append(producer_batch(7, 0, 3, 2)).await.expect("second");
    assert_eq!(second.base_offset, 4);

    // Retries of either of them are acknowledged with their original offsets.
    let retry = append(producer_batch(7, 0, 0, 3)).await.expect("retry");
    assert_eq!((retry.base_offset, retry.duplicate), (0, true));
    let retry = append(producer_batch(7, 0, 3, 2)).await.expect("retry");
    assert_eq!((retry.base_offset, retry.duplicate), (4, true));
    assert_eq!(
        storage.log.watermarks(&partition).await.expect("marks").high,
        6,
        "nothing re-appended"
    );

    let gap = append(producer_batch(7, 0, 9, 1)).await;
    assert!(matches!(gap, Err(StorageError::OutOfOrderSequence(_))), "{gap:?}");
    assert_eq!(storage.log.watermarks(&partition).await.expect("marks").high, 6);
    assert_eq!(append(producer_batch(7, 0, 5, 1)).await.expect("next").base_offset, 6);

    // Another producer, and the same producer on another partition, have their own sequences.
    assert_eq!(append(producer_batch(8, 0, 0, 1)).await.expect("other").base_offset, 7);
    let other_partition = TopicPartition::new("t", 1);
    let elsewhere =
        storage.log.append(&other_partition, vec![producer_batch(7, 0, 0, 2)]).await.expect("p1");
    assert_eq!((elsewhere.base_offset, elsewhere.duplicate), (0, false));
}

/// A pipelining caller queues appends in order and awaits them together, in any order: the
/// appends land in the order they were queued, an idempotent producer's sequences included.
pub async fn queued_appends_keep_their_order(storage: &Storage) {
    create(storage, "t", 2).await;
    let partition = TopicPartition::new("t", 0);
    let mut queued = Vec::new();
    for (sequence, count) in [(0, 3), (3, 1), (4, 2)] {
        let batches = vec![producer_batch(7, 0, sequence, count)];
        queued.push(storage.log.queue_append(&partition, batches).await);
    }
    let plain = storage.log.queue_append(&partition, vec![batch(2)]).await;
    let missing = storage.log.queue_append(&TopicPartition::new("t", 9), vec![batch(1)]).await;
    assert!(matches!(missing.await, Err(StorageError::NotFound(_))), "no partition 9");
    assert_eq!(plain.await.expect("plain").base_offset, 6);
    let mut bases = Vec::new();
    for append in queued.into_iter().rev() {
        let appended = append.await.expect("queued append");
        assert!(!appended.duplicate);
        bases.push(appended.base_offset);
    }
    assert_eq!(bases, [4, 3, 0]);
    let read = storage.log.read(&partition, 0, usize::MAX).await.expect("read");
    assert_eq!(record_offsets(&read.batches), (0..8).collect::<Vec<_>>());
}

pub async fn producer_epochs_fence_and_reset(storage: &Storage) {
    create(storage, "t", 1).await;
    let partition = TopicPartition::new("t", 0);
    let append = |batch: Batch| storage.log.append(&partition, vec![batch]);
    append(producer_batch(3, 1, 0, 2)).await.expect("epoch 1");
    let stale = append(producer_batch(3, 0, 2, 1)).await;
    assert!(matches!(stale, Err(StorageError::Fenced(_))), "{stale:?}");
    let late_start = append(producer_batch(3, 2, 5, 1)).await;
    assert!(matches!(late_start, Err(StorageError::OutOfOrderSequence(_))), "{late_start:?}");
    assert_eq!(append(producer_batch(3, 2, 0, 1)).await.expect("epoch 2").base_offset, 2);
    let fenced = append(producer_batch(3, 1, 2, 1)).await;
    assert!(matches!(fenced, Err(StorageError::Fenced(_))), "{fenced:?}");
    assert_eq!(storage.log.watermarks(&partition).await.expect("marks").high, 3);
}

fn committed(offset: i64, metadata: Option<&str>) -> crate::CommittedOffset {
    crate::CommittedOffset {
        offset,
        leader_epoch: 0,
        metadata: metadata.map(Into::into),
        commit_timestamp_ms: 1_700_000_000_000 + offset,
    }
}

pub async fn committed_offsets_round_trip(storage: &Storage) {
    let offsets = &storage.offsets;
    let tp = |topic: &str, partition| TopicPartition::new(topic, partition);
    assert!(offsets.committed_offsets("g1", None).await.expect("empty").is_empty());
    offsets
        .commit_offsets(
            "g1",
            vec![(tp("b", 0), committed(5, Some("meta"))), (tp("a", 1), committed(7, None))],
        )
        .await
        .expect("commit");
    offsets.commit_offsets("g2", vec![(tp("a", 1), committed(1, None))]).await.expect("commit");
    offsets.commit_offsets("g1", vec![(tp("a", 1), committed(9, None))]).await.expect("replace");

    let all = offsets.committed_offsets("g1", None).await.expect("all");
    assert_eq!(
        all,
        vec![(tp("a", 1), committed(9, None)), (tp("b", 0), committed(5, Some("meta")))]
    );
    let some =
        offsets.committed_offsets("g1", Some(&[tp("b", 0), tp("c", 0)])).await.expect("some");
    assert_eq!(some, vec![(tp("b", 0), committed(5, Some("meta")))], "uncommitted left out");
    assert_eq!(offsets.offset_groups().await.expect("groups"), ["g1", "g2"]);

    offsets.delete_offsets("g1", Some(&[tp("a", 1)])).await.expect("delete one");
    assert_eq!(offsets.committed_offsets("g1", None).await.expect("all").len(), 1);
    assert_eq!(offsets.committed_offsets("g2", None).await.expect("other group").len(), 1);
    offsets.delete_offsets("g1", None).await.expect("delete all");
    assert!(offsets.committed_offsets("g1", None).await.expect("all").is_empty());
    assert_eq!(offsets.offset_groups().await.expect("groups"), ["g2"]);
}

pub async fn deleting_a_topic_forgets_its_offsets(storage: &Storage) {
    create(storage, "gone", 1).await;
    create(storage, "kept", 1).await;
    let commits = vec![
        (TopicPartition::new("gone", 0), committed(3, None)),
        (TopicPartition::new("kept", 0), committed(4, None)),
    ];
    storage.offsets.commit_offsets("g", commits).await.expect("commit");
    storage.meta.delete_topic("gone").await.expect("delete");
    let left = storage.offsets.committed_offsets("g", None).await.expect("offsets");
    assert_eq!(left, vec![(TopicPartition::new("kept", 0), committed(4, None))]);
}

pub async fn transactions_bound_the_last_stable_offset(storage: &Storage) {
    create(storage, "t", 1).await;
    let partition = TopicPartition::new("t", 0);
    let append = |batch: Batch| storage.log.append(&partition, vec![batch]);
    let marks = || storage.log.watermarks(&partition);
    append(batch(3)).await.expect("plain");
    assert_eq!(marks().await.expect("marks").last_stable, 3, "no transaction: stable = high");

    append(transactional_batch(5, 0, 0, 2)).await.expect("txn 5"); // offsets 3-4
    append(transactional_batch(6, 0, 0, 2)).await.expect("txn 6"); // offsets 5-6
    append(transactional_batch(5, 0, 2, 1)).await.expect("txn 5 again"); // offset 7
    let during = marks().await.expect("marks");
    assert_eq!((during.high, during.last_stable), (8, 3));

    let commit = append(marker(5, 0, true)).await.expect("commit 5");
    assert_eq!(commit.base_offset, 8);
    assert_eq!(marks().await.expect("marks").last_stable, 5, "txn 6 still open");
    let abort = append(marker(6, 0, false)).await.expect("abort 6");
    assert_eq!(abort.base_offset, 9);
    let after = marks().await.expect("marks");
    assert_eq!((after.high, after.last_stable), (10, 10));

    let retried = append(marker(5, 0, true)).await.expect("retried marker");
    assert!(retried.duplicate, "a marker for a closed transaction is not appended again");
    assert_eq!(marks().await.expect("marks").high, 10);

    let aborted = storage.log.aborted_transactions(&partition, 0, 10).await.expect("aborted");
    assert_eq!(
        aborted,
        vec![crate::AbortedTransaction { producer_id: 6, first_offset: 5, last_offset: 9 }]
    );
    assert!(storage.log.aborted_transactions(&partition, 10, 20).await.expect("later").is_empty());
    assert!(storage.log.aborted_transactions(&partition, 0, 5).await.expect("earlier").is_empty());

    // The markers are in the log, for consumers to see.
    let read = storage.log.read(&partition, 8, usize::MAX).await.expect("read");
    assert_eq!(read.batches.len(), 2);
}

/// A transaction completed twice (the client's EndTxn and a sweeper, say): the slower
/// completion's markers arrive after the producer began its next transaction with the same
/// epoch, and must not end it; a marker with a newer epoch (a fencing abort) ends what is open.
pub async fn late_markers_leave_the_next_transaction_open(storage: &Storage) {
    create(storage, "t", 1).await;
    let partition = TopicPartition::new("t", 0);
    let append = |batch: Batch| storage.log.append(&partition, vec![batch]);
    let stable = || async { storage.log.watermarks(&partition).await.expect("marks").last_stable };
    append(transactional_batch(5, 0, 0, 2)).await.expect("first transaction"); // 0-1
    let prepared_at = 2; // the high watermark when the first transaction was prepared
    let ended = append(bounded_marker(5, 0, true, prepared_at)).await.expect("commit");
    assert_eq!((ended.base_offset, ended.duplicate), (2, false));
    append(transactional_batch(5, 0, 2, 1)).await.expect("next transaction"); // 3
    assert_eq!(stable().await, 3);

    let late = append(bounded_marker(5, 0, true, prepared_at)).await.expect("late marker");
    assert!(late.duplicate, "the late marker is not appended");
    assert_eq!(stable().await, 3, "the next transaction is still open");
    assert!(storage.log.aborted_transactions(&partition, 0, 10).await.expect("aborted").is_empty());

    let ends = append(bounded_marker(5, 0, false, 4)).await.expect("abort the next one");
    assert_eq!((ends.base_offset, ends.duplicate), (4, false));
    assert_eq!(stable().await, 5);
    let aborted = storage.log.aborted_transactions(&partition, 0, 10).await.expect("aborted");
    assert_eq!(
        aborted,
        vec![crate::AbortedTransaction { producer_id: 5, first_offset: 3, last_offset: 4 }]
    );

    append(transactional_batch(5, 0, 3, 1)).await.expect("third transaction"); // 5
    let fencing = append(bounded_marker(5, 1, false, 0)).await.expect("fencing abort");
    assert!(!fencing.duplicate, "a newer epoch ends what is open, whatever its bound");
    assert_eq!(stable().await, 7);
}

/// Soak bug 5: a client aborts a transaction whose batch was stored but never acknowledged
/// (it purges the record and keeps its epoch), then numbers the next transaction's batch with
/// the same sequence. That batch is not a retry of the aborted one: it must be refused, never
/// acknowledged at the aborted batch's offset. A retry inside the open transaction still is.
pub async fn sequences_reused_after_an_abort_are_not_duplicates(storage: &Storage) {
    create(storage, "t", 1).await;
    let partition = TopicPartition::new("t", 0);
    let append = |batch: Batch| storage.log.append(&partition, vec![batch]);
    append(producer_batch(3, 0, 0, 1)).await.expect("idempotent, no transaction"); // 0
    append(transactional_batch(5, 0, 0, 2)).await.expect("first transaction"); // 1-2
    let retry = append(transactional_batch(5, 0, 0, 2)).await.expect("retry while open");
    assert_eq!((retry.base_offset, retry.duplicate), (1, true), "a retry is acknowledged");
    append(bounded_marker(5, 0, false, 3)).await.expect("abort"); // 3

    let reused = append(transactional_batch(5, 0, 0, 2)).await;
    assert!(matches!(reused, Err(StorageError::OutOfOrderSequence(_))), "{reused:?}");
    let marks = storage.log.watermarks(&partition).await.expect("marks");
    assert_eq!((marks.high, marks.last_stable), (4, 4), "nothing appended, nothing opened");

    // The client bumps its epoch and sends the record again, as a new transaction.
    let again = append(transactional_batch(5, 1, 0, 2)).await.expect("new epoch");
    assert_eq!((again.base_offset, again.duplicate), (4, false));
    let open_retry = append(transactional_batch(5, 1, 0, 2)).await.expect("retry");
    assert_eq!((open_retry.base_offset, open_retry.duplicate), (4, true));
    // Idempotent producers outside transactions keep Kafka's duplicate rule.
    let idempotent = append(producer_batch(3, 0, 0, 1)).await.expect("idempotent retry");
    assert_eq!((idempotent.base_offset, idempotent.duplicate), (0, true));
}

pub async fn markers_fence_older_epochs(storage: &Storage) {
    create(storage, "t", 1).await;
    let partition = TopicPartition::new("t", 0);
    let append = |batch: Batch| storage.log.append(&partition, vec![batch]);
    append(transactional_batch(9, 0, 0, 1)).await.expect("epoch 0");
    // A new producer instance bumped the epoch and aborted the old transaction.
    append(marker(9, 1, false)).await.expect("abort with the new epoch");
    let zombie = append(transactional_batch(9, 0, 1, 1)).await;
    assert!(matches!(zombie, Err(StorageError::Fenced(_))), "{zombie:?}");
    let stale_marker = append(marker(9, 0, true)).await;
    assert!(matches!(stale_marker, Err(StorageError::Fenced(_))), "{stale_marker:?}");
    let fresh = append(transactional_batch(9, 1, 0, 1)).await.expect("new epoch starts at 0");
    assert_eq!(fresh.base_offset, 2);
    assert_eq!(storage.log.watermarks(&partition).await.expect("marks").last_stable, 2);
    append(producer_batch(4, 0, 0, 3)).await.expect("idempotent");

    let producers = storage.log.producers(&partition).await.expect("producers");
    assert_eq!(
        producers,
        vec![
            crate::ProducerSnapshot {
                producer_id: 4,
                epoch: 0,
                last_sequence: 2,
                open_transaction: None
            },
            crate::ProducerSnapshot {
                producer_id: 9,
                epoch: 1,
                last_sequence: 0,
                open_transaction: Some(2)
            },
        ]
    );
}

pub async fn batch_sizes_follow_the_log(storage: &Storage) {
    create(storage, "t", 1).await;
    let partition = TopicPartition::new("t", 0);
    assert!(storage.log.batch_sizes(&partition).await.expect("empty").is_empty());
    let mut expected = Vec::new();
    for count in [1, 3, 2] {
        let batch = batch(count);
        let size = batch.bytes.len() as u64;
        let at = storage.log.append(&partition, vec![batch]).await.expect("append").base_offset;
        expected.push((at, size));
    }
    assert_eq!(storage.log.batch_sizes(&partition).await.expect("sizes"), expected);
    storage.log.delete_records(&partition, 2).await.expect("delete");
    assert_eq!(
        storage.log.batch_sizes(&partition).await.expect("sizes"),
        expected[1..].to_vec(),
        "a batch cut by the log start still counts; one wholly below it does not"
    );
}
