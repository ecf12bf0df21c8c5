//! Retention (`cleanup.policy=delete` with `retention.ms` and `retention.bytes`).
//!
//! Cleaning a partition moves its log start to the first record younger than the retention
//! time, with the same storage call DeleteRecords uses, and never past the last stable offset
//! (records of an open transaction stay until it ends). Engines drop what falls below the log
//! start. By size, whole batches go, oldest first, until what is left fits in
//! `retention.bytes`; the newest batch always stays (Kafka likewise never deletes the active
//! segment).

use skiff_storage::{StorageError, TopicMeta, TopicPartition};

use crate::{topic_config, Broker};

/// What a topic's configs ask retention to do.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub(crate) struct Policy {
    pub(crate) retention_ms: Option<i64>,
    pub(crate) retention_bytes: Option<u64>,
}

/// The retention a topic asks for, if its policy deletes.
pub(crate) fn policy(topic: &TopicMeta) -> Option<Policy> {
    if !super::has_policy(topic, "delete") {
        return None;
    }
    let limit = |name| {
        topic_config::effective(&topic.configs, name).and_then(|value| value.parse::<i64>().ok())
    };
    let policy = Policy {
        retention_ms: limit("retention.ms").filter(|ms| *ms >= 0),
        retention_bytes: limit("retention.bytes").and_then(|bytes| u64::try_from(bytes).ok()),
    };
    (policy != Policy::default()).then_some(policy)
}

/// Where the log must start so that the newest batches holding at most `limit` bytes stay
/// (the newest always stays); `None` if everything fits.
fn size_cut(sizes: &[(i64, u64)], limit: u64) -> Option<i64> {
    let mut kept = 0u64;
    for (index, (_, size)) in sizes.iter().enumerate().rev() {
        let newest = index + 1 == sizes.len();
        if !newest && kept.saturating_add(*size) > limit {
            return sizes.get(index + 1).map(|(base, _)| *base);
        }
        kept = kept.saturating_add(*size);
    }
    None
}

/// Applies retention to one partition; returns the new log start if it moved.
pub(crate) async fn clean_partition(
    broker: &Broker,
    partition: &TopicPartition,
    policy: Policy,
    now: i64,
) -> Result<Option<i64>, StorageError> {
    let log = &broker.storage.log;
    let marks = log.watermarks(partition).await?;
    let mut keep_from = marks.log_start;
    if let Some(retention_ms) = policy.retention_ms {
        let cutoff = now.saturating_sub(retention_ms);
        let by_time = match log.offset_for_time(partition, cutoff).await? {
            Some(found) => found.offset,
            None => marks.high, // every record is older than the cutoff
        };
        keep_from = keep_from.max(by_time);
    }
    if let Some(limit) = policy.retention_bytes {
        if let Some(by_size) = size_cut(&log.batch_sizes(partition).await?, limit) {
            keep_from = keep_from.max(by_size);
        }
    }
    let new_start = keep_from.min(marks.last_stable);
    if new_start <= marks.log_start {
        return Ok(None);
    }
    Ok(Some(log.delete_records(partition, new_start).await?))
}

#[cfg(test)]
mod tests {
    use skiff_storage::testsuite::batch_with;

    use super::*;
    use crate::cleaner::tests::{broker, one_partition};

    #[tokio::test]
    async fn old_records_go_and_young_ones_stay() {
        let broker = broker();
        let partition = one_partition(&broker).await;
        for timestamps in [[100, 200], [300, 400], [900, 1000]] {
            let batch =
                batch_with(&["a", "b"], &timestamps, kafka_protocol::records::Compression::None);
            broker.storage.log.append(&partition, vec![batch]).await.expect("append");
        }
        let by_time = Policy { retention_ms: Some(600), retention_bytes: None };
        // retention 600 ms at time 1000: records older than 400 go.
        assert_eq!(
            clean_partition(&broker, &partition, by_time, 1000).await.expect("clean"),
            Some(3)
        );
        assert_eq!(clean_partition(&broker, &partition, by_time, 1000).await.expect("again"), None);
        // Far in the future everything goes.
        assert_eq!(
            clean_partition(&broker, &partition, by_time, 10_000).await.expect("all"),
            Some(6)
        );
        let marks = broker.storage.log.watermarks(&partition).await.expect("marks");
        assert_eq!((marks.log_start, marks.high), (6, 6));
    }

    #[test]
    fn size_cuts_keep_the_newest_batches_that_fit() {
        let sizes = [(0, 100), (2, 100), (5, 100), (9, 100)];
        assert_eq!(size_cut(&sizes, 400), None);
        assert_eq!(size_cut(&sizes, 399), Some(2));
        assert_eq!(size_cut(&sizes, 200), Some(5));
        assert_eq!(size_cut(&sizes, 0), Some(9), "the newest batch always stays");
        assert_eq!(size_cut(&[], 0), None);
    }

    #[tokio::test]
    async fn size_and_time_limits_combine() {
        let broker = broker();
        let partition = one_partition(&broker).await;
        let mut sizes = Vec::new();
        for timestamp in [100, 200, 300, 400] {
            let batch =
                batch_with(&["x"], &[timestamp], kafka_protocol::records::Compression::None);
            sizes.push(batch.bytes.len() as u64);
            broker.storage.log.append(&partition, vec![batch]).await.expect("append");
        }
        let two_batches = sizes[2] + sizes[3];
        let by_size = Policy { retention_ms: None, retention_bytes: Some(two_batches) };
        assert_eq!(clean_partition(&broker, &partition, by_size, 0).await.expect("size"), Some(2));
        let both = Policy { retention_ms: Some(50), retention_bytes: Some(two_batches) };
        assert_eq!(clean_partition(&broker, &partition, both, 400).await.expect("both"), Some(3));
    }

    #[test]
    fn only_delete_policies_with_a_limit_are_cleaned() {
        let topic = |configs: &[(&str, &str)]| TopicMeta {
            name: "t".into(),
            id: uuid::Uuid::nil(),
            partitions: 1,
            configs: configs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect(),
        };
        let time = |ms| Some(Policy { retention_ms: Some(ms), retention_bytes: None });
        assert_eq!(policy(&topic(&[])), time(604_800_000));
        assert_eq!(policy(&topic(&[("retention.ms", "-1")])), None);
        assert_eq!(
            policy(&topic(&[("retention.ms", "-1"), ("retention.bytes", "10")])),
            Some(Policy { retention_ms: None, retention_bytes: Some(10) })
        );
        assert_eq!(policy(&topic(&[("cleanup.policy", "compact")])), None);
        assert_eq!(
            policy(&topic(&[("cleanup.policy", "compact,delete"), ("retention.ms", "5")])),
            time(5)
        );
    }
}
