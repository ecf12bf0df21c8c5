//! Idempotent-producer sequence rules, as pure functions every engine applies inside its
//! atomic append.
//!
//! For each (partition, producer id) an engine keeps a [`ProducerEntry`]: the producer's epoch
//! and the sequence ranges of its last few batches. An append of a batch carrying a producer id
//! is checked against it *in the same transaction as the append*, so retries that reach another
//! broker are still recognised:
//!
//! - an older epoch than stored is fenced (`Fenced`);
//! - a batch equal to one of the remembered batches is a duplicate: acknowledged with its
//!   original offset, not appended again;
//! - otherwise its first sequence must follow the last one (wrapping at `i32::MAX`), or be 0 for
//!   a new epoch; anything else is `OutOfOrderSequence`. With no entry at all (a new producer,
//!   or one whose records were all deleted) any sequence is accepted, as Kafka does.

use std::collections::HashMap;

use skiff_protocol::batch::{control_type, BatchHeader, ControlType};

use crate::{Batch, ProducerSnapshot, Result, StorageError};

/// Batches remembered per producer and partition: a producer has at most five in flight.
pub const REMEMBERED_BATCHES: usize = 5;

/// Sequence range and offset of one appended batch.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BatchSequence {
    pub first_sequence: i32,
    pub last_sequence: i32,
    pub base_offset: i64,
}

/// What a partition remembers of one producer.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ProducerEntry {
    pub epoch: i16,
    /// Oldest first; at most [`REMEMBERED_BATCHES`].
    pub batches: Vec<BatchSequence>,
}

/// The verdict on one batch.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SequenceCheck {
    /// Not from an idempotent producer, or next in sequence: append it.
    Append,
    /// Already appended at `base_offset`: acknowledge without appending.
    Duplicate { base_offset: i64 },
}

fn last_sequence(header: &BatchHeader) -> i32 {
    // Sequences wrap: a batch may start near i32::MAX and end past 0.
    let last = i64::from(header.base_sequence) + i64::from(header.last_offset_delta);
    if last > i64::from(i32::MAX) {
        (last - i64::from(i32::MAX) - 1) as i32
    } else {
        last as i32
    }
}

fn follows(previous: i32, next: i32) -> bool {
    if previous == i32::MAX {
        next == 0
    } else {
        next == previous + 1
    }
}

/// Checks a batch against the stored entry (if any).
pub fn check(entry: Option<&ProducerEntry>, header: &BatchHeader) -> Result<SequenceCheck> {
    if header.producer_id < 0 {
        return Ok(SequenceCheck::Append);
    }
    let Some(entry) = entry else { return Ok(SequenceCheck::Append) };
    let producer = header.producer_id;
    if header.producer_epoch < entry.epoch {
        return Err(StorageError::Fenced(format!(
            "producer {producer} epoch {} is older than the current epoch {}",
            header.producer_epoch, entry.epoch
        )));
    }
    if header.producer_epoch > entry.epoch {
        return if header.base_sequence == 0 {
            Ok(SequenceCheck::Append)
        } else {
            Err(StorageError::OutOfOrderSequence(format!(
                "producer {producer} new epoch {} must start at sequence 0, not {}",
                header.producer_epoch, header.base_sequence
            )))
        };
    }
    let last = last_sequence(header);
    if let Some(seen) = entry
        .batches
        .iter()
        .find(|seen| seen.first_sequence == header.base_sequence && seen.last_sequence == last)
    {
        return Ok(SequenceCheck::Duplicate { base_offset: seen.base_offset });
    }
    match entry.batches.last() {
        Some(previous) if !follows(previous.last_sequence, header.base_sequence) => {
            Err(StorageError::OutOfOrderSequence(format!(
                "producer {producer} sent sequence {} after {}",
                header.base_sequence, previous.last_sequence
            )))
        }
        _ => Ok(SequenceCheck::Append),
    }
}

/// The entry after appending `header`'s batch at `base_offset` (call only after
/// [`check`] said `Append`). Returns `None` for batches without a producer id.
pub fn record(
    entry: Option<ProducerEntry>,
    header: &BatchHeader,
    base_offset: i64,
) -> Option<ProducerEntry> {
    if header.producer_id < 0 {
        return entry;
    }
    let mut entry = match entry {
        Some(entry) if entry.epoch == header.producer_epoch => entry,
        _ => ProducerEntry { epoch: header.producer_epoch, batches: Vec::new() },
    };
    if entry.batches.len() == REMEMBERED_BATCHES {
        entry.batches.remove(0);
    }
    entry.batches.push(BatchSequence {
        first_sequence: header.base_sequence,
        last_sequence: last_sequence(header),
        base_offset,
    });
    Some(entry)
}

/// A transaction that ended on a partition: its data spans `first_offset..last_offset`, where
/// `last_offset` is the marker's offset.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct EndedTransaction {
    pub producer_id: i64,
    pub first_offset: i64,
    pub last_offset: i64,
    pub aborted: bool,
}

/// What an engine must write for one `append` call, worked out before writing anything.
#[derive(Debug, Default)]
pub struct AppendPlan {
    /// Batches to store, each with its assigned base offset, in order.
    pub appends: Vec<(Batch, i64)>,
    /// Producer entries to store (replacing the old ones) with the batches.
    pub entries: Vec<(i64, ProducerEntry)>,
    /// Transactions that start on this partition: (producer id, first offset).
    pub opened: Vec<(i64, i64)>,
    /// Transactions a marker in this append ends (remove them from the open ones; remember
    /// the aborted ones for read_committed fetches).
    pub ended: Vec<EndedTransaction>,
    /// The high watermark after the append.
    pub high: i64,
    /// What the caller is told.
    pub base_offset: i64,
    pub duplicate: bool,
}

/// Plans an append at `high`: assigns offsets, applies the sequence rules to every batch and
/// tracks transactions, reading stored state through `stored` (a producer's entry) and
/// `open_since` (the first offset of a producer's open transaction on this partition). Any
/// refusal refuses the whole call, so an engine that gets `Ok` can write the plan and one that
/// gets `Err` writes nothing.
///
/// A transaction marker (control batch) is appended only if it ends its producer's open
/// transaction here; otherwise it is a retried, late or empty end and only fences older epochs.
/// It ends the open transaction if that began below the marker's base offset (the bound the
/// coordinator sets, see `skiff_protocol::batch::control_batch`), or if the marker carries a
/// newer epoch than the partition knows (a fencing abort: whatever is open belongs to the
/// fenced instance). So a marker completing a transaction twice, the second time after the
/// producer began its next transaction with the same epoch, leaves that transaction open.
pub fn plan_append(
    batches: Vec<Batch>,
    high: i64,
    mut stored: impl FnMut(i64) -> Result<Option<ProducerEntry>>,
    mut open_since: impl FnMut(i64) -> Result<Option<i64>>,
) -> Result<AppendPlan> {
    let mut entries: HashMap<i64, ProducerEntry> = HashMap::new();
    let mut open: HashMap<i64, Option<i64>> = HashMap::new();
    let mut plan = AppendPlan { high, ..AppendPlan::default() };
    let mut first_offset = None;
    for batch in batches {
        let producer = batch.header.producer_id;
        let current = match entries.get(&producer) {
            Some(entry) => Some(entry.clone()),
            None if producer >= 0 => stored(producer)?,
            None => None,
        };
        if batch.header.is_control() {
            let since = open_first(&open, &mut open_since, producer)?;
            // `fence` resets the entry exactly when the marker's epoch is newer (or none is kept).
            let reset = fence(current.as_ref(), &batch.header)?;
            let newer_epoch = reset.is_some();
            if let Some(entry) = reset {
                entries.insert(producer, entry);
            }
            let Some(first) =
                since.filter(|first| newer_epoch || *first < batch.header.base_offset)
            else {
                continue;
            };
            let at = plan.high;
            first_offset.get_or_insert(at);
            plan.ended.push(EndedTransaction {
                producer_id: producer,
                first_offset: first,
                last_offset: at,
                aborted: control_type(&batch.bytes) != Some(ControlType::Commit),
            });
            open.insert(producer, None);
            plan.high += batch.header.offset_count();
            plan.appends.push((batch, at));
            continue;
        }
        match check(current.as_ref(), &batch.header)? {
            SequenceCheck::Duplicate { base_offset } => {
                if batch.header.is_transactional() {
                    let since = open_first(&open, &mut open_since, producer)?;
                    retry_of_open_transaction(&batch.header, base_offset, since)?;
                }
                first_offset.get_or_insert(base_offset);
            }
            SequenceCheck::Append => {
                let at = plan.high;
                first_offset.get_or_insert(at);
                if let Some(entry) = record(current, &batch.header, at) {
                    entries.insert(producer, entry);
                }
                if batch.header.is_transactional() && producer >= 0 {
                    let since = open_first(&open, &mut open_since, producer)?;
                    if since.is_none() {
                        plan.opened.push((producer, at));
                    }
                    open.insert(producer, Some(since.unwrap_or(at)));
                }
                plan.high += batch.header.offset_count();
                plan.appends.push((batch, at));
            }
        }
    }
    plan.duplicate = plan.appends.is_empty();
    plan.base_offset = first_offset.unwrap_or(high);
    plan.entries = entries.into_iter().collect();
    // A transaction opened and ended within one call never needs to be stored as open.
    plan.opened.retain(|(producer, first)| {
        !plan
            .ended
            .iter()
            .any(|ended| ended.producer_id == *producer && ended.first_offset == *first)
    });
    Ok(plan)
}

/// The first offset of `producer`'s open transaction on the partition: as this call's earlier
/// batches left it (`open`), else as stored.
fn open_first(
    open: &HashMap<i64, Option<i64>>,
    open_since: &mut impl FnMut(i64) -> Result<Option<i64>>,
    producer: i64,
) -> Result<Option<i64>> {
    match open.get(&producer) {
        Some(since) => Ok(*since),
        None => open_since(producer),
    }
}

/// A transactional batch matching a remembered one is a retry only if the remembered batch
/// lies in the producer's transaction still open on this partition (open since `since`). A
/// match before it belongs to a transaction already ended, and a client cannot retry a batch
/// of a transaction it has ended: such a client has reused the sequence numbers of records it
/// purged on abort (librdkafka does, keeping its epoch, when an abort purges records whose
/// answer it never got; soak bug 5). Acknowledging it as a duplicate would acknowledge a
/// record the log holds only as aborted, so it is refused as out of order, which makes the
/// client bump its epoch and send it again.
fn retry_of_open_transaction(
    header: &BatchHeader,
    original: i64,
    since: Option<i64>,
) -> Result<()> {
    if since.is_some_and(|first| first <= original) {
        return Ok(());
    }
    Err(StorageError::OutOfOrderSequence(format!(
        "producer {} epoch {} sent sequence {} again, but the batch stored with it at offset \
         {original} belongs to a transaction that has ended",
        header.producer_id, header.producer_epoch, header.base_sequence
    )))
}

/// A marker from an older epoch than stored is fenced; one from a newer epoch moves the
/// producer to that epoch (its sequences restart), which fences its zombies on this partition.
fn fence(entry: Option<&ProducerEntry>, header: &BatchHeader) -> Result<Option<ProducerEntry>> {
    match entry {
        Some(entry) if header.producer_epoch < entry.epoch => Err(StorageError::Fenced(format!(
            "marker of producer {} epoch {} is older than the current epoch {}",
            header.producer_id, header.producer_epoch, entry.epoch
        ))),
        Some(entry) if header.producer_epoch == entry.epoch => Ok(None),
        _ => Ok(Some(ProducerEntry { epoch: header.producer_epoch, batches: Vec::new() })),
    }
}

impl ProducerEntry {
    /// What DescribeProducers shows of this entry.
    pub fn snapshot(&self, producer_id: i64, open_transaction: Option<i64>) -> ProducerSnapshot {
        ProducerSnapshot {
            producer_id,
            epoch: self.epoch,
            last_sequence: self.batches.last().map_or(-1, |batch| batch.last_sequence),
            open_transaction,
        }
    }

    /// A compact, engine-independent encoding: epoch, count, then (first, last, offset) each.
    pub fn encode(&self) -> Vec<u8> {
        let mut bytes = Vec::with_capacity(3 + self.batches.len() * 16);
        bytes.extend_from_slice(&self.epoch.to_be_bytes());
        bytes.push(self.batches.len() as u8);
        for batch in &self.batches {
            bytes.extend_from_slice(&batch.first_sequence.to_be_bytes());
            bytes.extend_from_slice(&batch.last_sequence.to_be_bytes());
            bytes.extend_from_slice(&batch.base_offset.to_be_bytes());
        }
        bytes
    }

    /// Reverses [`Self::encode`]; `Corrupt` if the bytes are not such an encoding.
    pub fn decode(bytes: &[u8]) -> Result<Self> {
        let corrupt = || StorageError::Corrupt("producer entry does not decode".into());
        let (epoch, rest) = bytes.split_first_chunk::<2>().ok_or_else(corrupt)?;
        let (count, mut rest) = rest.split_first().ok_or_else(corrupt)?;
        let mut batches = Vec::with_capacity(usize::from(*count));
        for _ in 0..*count {
            let (first, tail) = rest.split_first_chunk::<4>().ok_or_else(corrupt)?;
            let (last, tail) = tail.split_first_chunk::<4>().ok_or_else(corrupt)?;
            let (offset, tail) = tail.split_first_chunk::<8>().ok_or_else(corrupt)?;
            batches.push(BatchSequence {
                first_sequence: i32::from_be_bytes(*first),
                last_sequence: i32::from_be_bytes(*last),
                base_offset: i64::from_be_bytes(*offset),
            });
            rest = tail;
        }
        if !rest.is_empty() {
            return Err(corrupt());
        }
        Ok(Self { epoch: i16::from_be_bytes(*epoch), batches })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn header(producer_id: i64, epoch: i16, base_sequence: i32, records: i32) -> BatchHeader {
        BatchHeader {
            base_offset: 0,
            batch_length: 0,
            partition_leader_epoch: -1,
            magic: 2,
            crc: 0,
            attributes: 0,
            last_offset_delta: records - 1,
            base_timestamp: 0,
            max_timestamp: 0,
            producer_id,
            producer_epoch: epoch,
            base_sequence,
            record_count: records,
        }
    }

    /// Applies a batch the way an engine does; returns the verdict and the new entry.
    fn apply(
        entry: Option<ProducerEntry>,
        batch: &BatchHeader,
        offset: i64,
    ) -> (Result<SequenceCheck>, Option<ProducerEntry>) {
        match check(entry.as_ref(), batch) {
            Ok(SequenceCheck::Append) => (Ok(SequenceCheck::Append), record(entry, batch, offset)),
            other => (other, entry),
        }
    }

    #[test]
    fn in_order_batches_append_and_retries_are_duplicates() {
        let (verdict, entry) = apply(None, &header(7, 0, 0, 3), 10);
        assert_eq!(verdict, Ok(SequenceCheck::Append));
        let (verdict, entry) = apply(entry, &header(7, 0, 3, 2), 13);
        assert_eq!(verdict, Ok(SequenceCheck::Append));
        let (verdict, entry) = apply(entry, &header(7, 0, 0, 3), 99);
        assert_eq!(verdict, Ok(SequenceCheck::Duplicate { base_offset: 10 }));
        let (verdict, _) = apply(entry, &header(7, 0, 3, 2), 99);
        assert_eq!(verdict, Ok(SequenceCheck::Duplicate { base_offset: 13 }));
    }

    #[test]
    fn gaps_and_old_epochs_are_refused() {
        let (_, entry) = apply(None, &header(7, 1, 0, 3), 0);
        let gap = check(entry.as_ref(), &header(7, 1, 5, 1));
        assert!(matches!(gap, Err(StorageError::OutOfOrderSequence(_))), "{gap:?}");
        let old = check(entry.as_ref(), &header(7, 0, 3, 1));
        assert!(matches!(old, Err(StorageError::Fenced(_))), "{old:?}");
        let new_epoch_late = check(entry.as_ref(), &header(7, 2, 4, 1));
        assert!(matches!(new_epoch_late, Err(StorageError::OutOfOrderSequence(_))));
        let (verdict, entry) = apply(entry, &header(7, 2, 0, 1), 3);
        assert_eq!(verdict, Ok(SequenceCheck::Append));
        assert_eq!(entry.map(|e| (e.epoch, e.batches.len())), Some((2, 1)));
    }

    #[test]
    fn sequences_wrap_at_i32_max() {
        let (_, entry) = apply(None, &header(1, 0, i32::MAX - 1, 2), 0);
        assert_eq!(entry.as_ref().map(|e| e.batches[0].last_sequence), Some(i32::MAX));
        let (verdict, _) = apply(entry, &header(1, 0, 0, 3), 2);
        assert_eq!(verdict, Ok(SequenceCheck::Append));
        let (_, entry) = apply(None, &header(1, 0, i32::MAX, 2), 0);
        assert_eq!(entry.map(|e| e.batches[0].last_sequence), Some(0));
    }

    #[test]
    fn non_idempotent_batches_are_never_checked() {
        let entry = ProducerEntry { epoch: 5, batches: Vec::new() };
        assert_eq!(check(Some(&entry), &header(-1, -1, -1, 4)), Ok(SequenceCheck::Append));
        assert_eq!(record(None, &header(-1, -1, -1, 4), 0), None);
    }

    proptest! {
        #[test]
        fn only_the_last_five_batches_are_remembered(sizes in proptest::collection::vec(1i32..5, 1..20)) {
            let mut entry = None;
            let mut sequence = 0;
            let mut offset = 0;
            for size in &sizes {
                let batch = header(3, 0, sequence, *size);
                let (verdict, next) = apply(entry, &batch, offset);
                prop_assert_eq!(verdict, Ok(SequenceCheck::Append));
                entry = next;
                sequence += size;
                offset += i64::from(*size);
            }
            let entry = entry.expect("entry");
            prop_assert_eq!(entry.batches.len(), sizes.len().min(REMEMBERED_BATCHES));
            prop_assert_eq!(ProducerEntry::decode(&entry.encode()), Ok(entry));
        }

        #[test]
        fn decode_never_panics(bytes in proptest::collection::vec(any::<u8>(), 0..64)) {
            let _ = ProducerEntry::decode(&bytes);
        }
    }
}
