//! Compaction (`cleanup.policy=compact`): keeps the newest record of each key.
//!
//! A pass reads a partition from its log start up to the cleanable limit (the last stable
//! offset, so open transactions are never touched, or the first record younger than
//! `min.compaction.lag.ms`) twice: first to learn each key's newest offset, then to list the
//! records that go, which one `remove_records` call removes. Offsets never change; batches keep
//! their place and shrink, and a batch left empty disappears. Memory is one entry per distinct
//! key, not per record.
//!
//! Removed, as Kafka's cleaner does: every record with a newer one of the same key; records of
//! aborted transactions; records without a key (produce refuses them on compacted topics, but a
//! topic switched to `compact` may hold some); and a tombstone (null value) that is the newest
//! of its key once it is older than `delete.retention.ms`. That age is the record's timestamp:
//! a stateless broker keeps no "first cleaned at" time. Transaction markers stay.

use std::collections::HashMap;

use bytes::Bytes;
use skiff_storage::{StorageError, TopicMeta, TopicPartition};

use crate::log_scan::{scan, Scanned};
use crate::{topic_config, Broker};

/// What a compacted topic's configs ask for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct CompactPolicy {
    /// How long a tombstone stays once it is the newest record of its key.
    pub(crate) delete_retention_ms: i64,
    /// Records younger than this are not compacted yet.
    pub(crate) min_lag_ms: i64,
}

/// The compaction a topic asks for, if its policy compacts.
pub(crate) fn policy(topic: &TopicMeta) -> Option<CompactPolicy> {
    if !super::has_policy(topic, "compact") {
        return None;
    }
    let millis = |name, default| {
        topic_config::effective(&topic.configs, name)
            .and_then(|value| value.parse::<i64>().ok())
            .filter(|ms| *ms >= 0)
            .unwrap_or(default)
    };
    Some(CompactPolicy {
        delete_retention_ms: millis("delete.retention.ms", 86_400_000),
        min_lag_ms: millis("min.compaction.lag.ms", 0),
    })
}

/// Whether a record goes, given each key's newest offset and the time before which a newest
/// tombstone has outlived `delete.retention.ms`.
fn doomed(record: &Scanned<'_>, newest: &HashMap<Bytes, i64>, tombstone_horizon: i64) -> bool {
    if record.aborted {
        return true;
    }
    let Some(key) = record.key else { return true };
    match newest.get(key) {
        Some(offset) if *offset != record.offset => true,
        _ => record.tombstone() && record.timestamp < tombstone_horizon,
    }
}

/// Compacts one partition; returns how many records were removed.
pub(crate) async fn compact_partition(
    broker: &Broker,
    partition: &TopicPartition,
    policy: CompactPolicy,
    now: i64,
) -> Result<u64, StorageError> {
    let log = &broker.storage.log;
    let marks = log.watermarks(partition).await?;
    let (from, limit) = (marks.log_start, marks.last_stable);
    if from >= limit {
        return Ok(0);
    }
    let aborted = log.aborted_transactions(partition, from, limit).await?;
    let young = now.saturating_sub(policy.min_lag_ms);

    let mut newest: HashMap<Bytes, i64> = HashMap::new();
    let limit = scan(log.as_ref(), partition, from, limit, &aborted, |record| {
        if record.timestamp > young {
            return false; // too young: the pass ends here
        }
        if let (Some(key), false) = (record.key, record.aborted) {
            match newest.get_mut(key) {
                Some(offset) => *offset = record.offset,
                None => {
                    newest.insert(Bytes::copy_from_slice(key), record.offset);
                }
            }
        }
        true
    })
    .await?;

    let horizon = now.saturating_sub(policy.delete_retention_ms);
    let mut removals = Vec::new();
    scan(log.as_ref(), partition, from, limit, &aborted, |record| {
        if doomed(record, &newest, horizon) {
            removals.push(record.offset);
        }
        true
    })
    .await?;
    if removals.is_empty() {
        return Ok(0);
    }
    log.remove_records(partition, &removals).await
}

#[cfg(test)]
mod tests {
    use kafka_protocol::records::{
        Compression, Record, RecordBatchEncoder, RecordEncodeOptions, TimestampType,
    };
    use skiff_protocol::batch::split_batches;
    use skiff_protocol::records;
    use skiff_storage::testsuite::marker;
    use skiff_storage::Batch;

    use super::*;
    use crate::cleaner::tests::{broker, one_partition};

    /// (key, value, timestamp)
    type Row<'a> = (Option<&'a str>, Option<&'a str>, i64);

    /// A batch of keyed records; `producer` makes it transactional for that (id, epoch).
    fn keyed(rows: &[Row<'_>], producer: Option<(i64, i16)>) -> Batch {
        let (producer_id, producer_epoch) = producer.unwrap_or((-1, -1));
        let records: Vec<Record> = rows
            .iter()
            .enumerate()
            .map(|(index, (key, value, timestamp))| Record {
                transactional: producer.is_some(),
                control: false,
                delete_horizon: false,
                partition_leader_epoch: 0,
                producer_id,
                producer_epoch,
                timestamp_type: TimestampType::Creation,
                offset: index as i64,
                sequence: index as i32,
                timestamp: *timestamp,
                key: key.map(|key| Bytes::copy_from_slice(key.as_bytes())),
                value: value.map(|value| Bytes::copy_from_slice(value.as_bytes())),
                headers: Default::default(),
            })
            .collect();
        let mut buf = bytes::BytesMut::new();
        let options = RecordEncodeOptions { version: 2, compression: Compression::None };
        RecordBatchEncoder::encode(&mut buf, &records, &options).expect("encodes");
        split_batches(&buf.freeze()).expect("valid").remove(0)
    }

    /// (offset, key, value) of every data record left in the partition.
    async fn left(broker: &Broker, partition: &TopicPartition) -> Vec<(i64, String, String)> {
        let read = broker.storage.log.read(partition, 0, usize::MAX).await.expect("read");
        let mut found = Vec::new();
        for bytes in &read.batches {
            let batch = split_batches(bytes).expect("valid").remove(0);
            if batch.header.is_control() {
                continue;
            }
            for record in records::decode(&batch).expect("decodes") {
                let text = |part: &Option<Bytes>| match part {
                    Some(bytes) => String::from_utf8_lossy(bytes).into_owned(),
                    None => "-".to_owned(),
                };
                let offset = batch.header.base_offset + i64::from(record.offset_delta);
                found.push((offset, text(&record.key), text(&record.value)));
            }
        }
        found
    }

    fn owned(rows: &[(i64, &str, &str)]) -> Vec<(i64, String, String)> {
        rows.iter()
            .map(|(offset, key, value)| (*offset, key.to_string(), value.to_string()))
            .collect()
    }

    const POLICY: CompactPolicy = CompactPolicy { delete_retention_ms: 1000, min_lag_ms: 0 };

    async fn keyed_log(broker: &Broker) -> TopicPartition {
        let partition = one_partition(broker).await;
        for rows in [
            &[(Some("a"), Some("a1"), 100), (Some("b"), Some("b1"), 100)][..],
            &[(Some("a"), Some("a2"), 200), (Some("c"), Some("c1"), 200)],
            &[(Some("b"), None, 300)],
            &[(Some("a"), Some("a3"), 400), (None, Some("keyless"), 400)],
        ] {
            broker.storage.log.append(&partition, vec![keyed(rows, None)]).await.expect("append");
        }
        partition
    }

    #[tokio::test]
    async fn the_newest_record_of_each_key_stays() {
        let broker = broker();
        let partition = keyed_log(&broker).await;
        let removed = compact_partition(&broker, &partition, POLICY, 1000).await.expect("compact");
        assert_eq!(removed, 4, "a1, b1, a2 and the keyless record");
        assert_eq!(
            left(&broker, &partition).await,
            owned(&[(3, "c", "c1"), (4, "b", "-"), (5, "a", "a3")]),
            "the tombstone is younger than delete.retention.ms"
        );
        assert_eq!(compact_partition(&broker, &partition, POLICY, 1000).await.expect("again"), 0);
        let marks = broker.storage.log.watermarks(&partition).await.expect("marks");
        assert_eq!((marks.log_start, marks.high), (0, 7), "offsets never change");

        // Once older than delete.retention.ms, the tombstone goes too.
        assert_eq!(compact_partition(&broker, &partition, POLICY, 1301).await.expect("later"), 1);
        assert_eq!(left(&broker, &partition).await, owned(&[(3, "c", "c1"), (5, "a", "a3")]));
    }

    #[tokio::test]
    async fn records_younger_than_the_minimum_lag_wait() {
        let broker = broker();
        let partition = keyed_log(&broker).await;
        let lagging = CompactPolicy { delete_retention_ms: 1000, min_lag_ms: 500 };
        // At 750 only records up to 250 may be compacted: a1 (superseded by a2) goes.
        let removed = compact_partition(&broker, &partition, lagging, 750).await.expect("compact");
        assert_eq!(removed, 1);
        assert_eq!(left(&broker, &partition).await.first().map(|row| row.0), Some(1));
    }

    #[tokio::test]
    async fn aborted_records_go_and_open_transactions_wait() {
        let broker = broker();
        let partition = one_partition(&broker).await;
        let log = &broker.storage.log;
        let aborted =
            keyed(&[(Some("x"), Some("x1"), 10), (Some("y"), Some("y1"), 10)], Some((7, 0)));
        log.append(&partition, vec![aborted]).await.expect("txn");
        log.append(&partition, vec![marker(7, 0, false)]).await.expect("abort");
        log.append(&partition, vec![keyed(&[(Some("x"), Some("x2"), 20)], None)])
            .await
            .expect("x2");
        let open = keyed(&[(Some("x"), Some("x3"), 30)], Some((8, 0)));
        log.append(&partition, vec![open]).await.expect("open txn");

        assert_eq!(compact_partition(&broker, &partition, POLICY, 100).await.expect("compact"), 2);
        assert_eq!(
            left(&broker, &partition).await,
            owned(&[(3, "x", "x2"), (4, "x", "x3")]),
            "the open transaction's record is past the last stable offset"
        );
    }

    #[test]
    fn only_compacting_policies_compact() {
        let topic = |policy: &str| TopicMeta {
            name: "t".into(),
            id: uuid::Uuid::nil(),
            partitions: 1,
            configs: [("cleanup.policy".to_owned(), policy.to_owned())].into(),
        };
        assert_eq!(policy(&topic("delete")), None);
        assert_eq!(
            policy(&topic("compact,delete")),
            Some(CompactPolicy { delete_retention_ms: 86_400_000, min_lag_ms: 0 })
        );
    }
}
