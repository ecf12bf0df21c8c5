//! Conformance cases for strings that come from clients. Kafka strings are length-prefixed
//! UTF-8, so they may hold U+0000 (a C string or a Postgres `text` cannot); every engine stores
//! and returns them whole, and keeps their byte order. U+0001 is tested too, since an engine may
//! use it to escape U+0000.

use std::collections::BTreeMap;

use bytes::Bytes;
use kafka_protocol::protocol::StrBytes;
use kafka_protocol::records::{Compression, Record, RecordBatchDecoder};

use super::{committed, create, encode_batch, plain_record};
use crate::{Batch, ConfigChange, Storage, StorageError, TopicPartition, TopicSpec};

/// Offset metadata the way clients send it (kafka-python's `OffsetAndMetadata("Hello\0world!")`)
/// and around the escape character, one per group of `offset_metadata_and_group_ids_keep_nul`.
const METADATA: [&str; 5] = ["Hello\0world!", "\0", "\u{1}", "\u{1}\u{1}", "\0\u{1}\u{2}"];

pub async fn offset_metadata_and_group_ids_keep_nul(storage: &Storage) {
    let offsets = &storage.offsets;
    let tp = TopicPartition::new("t", 0);
    let groups = ["g", "g\0", "g\0x", "g\u{1}", "g\u{1}\u{1}"];
    for (index, group) in groups.iter().enumerate() {
        let commit = vec![(tp.clone(), committed(index as i64, Some(METADATA[index])))];
        offsets.commit_offsets(group, commit).await.expect("commit");
    }
    for (index, group) in groups.iter().enumerate() {
        let read = offsets.committed_offsets(group, None).await.expect("all");
        let expected = vec![(tp.clone(), committed(index as i64, Some(METADATA[index])))];
        assert_eq!(read, expected, "{group:?}");
        let some =
            offsets.committed_offsets(group, Some(std::slice::from_ref(&tp))).await.expect("some");
        assert_eq!(some, read, "{group:?}");
    }
    assert_eq!(offsets.offset_groups().await.expect("groups"), groups, "bytewise order");

    offsets.delete_offsets("g\0", Some(std::slice::from_ref(&tp))).await.expect("delete one");
    offsets.delete_offsets("g\u{1}", None).await.expect("delete all");
    assert_eq!(
        offsets.offset_groups().await.expect("groups"),
        ["g", "g\0x", "g\u{1}\u{1}"],
        "only the named groups went"
    );
}

pub async fn state_keys_keep_nul(storage: &Storage) {
    let state = &storage.state;
    let keys = ["groups/a", "groups/a\0", "groups/a\0b", "groups/a\u{1}", "groups/b"];
    let mut versions = Vec::new();
    for key in keys {
        versions.push(state.put(key, Bytes::from(key), None).await.expect("create"));
    }
    for key in keys {
        let read = state.get(key).await.expect("get").expect("exists");
        assert_eq!(read.value, Bytes::from(key), "{key:?} is its own key");
    }
    let listed = |prefix: &'static str| async move {
        let found = state.list(prefix).await.expect("list");
        found.into_iter().map(|(key, stored)| (key, stored.value)).collect::<Vec<_>>()
    };
    let all: Vec<(String, Bytes)> =
        keys.iter().map(|key| (key.to_string(), Bytes::from(*key))).collect();
    assert_eq!(listed("groups/").await, all, "bytewise order");
    assert_eq!(listed("groups/a\0").await, all[1..3].to_vec(), "a prefix holding U+0000");
    assert_eq!(listed("groups/a\u{1}").await, all[3..4].to_vec());

    state.delete("groups/a\0", versions[1]).await.expect("delete");
    assert_eq!(state.get("groups/a\0").await.expect("get"), None);
    assert!(state.get("groups/a").await.expect("get").is_some(), "a different key");
    let gone = state.delete("groups/a\0", versions[1]).await;
    assert!(matches!(gone, Err(StorageError::NotFound(_))), "{gone:?}");
}

pub async fn config_values_keep_nul(storage: &Storage) {
    let configs = BTreeMap::from([("x".into(), "a\0b".into()), ("y\u{1}".into(), "\u{1}".into())]);
    let spec = TopicSpec { name: "t".into(), partitions: 1, configs: configs.clone() };
    storage.meta.create_topic(spec).await.expect("create");
    let stored = storage.meta.topic("t").await.expect("get").expect("exists");
    assert_eq!(stored.configs, configs);

    let change = |key: &str, value: Option<&str>| ConfigChange {
        key: key.into(),
        value: value.map(Into::into),
    };
    let changes = vec![change("x", None), change("z\0", Some("\0\u{1}\u{2}"))];
    let altered = storage.meta.alter_configs("t", changes, false).await.expect("alter");
    let expected =
        BTreeMap::from([("y\u{1}".into(), "\u{1}".into()), ("z\0".into(), "\0\u{1}\u{2}".into())]);
    assert_eq!(altered.configs, expected);
    let removed = storage.meta.alter_configs("t", vec![change("z\0", None)], false).await;
    let removed = removed.expect("remove a key holding U+0000");
    assert_eq!(removed.configs, BTreeMap::from([("y\u{1}".into(), "\u{1}".into())]));
    let listed = storage.meta.topics().await.expect("topics");
    assert_eq!(listed.len(), 1);
    assert_eq!(listed[0].configs, removed.configs);
}

/// One record with the given header keys (values are the keys' positions).
fn batch_with_header_keys(keys: &[&str]) -> Batch {
    let headers = keys
        .iter()
        .enumerate()
        .map(|(index, key)| {
            (StrBytes::from_string((*key).to_owned()), Some(Bytes::from(index.to_string())))
        })
        .collect();
    let record = Record { headers, ..plain_record(0, 1000, Bytes::from_static(b"v")) };
    encode_batch(&[record], Compression::None)
}

pub async fn header_keys_keep_nul(storage: &Storage) {
    create(storage, "t", 1).await;
    let partition = TopicPartition::new("t", 0);
    let keys = ["trace\0id", "\u{1}", "\0", "plain"];
    storage.log.append(&partition, vec![batch_with_header_keys(&keys)]).await.expect("append");
    let read = storage.log.read(&partition, 0, usize::MAX).await.expect("read");
    let mut headers = Vec::new();
    for batch in &read.batches {
        let mut buf = batch.clone();
        let set = RecordBatchDecoder::decode(&mut buf).expect("stored batch decodes");
        for record in set.records {
            headers.extend(record.headers.into_iter().map(|(key, value)| (key.to_string(), value)));
        }
    }
    let expected: Vec<(String, Option<Bytes>)> = keys
        .iter()
        .enumerate()
        .map(|(index, key)| (key.to_string(), Some(Bytes::from(index.to_string()))))
        .collect();
    assert_eq!(headers, expected);
}

pub async fn topic_names_with_nul_name_no_topic(storage: &Storage) {
    create(storage, "t", 1).await;
    assert_eq!(storage.meta.topic("t\0").await.expect("lookup"), None);
    let partition = TopicPartition::new("t\0", 0);
    let marks = storage.log.watermarks(&partition).await;
    assert!(matches!(marks, Err(StorageError::NotFound(_))), "{marks:?}");
    let read = storage.log.read(&partition, 0, 100).await;
    assert!(matches!(read, Err(StorageError::NotFound(_))), "{read:?}");
    let append = storage.log.append(&partition, vec![super::batch(1)]).await;
    assert!(matches!(append, Err(StorageError::NotFound(_))), "{append:?}");
    let delete = storage.meta.delete_topic("t\0").await;
    assert!(matches!(delete, Err(StorageError::NotFound(_))), "{delete:?}");
}
