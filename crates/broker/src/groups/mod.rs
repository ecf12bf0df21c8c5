//! Consumer groups kept in storage: every change is read -> pure transition -> compare-and-set,
//! retried after re-reading when another broker (or another request here) got there first.
//! Nothing about a group is remembered between requests, so a JoinGroup on one broker and a
//! SyncGroup or Heartbeat on another see the same group.

use std::collections::BTreeMap;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use bytes::Bytes;
use skiff_coordinator::consumer::{TopicId, TopicMetadata};
use skiff_coordinator::{AnyGroup, GroupError, Limits};
use skiff_protocol::ErrorCode;
use skiff_storage::cas::{self, Change};
use skiff_storage::{Storage, StorageError, Versioned};
use tokio::sync::watch;
use tokio::time::Instant;

use crate::cached::Cached;
use crate::Broker;

pub(crate) mod embedded;

/// State-store keys of groups: `groups/<group id>`, one JSON value each.
pub(crate) const KEY_PREFIX: &str = "groups/";

pub(crate) fn key(group_id: &str) -> String {
    format!("{KEY_PREFIX}{group_id}")
}

/// Wall-clock milliseconds: deadlines and sessions are compared across brokers, so they are
/// stored as absolute times (brokers sharing storage are assumed to have synchronized clocks).
pub(crate) fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|elapsed| i64::try_from(elapsed.as_millis()).unwrap_or(i64::MAX))
        .unwrap_or(0)
}

pub(crate) fn limits(broker: &Broker) -> Limits {
    Limits {
        initial_rebalance_delay_ms: broker.config.group_initial_rebalance_delay_ms,
        initial_rebalance_quiet_ms: broker.config.group_initial_rebalance_quiet_ms,
        ..Limits::default()
    }
}

/// A group operation that could not run.
#[derive(Debug)]
pub(crate) enum Failure {
    Storage(StorageError),
    Corrupt,
}

impl Failure {
    /// Storage trouble is retriable: clients look the coordinator up again and retry.
    pub(crate) fn code(&self) -> i16 {
        match self {
            Failure::Storage(error) => {
                tracing::warn!(%error, "group storage failed");
                ErrorCode::CoordinatorNotAvailable.code()
            }
            Failure::Corrupt => {
                tracing::error!("stored group does not decode");
                ErrorCode::UnknownServerError.code()
            }
        }
    }
}

impl From<StorageError> for Failure {
    fn from(error: StorageError) -> Self {
        Failure::Storage(error)
    }
}

/// Kafka's error code for a refused group request.
pub(crate) fn code(error: GroupError) -> i16 {
    let code = match error {
        GroupError::UnknownMemberId => ErrorCode::UnknownMemberId,
        GroupError::IllegalGeneration => ErrorCode::IllegalGeneration,
        GroupError::RebalanceInProgress => ErrorCode::RebalanceInProgress,
        GroupError::FencedInstanceId => ErrorCode::FencedInstanceId,
        GroupError::InconsistentGroupProtocol => ErrorCode::InconsistentGroupProtocol,
        GroupError::MemberIdRequired => ErrorCode::MemberIdRequired,
        GroupError::InvalidSessionTimeout => ErrorCode::InvalidSessionTimeout,
        GroupError::CoordinatorNotAvailable => ErrorCode::CoordinatorNotAvailable,
        GroupError::NonEmptyGroup => ErrorCode::NonEmptyGroup,
        GroupError::FencedMemberEpoch => ErrorCode::FencedMemberEpoch,
        GroupError::UnreleasedInstanceId => ErrorCode::UnreleasedInstanceId,
        GroupError::UnsupportedAssignor => ErrorCode::UnsupportedAssignor,
        GroupError::InvalidRegularExpression => ErrorCode::InvalidRegularExpression,
        GroupError::InvalidRequest => ErrorCode::InvalidRequest,
        GroupError::GroupMaxSizeReached => ErrorCode::GroupMaxSizeReached,
        GroupError::StaleMemberEpoch => ErrorCode::StaleMemberEpoch,
        GroupError::OtherProtocol => ErrorCode::GroupIdNotFound,
        GroupError::UnsupportedVersion => ErrorCode::UnsupportedVersion,
        _ => ErrorCode::UnknownServerError,
    };
    code.code()
}

/// A group of either kind as stored (`None`: not stored yet, read as an empty classic group).
pub(crate) struct StoredAny {
    pub(crate) group: AnyGroup,
    pub(crate) version: Option<u64>,
}

/// The group a stored value holds (an absent one: a new, empty classic group).
fn decode(stored: Option<Versioned>) -> Result<AnyGroup, Failure> {
    match stored {
        Some(stored) => AnyGroup::from_json(&stored.value).map_err(|_| Failure::Corrupt),
        None => Ok(AnyGroup::default()),
    }
}

/// Reads a group of either kind and applies what time alone changed, without writing: for
/// requests that only look (DescribeGroups, ListGroups, ConsumerGroupDescribe) or decide
/// from the group before changing something else (DeleteGroups, OffsetDelete).
pub(crate) async fn view(broker: &Broker, group_id: &str) -> Result<StoredAny, Failure> {
    let stored = broker.storage.state.get(&key(group_id)).await?;
    let version = stored.as_ref().map(|stored| stored.version);
    let mut group = decode(stored)?;
    group.tick(now_ms());
    Ok(StoredAny { group, version })
}

/// Applies `change` to the group as stored now, of either kind (after [`AnyGroup::tick`];
/// then [`AnyGroup::settle`], which turns a group left with only classic members back into
/// a classic group), and writes the result if anything changed, re-reading and re-applying
/// on a lost compare-and-set. `change` may run several times, so it must be a pure function
/// of the group and the time. Each request matches on the kind it finds: the classic
/// requests serve classic members of either kind of group, ConsumerGroupHeartbeat converts a
/// classic group. Returns its result and the group as written.
pub(crate) async fn update_any<R>(
    broker: &Broker,
    group_id: &str,
    mut change: impl FnMut(&mut AnyGroup, i64) -> R,
) -> Result<(R, AnyGroup), Failure> {
    let (result, group, written) =
        cas::update(broker.storage.state.as_ref(), &key(group_id), |current| {
            let decided = decode(current).map(|original| {
                let now = now_ms();
                let mut group = original.clone();
                group.tick(now);
                let result = change(&mut group, now);
                group.settle(now);
                if group == original {
                    Change::Keep((result, group, false))
                } else {
                    Change::Write(Bytes::from(group.to_json()), (result, group, true))
                }
            });
            std::future::ready(decided)
        })
        .await?;
    if written {
        broker.notify_group_changed();
    }
    Ok((result, group))
}

/// Every topic's id and partition count, by name: what consumer-protocol subscriptions are
/// resolved against and assignments computed from.
pub(crate) type TopicList = BTreeMap<String, TopicMetadata>;

/// How long a broker's copy of the topic list serves heartbeats before it is read again (in the
/// background). Reading it is a query on SQL engines but a LIST and a GET per topic on S3,
/// too much for every heartbeat of every member.
const TOPIC_LIST_REFRESH: Duration = Duration::from_secs(1);

/// A broker's copy of the topic list (`Broker::group_topics`).
pub(crate) fn topic_list_cache(storage: Storage) -> Cached<TopicList> {
    Cached::new(
        "topic list",
        TOPIC_LIST_REFRESH,
        Box::new(move || {
            let storage = storage.clone();
            Box::pin(async move {
                let topics = storage.meta.topics().await?;
                Ok(topics
                    .into_iter()
                    .map(|topic| {
                        let id = TopicId(topic.id.into_bytes());
                        (topic.name, TopicMetadata { id, partitions: topic.partitions })
                    })
                    .collect())
            })
        }),
    )
}

/// What a waiting JoinGroup or SyncGroup watches between re-reads of its group.
pub(crate) struct Waiter {
    changes: watch::Receiver<u64>,
    stopping: watch::Receiver<bool>,
    deadline: Instant,
}

impl Waiter {
    /// Subscribes before the request's first change, so no wake-up is missed.
    pub(crate) fn new(broker: &Broker, timeout_ms: i32) -> Self {
        Self {
            changes: broker.group_changes(),
            stopping: broker.stopping(),
            deadline: deadline_after(timeout_ms),
        }
    }

    /// Waits `timeout_ms` from now instead, keeping the subscriptions.
    pub(crate) fn restart_timeout(&mut self, timeout_ms: i32) {
        self.deadline = deadline_after(timeout_ms);
    }

    pub(crate) fn expired(&self) -> bool {
        Instant::now() >= self.deadline
    }

    /// Sleeps until a local group change, the poll interval, or the deadline, whichever comes
    /// first. `Err` with NOT_COORDINATOR once the broker is shutting down: the client then
    /// finds another broker and carries on there, as its membership lives in storage.
    pub(crate) async fn pause(&mut self, broker: &Broker) -> Result<(), i16> {
        let not_coordinator = ErrorCode::NotCoordinator.code();
        if *self.stopping.borrow() {
            return Err(not_coordinator);
        }
        let remaining = self.deadline.saturating_duration_since(Instant::now());
        tokio::select! {
            _ = self.changes.changed() => {}
            _ = self.stopping.changed() => return Err(not_coordinator),
            _ = tokio::time::sleep(broker.group_poll_interval().min(remaining)) => {}
        }
        self.changes.borrow_and_update();
        Ok(())
    }
}

fn deadline_after(timeout_ms: i32) -> Instant {
    Instant::now() + Duration::from_millis(u64::try_from(timeout_ms.max(0)).unwrap_or(0))
}

/// How often a broker with metrics counts the consumer groups in storage: a listing of every
/// group key (on S3 a request per group), so not at every scrape.
const GROUP_COUNT_INTERVAL: Duration = Duration::from_secs(60);

/// Counts the consumer groups in storage for the metrics now and every
/// [`GROUP_COUNT_INTERVAL`], until the broker stops; nothing without metrics.
pub(crate) async fn run_group_counter(broker: Broker, mut stop: watch::Receiver<bool>) {
    if broker.metrics().is_none() {
        return;
    }
    loop {
        count_groups(&broker).await;
        tokio::select! {
            _ = tokio::time::sleep(GROUP_COUNT_INTERVAL) => {}
            _ = stop.changed() => return,
        }
    }
}

/// Sets the consumer group gauge from storage; a failed listing keeps the last count.
pub(crate) async fn count_groups(broker: &Broker) {
    let Some(metrics) = broker.metrics() else { return };
    match all_group_ids(broker).await {
        Ok(ids) => metrics.consumer_groups(ids.len()),
        Err(error) => tracing::warn!(%error, "counting consumer groups failed"),
    }
}

/// Every group id: those with stored state and those that only have committed offsets.
pub(crate) async fn all_group_ids(broker: &Broker) -> Result<Vec<String>, StorageError> {
    let mut ids: Vec<String> = broker
        .storage
        .state
        .list(KEY_PREFIX)
        .await?
        .into_iter()
        .filter_map(|(key, _)| key.strip_prefix(KEY_PREFIX).map(str::to_owned))
        .collect();
    ids.extend(broker.storage.offsets.offset_groups().await?);
    ids.sort();
    ids.dedup();
    Ok(ids)
}

#[cfg(test)]
mod group_count_tests {
    use std::sync::Arc;

    use super::*;
    use crate::BrokerConfig;

    #[tokio::test]
    async fn the_group_gauge_counts_the_groups_in_storage() {
        let storage = skiff_storage_memory::MemoryEngine::storage();
        let metrics = Arc::new(skiff_metrics::Metrics::new());
        let config = BrokerConfig::for_address("127.0.0.1:0".parse().expect("address"));
        let broker = Broker::with_metrics(storage.clone(), config, Some(metrics.clone()));
        for group in ["orders", "audit"] {
            storage.state.put(&key(group), Bytes::from_static(b"{}"), None).await.expect("stored");
        }
        count_groups(&broker).await;
        let text = metrics.encode().expect("encoded");
        assert!(text.lines().any(|line| line == "skiff_consumer_groups 2"), "{text}");
    }
}
