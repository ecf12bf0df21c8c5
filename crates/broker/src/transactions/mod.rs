//! The transaction coordinator, without a coordinator: each transactional id's record is kept in
//! storage and moved by compare-and-set (see [`state`] for the state machine). This module does
//! the I/O around it: loading and saving records, writing markers and committing offsets when a
//! transaction completes, and the sweeper that aborts expired transactions and finishes ones a
//! dead broker left prepared.

pub(crate) mod state;

use std::time::Duration;

use bytes::Bytes;
use futures::future::join_all;
use skiff_protocol::batch::{control_batch, ControlType};
use skiff_storage::cas::{self, Change};
use skiff_storage::{CommittedOffset, StorageError, TopicPartition};
use tokio::sync::watch;
use tracing::{debug, info, warn};

use crate::Broker;
use state::{Refusal, Status, Transaction};

/// State keys of transactional ids.
pub(crate) const PREFIX: &str = "transactions/";

fn key(transactional_id: &str) -> String {
    format!("{PREFIX}{transactional_id}")
}

pub(crate) fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|elapsed| elapsed.as_millis() as i64)
        .unwrap_or(0)
}

/// A record and the version it was read at.
pub(crate) struct Stored {
    pub(crate) transaction: Transaction,
    pub(crate) version: u64,
}

fn decode(id: &str, bytes: &[u8]) -> Result<Transaction, StorageError> {
    serde_json::from_slice(bytes)
        .map_err(|error| StorageError::Corrupt(format!("transaction {id}: {error}")))
}

pub(crate) async fn load(broker: &Broker, id: &str) -> Result<Option<Stored>, StorageError> {
    match broker.storage.state.get(&key(id)).await? {
        Some(stored) => {
            Ok(Some(Stored { transaction: decode(id, &stored.value)?, version: stored.version }))
        }
        None => Ok(None),
    }
}

/// Writes a record if it is still at `expected`; `Conflict` otherwise.
pub(crate) async fn save(
    broker: &Broker,
    id: &str,
    transaction: &Transaction,
    expected: Option<u64>,
) -> Result<u64, StorageError> {
    broker.storage.state.put(&key(id), encode(id, transaction)?, expected).await
}

fn encode(id: &str, transaction: &Transaction) -> Result<Bytes, StorageError> {
    serde_json::to_vec(transaction)
        .map(Bytes::from)
        .map_err(|error| StorageError::Corrupt(format!("transaction {id}: {error}")))
}

/// Every transactional id and its record.
pub(crate) async fn list(broker: &Broker) -> Result<Vec<(String, Transaction)>, StorageError> {
    let mut found = Vec::new();
    for (key, stored) in broker.storage.state.list(PREFIX).await? {
        let id = key.trim_start_matches(PREFIX).to_owned();
        found.push((id.clone(), decode(&id, &stored.value)?));
    }
    Ok(found)
}

/// Why a coordinator step failed: the client's fault (a Kafka error code) or storage's.
#[derive(Debug)]
pub(crate) enum Failure {
    Refused(Refusal),
    Storage(StorageError),
}

impl From<StorageError> for Failure {
    fn from(error: StorageError) -> Self {
        Failure::Storage(error)
    }
}

impl Failure {
    /// The error code for the client: storage trouble is retriable (COORDINATOR_NOT_AVAILABLE).
    pub(crate) fn code(&self) -> i16 {
        match self {
            Failure::Refused(code) => code.code(),
            Failure::Storage(error) => {
                warn!(%error, "transaction coordinator storage failure");
                skiff_protocol::ErrorCode::CoordinatorNotAvailable.code()
            }
        }
    }
}

/// Read -> `change` -> compare-and-set, retried when another broker changed the record first.
/// `change` sees the current record (refusing with a Kafka error code if it must).
pub(crate) async fn update<T>(
    broker: &Broker,
    id: &str,
    mut change: impl FnMut(&Transaction) -> Result<(Transaction, T), Refusal>,
) -> Result<(Transaction, T), Failure> {
    cas::update(broker.storage.state.as_ref(), &key(id), |current| {
        let decided = (|| {
            let Some(stored) = current else {
                return Err(Failure::Refused(skiff_protocol::ErrorCode::InvalidProducerIdMapping));
            };
            let transaction = decode(id, &stored.value)?;
            let (next, outcome) = change(&transaction).map_err(Failure::Refused)?;
            if next == transaction {
                return Ok(Change::Keep((next, outcome)));
            }
            Ok(Change::Write(encode(id, &next)?, (next, outcome)))
        })();
        std::future::ready(decided)
    })
    .await
}

/// The high watermarks of the partitions of `id`'s ongoing transaction (none if it is not
/// ongoing): read before EndTxn prepares it, to bound its markers (see
/// [`Transaction::ends_before`]). A partition whose topic is gone is left out.
pub(crate) async fn high_watermarks(
    broker: &Broker,
    id: &str,
) -> Result<Vec<(String, i32, i64)>, StorageError> {
    let Some(stored) = load(broker, id).await? else { return Ok(Vec::new()) };
    if stored.transaction.status != Status::Ongoing {
        return Ok(Vec::new());
    }
    let reads = stored.transaction.partitions.iter().map(|(topic, partition)| async move {
        let target = TopicPartition::new(topic.clone(), *partition);
        match broker.storage.log.watermarks(&target).await {
            Ok(marks) => Ok(Some((topic.clone(), *partition, marks.high))),
            Err(StorageError::NotFound(_)) => Ok(None),
            Err(other) => Err(other),
        }
    });
    let mut found = Vec::new();
    for read in join_all(reads).await {
        found.extend(read?);
    }
    Ok(found)
}

/// Finishes a prepared transaction: markers on every partition, offsets on commit, then the
/// record moves to Complete*. Safe to run twice or on two brokers at once: a marker for a
/// transaction already ended on a partition is not appended again, offsets commits are
/// idempotent, and the final step is a compare-and-set. A completion that runs late, after the
/// producer began its next transaction, leaves that one alone: its markers are bounded.
pub(crate) async fn complete(
    broker: &Broker,
    id: &str,
    prepared: &Transaction,
) -> Result<(), Failure> {
    let commit = match prepared.status {
        Status::PrepareCommit => true,
        Status::PrepareAbort => false,
        _ => return Ok(()),
    };
    let kind = if commit { ControlType::Commit } else { ControlType::Abort };
    let now = now_ms();
    let writes = prepared.partitions.iter().map(|(topic, partition)| async move {
        let target = TopicPartition::new(topic.clone(), *partition);
        let bound = prepared.marker_bound(topic, *partition);
        let marker = control_batch(prepared.producer_id, prepared.producer_epoch, kind, now, bound)
            .map_err(|error| StorageError::Corrupt(format!("marker: {error}")))?;
        match broker.storage.log.append(&target, vec![marker]).await {
            // The topic is gone, or a newer epoch already ended this producer's transaction.
            Ok(_) | Err(StorageError::NotFound(_)) | Err(StorageError::Fenced(_)) => Ok(()),
            Err(other) => Err(other),
        }
    });
    for result in join_all(writes).await {
        result?;
    }
    broker.notify_appended();
    if commit {
        commit_offsets(broker, prepared, now).await?;
    }
    let (producer_id, epoch) = (prepared.producer_id, prepared.producer_epoch);
    update(broker, id, |current| {
        let same = current.producer_id == producer_id
            && current.producer_epoch == epoch
            && current.status == prepared.status;
        Ok((if same { current.completed(now) } else { current.clone() }, ()))
    })
    .await?;
    info!(transactional_id = id, producer_id, epoch, commit, "transaction completed");
    if let Some(metrics) = broker.metrics() {
        metrics.transaction_completed(commit);
    }
    Ok(())
}

async fn commit_offsets(
    broker: &Broker,
    prepared: &Transaction,
    now: i64,
) -> Result<(), StorageError> {
    for group in &prepared.groups {
        let offsets: Vec<(TopicPartition, CommittedOffset)> = prepared
            .pending_offsets
            .iter()
            .filter(|pending| &pending.group == group)
            .map(|pending| {
                (
                    TopicPartition::new(pending.topic.clone(), pending.partition),
                    CommittedOffset {
                        offset: pending.offset,
                        leader_epoch: pending.leader_epoch,
                        metadata: pending.metadata.clone(),
                        commit_timestamp_ms: now,
                    },
                )
            })
            .collect();
        if !offsets.is_empty() {
            broker.storage.offsets.commit_offsets(group, offsets).await?;
        }
    }
    Ok(())
}

/// One pass of the sweeper: aborts expired transactions (fencing their producer) and completes
/// prepared ones whose broker died before finishing.
pub(crate) async fn sweep(broker: &Broker) -> Result<(), StorageError> {
    let now = now_ms();
    for (id, transaction) in list(broker).await? {
        let outcome = if transaction.expired(now) {
            info!(transactional_id = %id, timeout_ms = transaction.timeout_ms, "aborting expired transaction");
            match update(broker, &id, |current| {
                if current.expired(now) {
                    Ok((current.fence_and_abort(now), ()))
                } else {
                    Ok((current.clone(), ()))
                }
            })
            .await
            {
                Ok((next, ())) => complete(broker, &id, &next).await,
                Err(failure) => Err(failure),
            }
        } else if transaction.status.is_prepared() {
            complete(broker, &id, &transaction).await
        } else {
            Ok(())
        };
        if let Err(failure) = outcome {
            debug!(transactional_id = %id, ?failure, "sweep left it for later");
        }
    }
    Ok(())
}

/// Runs [`sweep`] every `interval` until `stop` turns true.
pub(crate) async fn run_sweeper(
    broker: Broker,
    interval: Duration,
    mut stop: watch::Receiver<bool>,
) {
    loop {
        tokio::select! {
            _ = tokio::time::sleep(interval) => {}
            _ = stop.changed() => return,
        }
        if let Err(error) = sweep(&broker).await {
            warn!(%error, "transaction sweep failed");
        }
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use skiff_storage::testsuite::transactional_batch;
    use skiff_storage::TopicSpec;

    use super::*;
    use crate::BrokerConfig;

    /// Bug 2 of the kill soak: the client's EndTxn and a sweeper both complete one prepared
    /// transaction, and the slower one writes its markers after the producer began its next
    /// transaction (same producer id and epoch). The late markers must leave that one open.
    #[tokio::test]
    async fn a_late_completion_leaves_the_next_transaction_open() {
        let config = BrokerConfig::for_address("127.0.0.1:0".parse().expect("address"));
        let broker = Broker::new(skiff_storage_memory::MemoryEngine::storage(), config);
        let spec = TopicSpec { name: "t".into(), partitions: 1, configs: BTreeMap::new() };
        broker.storage.meta.create_topic(spec).await.expect("topic");
        let partition = TopicPartition::new("t", 0);
        let append = |batch| broker.storage.log.append(&partition, vec![batch]);
        let id = "app";
        let begin = |record: &Transaction| {
            record.add_partitions(7, 0, [("t".to_owned(), 0)], now_ms()).map(|next| (next, ()))
        };
        save(&broker, id, &Transaction::new(7, 60_000, now_ms()), None).await.expect("save");

        update(&broker, id, begin).await.expect("first transaction begins");
        append(transactional_batch(7, 0, 0, 2)).await.expect("data");
        let marks = high_watermarks(&broker, id).await.expect("marks");
        assert_eq!(marks, vec![("t".to_owned(), 0, 2)]);
        let (prepared, write) =
            update(&broker, id, |record| record.end(7, 0, true, &marks, now_ms()))
                .await
                .expect("prepare");
        assert!(write);
        complete(&broker, id, &prepared).await.expect("the client's completion");

        update(&broker, id, begin).await.expect("next transaction begins");
        append(transactional_batch(7, 0, 2, 1)).await.expect("data");
        complete(&broker, id, &prepared).await.expect("the sweeper's late completion");

        let marks = broker.storage.log.watermarks(&partition).await.expect("watermarks");
        assert_eq!((marks.high, marks.last_stable), (4, 3), "the next transaction is still open");
        let record = load(&broker, id).await.expect("load").expect("record");
        assert_eq!(record.transaction.status, Status::Ongoing);
    }
}
