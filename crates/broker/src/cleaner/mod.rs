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

use bytes::Bytes;
use skiff_storage::{StorageError, TopicMeta, TopicPartition};
use tokio::sync::watch;
use tracing::{debug, info, warn};

use crate::transactions::now_ms;
use crate::Broker;

/// State key of the cleaner lease: "<holder> <expires at ms>".
const LEASE_KEY: &str = "cleaner/lease";

/// Takes (or renews) the cleaner lease for `holder` until `now + ttl`; false if another
/// broker holds an unexpired lease.
pub(crate) async fn take_lease(
    broker: &Broker,
    holder: &str,
    now: i64,
    ttl: Duration,
) -> Result<bool, StorageError> {
    let current = broker.storage.state.get(LEASE_KEY).await?;
    if let Some(stored) = &current {
        let text = String::from_utf8_lossy(&stored.value);
        let mut parts = text.split(' ');
        let owner = parts.next().unwrap_or_default();
        let expires = parts.next().and_then(|value| value.parse::<i64>().ok()).unwrap_or(0);
        if owner != holder && expires > now {
            return Ok(false);
        }
    }
    let expires = now + i64::try_from(ttl.as_millis()).unwrap_or(i64::MAX / 2);
    let value = Bytes::from(format!("{holder} {expires}"));
    match broker.storage.state.put(LEASE_KEY, value, current.map(|stored| stored.version)).await {
        Ok(_) => Ok(true),
        Err(StorageError::Conflict(_)) => Ok(false),
        Err(other) => Err(other),
    }
}

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
        match take_lease(&broker, &holder, now_ms(), ttl).await {
            Ok(true) => {
                if let Err(error) = clean(&broker).await {
                    warn!(%error, "cleaner pass failed");
                }
            }
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

    #[tokio::test]
    async fn only_one_holder_gets_the_lease_until_it_expires() {
        let broker = broker();
        let ttl = Duration::from_millis(1000);
        assert!(take_lease(&broker, "a", 0, ttl).await.expect("lease"));
        assert!(!take_lease(&broker, "b", 500, ttl).await.expect("lease"), "a holds it");
        assert!(take_lease(&broker, "a", 900, ttl).await.expect("lease"), "a renews");
        assert!(!take_lease(&broker, "b", 1800, ttl).await.expect("lease"), "renewed until 1900");
        assert!(take_lease(&broker, "b", 2000, ttl).await.expect("lease"), "expired: b takes it");
    }
}
