//! The transaction state machine: pure functions over one transactional id's stored record.
//!
//! The record lives in storage (`transactions/<transactional id>`, JSON) and is changed only by
//! read -> transition -> compare-and-set, so any broker can serve any step of a transaction and a
//! broker dying between steps leaves a state another broker knows how to finish.
//!
//! ```text
//! Empty / Complete* --AddPartitions/AddOffsets--> Ongoing --EndTxn--> Prepare{Commit,Abort}
//!   ^                                                                   | markers written,
//!   +------------------------------- Complete{Commit,Abort} <-----------+ offsets applied
//! ```
//! `Prepare*` is the commit point: once stored, the outcome is decided, and whoever finds the
//! record in that state (the EndTxn retry, InitProducerId, the timeout sweeper) completes it.

use std::collections::BTreeSet;

use serde::{Deserialize, Serialize};
use skiff_protocol::ErrorCode;

/// Longest transaction timeout a producer may ask for (Kafka's `transaction.max.timeout.ms`).
pub(crate) const MAX_TIMEOUT_MS: i32 = 900_000;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) enum Status {
    Empty,
    Ongoing,
    PrepareCommit,
    PrepareAbort,
    CompleteCommit,
    CompleteAbort,
}

impl Status {
    /// The name Kafka's admin APIs use.
    pub(crate) fn name(self) -> &'static str {
        match self {
            Status::Empty => "Empty",
            Status::Ongoing => "Ongoing",
            Status::PrepareCommit => "PrepareCommit",
            Status::PrepareAbort => "PrepareAbort",
            Status::CompleteCommit => "CompleteCommit",
            Status::CompleteAbort => "CompleteAbort",
        }
    }

    pub(crate) fn is_prepared(self) -> bool {
        matches!(self, Status::PrepareCommit | Status::PrepareAbort)
    }
}

/// An offset committed inside a transaction, applied to the group when it commits.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct PendingOffset {
    pub(crate) group: String,
    pub(crate) topic: String,
    pub(crate) partition: i32,
    pub(crate) offset: i64,
    pub(crate) leader_epoch: i32,
    pub(crate) metadata: Option<String>,
}

/// Everything known about one transactional id.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct Transaction {
    pub(crate) producer_id: i64,
    pub(crate) producer_epoch: i16,
    pub(crate) timeout_ms: i32,
    pub(crate) status: Status,
    pub(crate) partitions: BTreeSet<(String, i32)>,
    pub(crate) groups: BTreeSet<String>,
    pub(crate) pending_offsets: Vec<PendingOffset>,
    /// When the current transaction began (became Ongoing), for timeouts and admin tools.
    pub(crate) started_ms: i64,
    pub(crate) updated_ms: i64,
    /// Set when EndTxn prepares the transaction: each partition's high watermark then, (topic,
    /// partition, offset). Every record of the transaction lies below it and every record of the
    /// producer's next one at or above it, so markers carrying it end this transaction only,
    /// however late a second completion writes them. A partition missing here (a record from
    /// an older Skiff, or a topic gone) gets markers that end whatever is open.
    #[serde(default)]
    pub(crate) ends_before: Vec<(String, i32, i64)>,
}

/// A refusal, as the Kafka error code the client expects.
pub(crate) type Refusal = ErrorCode;

impl Transaction {
    pub(crate) fn new(producer_id: i64, timeout_ms: i32, now_ms: i64) -> Self {
        Self {
            producer_id,
            producer_epoch: 0,
            timeout_ms,
            status: Status::Empty,
            partitions: BTreeSet::new(),
            groups: BTreeSet::new(),
            pending_offsets: Vec::new(),
            started_ms: -1,
            updated_ms: now_ms,
            ends_before: Vec::new(),
        }
    }

    /// The bound [`Self::ends_before`] gives `partition`'s markers.
    pub(crate) fn marker_bound(&self, topic: &str, partition: i32) -> i64 {
        self.ends_before
            .iter()
            .find(|(t, p, _)| t == topic && *p == partition)
            .map_or(i64::MAX, |(_, _, offset)| *offset)
    }

    /// The caller must be the producer instance that owns the id now.
    pub(crate) fn check_producer(&self, producer_id: i64, epoch: i16) -> Result<(), Refusal> {
        if producer_id != self.producer_id {
            return Err(ErrorCode::InvalidProducerIdMapping);
        }
        if epoch < self.producer_epoch {
            return Err(ErrorCode::ProducerFenced);
        }
        if epoch > self.producer_epoch {
            return Err(ErrorCode::InvalidProducerEpoch);
        }
        Ok(())
    }

    /// Starts a transaction if none is ongoing; refuses while one is being completed.
    fn ensure_ongoing(&mut self, now_ms: i64) -> Result<(), Refusal> {
        match self.status {
            Status::Ongoing => Ok(()),
            Status::PrepareCommit | Status::PrepareAbort => Err(ErrorCode::ConcurrentTransactions),
            Status::Empty | Status::CompleteCommit | Status::CompleteAbort => {
                self.status = Status::Ongoing;
                self.partitions.clear();
                self.groups.clear();
                self.pending_offsets.clear();
                self.ends_before.clear();
                self.started_ms = now_ms;
                Ok(())
            }
        }
    }

    /// AddPartitionsToTxn.
    pub(crate) fn add_partitions(
        &self,
        producer_id: i64,
        epoch: i16,
        partitions: impl IntoIterator<Item = (String, i32)>,
        now_ms: i64,
    ) -> Result<Self, Refusal> {
        self.check_producer(producer_id, epoch)?;
        let mut next = self.clone();
        next.ensure_ongoing(now_ms)?;
        next.partitions.extend(partitions);
        next.updated_ms = now_ms;
        Ok(next)
    }

    /// AddOffsetsToTxn: the group's offsets will be committed with the transaction.
    pub(crate) fn add_group(
        &self,
        producer_id: i64,
        epoch: i16,
        group: &str,
        now_ms: i64,
    ) -> Result<Self, Refusal> {
        self.check_producer(producer_id, epoch)?;
        let mut next = self.clone();
        next.ensure_ongoing(now_ms)?;
        next.groups.insert(group.to_owned());
        next.updated_ms = now_ms;
        Ok(next)
    }

    /// TxnOffsetCommit: remembers offsets to apply on commit (a later one for the same
    /// partition replaces an earlier one).
    pub(crate) fn add_offsets(
        &self,
        producer_id: i64,
        epoch: i16,
        offsets: Vec<PendingOffset>,
        now_ms: i64,
    ) -> Result<Self, Refusal> {
        self.check_producer(producer_id, epoch)?;
        if self.status != Status::Ongoing {
            return Err(ErrorCode::InvalidTxnState);
        }
        let mut next = self.clone();
        for offset in offsets {
            next.pending_offsets.retain(|kept| {
                (&kept.group, &kept.topic, kept.partition)
                    != (&offset.group, &offset.topic, offset.partition)
            });
            next.groups.insert(offset.group.clone());
            next.pending_offsets.push(offset);
        }
        next.updated_ms = now_ms;
        Ok(next)
    }

    /// EndTxn: the new record and whether markers must now be written. Retries of an EndTxn
    /// whose outcome is already decided or done succeed without changing anything.
    /// `high_watermarks` are the transaction's partitions' high watermarks, read after the
    /// producer's last write of the transaction was acknowledged (it sends EndTxn only then):
    /// they become [`Self::ends_before`].
    pub(crate) fn end(
        &self,
        producer_id: i64,
        epoch: i16,
        commit: bool,
        high_watermarks: &[(String, i32, i64)],
        now_ms: i64,
    ) -> Result<(Self, bool), Refusal> {
        self.check_producer(producer_id, epoch)?;
        let (prepare, complete) = if commit {
            (Status::PrepareCommit, Status::CompleteCommit)
        } else {
            (Status::PrepareAbort, Status::CompleteAbort)
        };
        let mut next = self.clone();
        next.updated_ms = now_ms;
        match self.status {
            Status::Ongoing => {
                next.status = prepare;
                next.ends_before = high_watermarks
                    .iter()
                    .filter(|(topic, partition, _)| {
                        self.partitions.contains(&(topic.clone(), *partition))
                    })
                    .cloned()
                    .collect();
                Ok((next, true))
            }
            status if status == prepare => Ok((self.clone(), true)),
            status if status == complete => Ok((self.clone(), false)),
            // Nothing was added: there is nothing to write.
            Status::Empty => {
                next.status = complete;
                Ok((next, false))
            }
            _ => Err(ErrorCode::InvalidTxnState),
        }
    }

    /// After the markers (and, on commit, the offsets) are written.
    pub(crate) fn completed(&self, now_ms: i64) -> Self {
        let mut next = self.clone();
        next.status = match self.status {
            Status::PrepareCommit => Status::CompleteCommit,
            Status::PrepareAbort => Status::CompleteAbort,
            other => other,
        };
        next.partitions.clear();
        next.groups.clear();
        next.pending_offsets.clear();
        next.ends_before.clear();
        next.updated_ms = now_ms;
        next
    }

    /// Fences the current producer instance and aborts its transaction: the epoch moves on
    /// (the markers carry it, so the old instance's writes are refused on every partition).
    /// Its markers need no bound: a newer epoch ends whatever the old instance left open, and a
    /// late copy meets the next instance's newer epoch and is fenced.
    pub(crate) fn fence_and_abort(&self, now_ms: i64) -> Self {
        let mut next = self.clone();
        next.producer_epoch = self.producer_epoch.saturating_add(1);
        next.status = Status::PrepareAbort;
        next.updated_ms = now_ms;
        next
    }

    /// InitProducerId on an idle record: the next epoch (a fresh id when the epoch is
    /// exhausted, given by `fresh_id`), with the producer's new timeout.
    pub(crate) fn next_epoch(&self, timeout_ms: i32, fresh_id: Option<i64>, now_ms: i64) -> Self {
        let mut next = self.completed(now_ms);
        match fresh_id {
            Some(id) => {
                next.producer_id = id;
                next.producer_epoch = 0;
            }
            None => next.producer_epoch += 1,
        }
        next.status = Status::Empty;
        next.timeout_ms = timeout_ms;
        next.started_ms = -1;
        next
    }

    /// Whether the epoch cannot be bumped again without running out.
    pub(crate) fn epoch_exhausted(&self) -> bool {
        self.producer_epoch >= i16::MAX - 2
    }

    /// An ongoing transaction past its timeout.
    pub(crate) fn expired(&self, now_ms: i64) -> bool {
        self.status == Status::Ongoing
            && now_ms.saturating_sub(self.started_ms) > i64::from(self.timeout_ms)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ongoing() -> Transaction {
        Transaction::new(7, 60_000, 0)
            .add_partitions(7, 0, [("t".to_owned(), 0), ("t".to_owned(), 1)], 10)
            .expect("add")
    }

    #[test]
    fn a_transaction_goes_through_prepare_to_complete() {
        let txn = ongoing();
        assert_eq!((txn.status, txn.started_ms, txn.partitions.len()), (Status::Ongoing, 10, 2));
        let (prepared, write) = txn.end(7, 0, true, &[], 20).expect("end");
        assert_eq!((prepared.status, write), (Status::PrepareCommit, true));
        let (again, write) = prepared.end(7, 0, true, &[], 21).expect("retry");
        assert_eq!((again.status, write), (Status::PrepareCommit, true), "a retry completes it");
        let done = prepared.completed(30);
        assert_eq!((done.status, done.partitions.len()), (Status::CompleteCommit, 0));
        assert!(!done.end(7, 0, true, &[], 31).expect("late retry").1, "nothing left to write");
        assert_eq!(done.end(7, 0, false, &[], 31).err(), Some(ErrorCode::InvalidTxnState));
    }

    #[test]
    fn prepare_keeps_the_bounds_of_the_transaction_partitions() {
        let marks = [("t".to_owned(), 0, 40), ("t".to_owned(), 1, 7), ("other".to_owned(), 0, 3)];
        let (prepared, _) = ongoing().end(7, 0, true, &marks, 20).expect("end");
        assert_eq!((prepared.marker_bound("t", 0), prepared.marker_bound("t", 1)), (40, 7));
        assert_eq!(prepared.ends_before.len(), 2, "a partition outside the transaction is dropped");
        let (again, _) = prepared.end(7, 0, true, &[], 21).expect("retry");
        assert_eq!(again.marker_bound("t", 0), 40, "a retry keeps the bounds it was prepared with");
        assert_eq!(prepared.completed(30).marker_bound("t", 0), i64::MAX);
        let (unbounded, _) = ongoing().end(7, 0, true, &[], 20).expect("end");
        assert_eq!(unbounded.marker_bound("t", 1), i64::MAX, "no bound: end whatever is open");
    }

    #[test]
    fn stale_epochs_and_other_producers_are_refused() {
        let txn = ongoing();
        assert_eq!(txn.end(8, 0, true, &[], 1).err(), Some(ErrorCode::InvalidProducerIdMapping));
        let fenced = txn.fence_and_abort(5);
        assert_eq!((fenced.producer_epoch, fenced.status), (1, Status::PrepareAbort));
        assert_eq!(fenced.end(7, 0, true, &[], 6).err(), Some(ErrorCode::ProducerFenced));
        let (prepared, _) = ongoing().end(7, 0, false, &[], 1).expect("abort");
        assert_eq!(
            prepared.add_partitions(7, 0, [("t".to_owned(), 2)], 2).err(),
            Some(ErrorCode::ConcurrentTransactions)
        );
    }

    #[test]
    fn offsets_replace_per_partition_and_need_an_ongoing_transaction() {
        let offset = |value| PendingOffset {
            group: "g".into(),
            topic: "t".into(),
            partition: 0,
            offset: value,
            leader_epoch: -1,
            metadata: None,
        };
        let empty = Transaction::new(7, 60_000, 0);
        assert_eq!(
            empty.add_offsets(7, 0, vec![offset(1)], 1).err(),
            Some(ErrorCode::InvalidTxnState)
        );
        let txn = ongoing().add_offsets(7, 0, vec![offset(1)], 1).expect("add");
        let txn = txn.add_offsets(7, 0, vec![offset(5)], 2).expect("replace");
        assert_eq!(txn.pending_offsets, vec![offset(5)]);
        assert!(txn.groups.contains("g"));
    }

    #[test]
    fn expiry_and_epoch_bumps() {
        let txn = ongoing();
        assert!(!txn.expired(60_010));
        assert!(txn.expired(60_011));
        let next = txn.completed(1).next_epoch(1000, None, 2);
        assert_eq!((next.producer_epoch, next.status, next.timeout_ms), (1, Status::Empty, 1000));
        let fresh = next.next_epoch(1000, Some(99), 3);
        assert_eq!((fresh.producer_id, fresh.producer_epoch), (99, 0));
        let stored = serde_json::to_string(&fresh).expect("json");
        assert_eq!(serde_json::from_str::<Transaction>(&stored).expect("back"), fresh);
    }
}
