//! The log cleaner: retention ([`delete`]) and compaction ([`compact`]), on every engine.
//!
//! Any broker may clean, but only one should at a time: the cleaner first takes a lease in
//! storage (`cleaner/lease`, compare-and-set, expiring), so a fleet of brokers does the work
//! once and a dead broker's lease simply runs out. Each pass walks every topic and applies what
//! its `cleanup.policy` asks: `delete` moves log starts, `compact` removes records superseded
//! by a newer one with the same key; `compact,delete` does both. Everything goes through the
//! storage traits, so there is nothing engine-specific here.

pub(crate) mod compact;
pub(crate) mod delete;

use std::time::Duration;

use skiff_storage::{StorageError, TopicMeta, TopicPartition};
use tokio::sync::watch;
use tracing::{debug, info, warn};

use crate::transactions::now_ms;
use crate::Broker;

/// State key of the cleaner lease (see [`crate::lease`]).
const LEASE_KEY: &str = "cleaner/lease";

/// One pass over every topic: retention, then compaction, as each topic's policy asks.
pub(crate) async fn clean(broker: &Broker) -> Result<(), StorageError> {
    let now = now_ms();
    for topic in broker.storage.meta.topics().await? {
        let retention = delete::policy(&topic);
        let compaction = compact::policy(&topic);
        if retention.is_none() && compaction.is_none() {
            continue;
        }
        for index in 0..topic.partitions {
            let partition = TopicPartition::new(topic.name.clone(), index);
            if let Some(policy) = retention {
                match delete::clean_partition(broker, &partition, policy, now).await {
                    Ok(Some(start)) => {
                        info!(%partition, log_start = start, "retention deleted records")
                    }
                    Ok(None) => {}
                    Err(StorageError::NotFound(_)) => continue, // deleted meanwhile
                    Err(error) => warn!(%partition, %error, "retention failed"),
                }
            }
            if let Some(policy) = compaction {
                match compact::compact_partition(broker, &partition, policy, now).await {
                    Ok(0) => {}
                    Ok(removed) => info!(%partition, removed, "compaction removed records"),
                    Err(StorageError::NotFound(_)) => {}
                    Err(error) => warn!(%partition, %error, "compaction failed"),
                }
            }
        }
    }
    Ok(())
}

/// Whether a topic's `cleanup.policy` names `wanted` (`delete` or `compact`).
pub(crate) fn has_policy(topic: &TopicMeta, wanted: &str) -> bool {
    let cleanup =
        crate::topic_config::effective(&topic.configs, "cleanup.policy").unwrap_or("delete");
    cleanup.split(',').any(|item| item.trim() == wanted)
}

/// Runs [`clean`] every `interval` while this broker holds the cleaner lease, until `stop`.
pub(crate) async fn run_cleaner(
    broker: Broker,
    interval: Duration,
    mut stop: watch::Receiver<bool>,
) {
    let holder = uuid::Uuid::new_v4().simple().to_string();
    // The lease outlives one interval a little, so its holder keeps it from pass to pass.
    let ttl = interval.saturating_mul(2);
    loop {
        tokio::select! {
            _ = tokio::time::sleep(interval) => {}
            _ = stop.changed() => return,
        }
        match skiff_storage::lease::take(
            broker.storage.state.as_ref(),
            LEASE_KEY,
            &holder,
            now_ms(),
            ttl,
        )
        .await
        {
            Ok(true) => match clean(&broker).await {
                Ok(()) => {
                    if let Some(metrics) = broker.metrics() {
                        metrics.cleaner_pass();
                    }
                }
                Err(error) => warn!(%error, "cleaner pass failed"),
            },
            Ok(false) => debug!("another broker holds the cleaner lease"),
            Err(error) => warn!(%error, "cleaner lease unavailable"),
        }
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use std::collections::BTreeMap;

    use skiff_storage::TopicSpec;

    use super::*;
    use crate::BrokerConfig;

    pub(crate) fn broker() -> Broker {
        let config = BrokerConfig::for_address("127.0.0.1:0".parse().expect("address"));
        Broker::new(skiff_storage_memory::MemoryEngine::storage(), config)
    }

    /// Creates topic "t" with one partition and returns that partition.
    pub(crate) async fn one_partition(broker: &Broker) -> TopicPartition {
        let spec = TopicSpec { name: "t".into(), partitions: 1, configs: BTreeMap::new() };
        broker.storage.meta.create_topic(spec).await.expect("create");
        TopicPartition::new("t", 0)
    }
}
