//! A partition's head object: the one small, mutable object per partition, replaced only by
//! compare-and-set (`If-Match` on the ETag read). It holds everything an append must check and
//! change atomically: the watermarks, producer sequence state, open and aborted transactions,
//! and the index from offsets to byte ranges of immutable data objects.
//!
//! The newest index entries live in the head; older ones are rolled into immutable index
//! segment objects ([`SegmentRef`]) so the head stays small however long the log grows.

use std::collections::{BTreeMap, VecDeque};

use serde::{Deserialize, Serialize};
use skiff_storage::producers::{AppendPlan, BatchSequence, ProducerEntry};
use skiff_storage::{AbortedTransaction, Result, StorageError, Watermarks};

/// Write tokens remembered in a head: enough to recognise our own write after an ambiguous
/// failure (a timeout whose request did land) even when a few other writers followed it.
const REMEMBERED_WRITES: usize = 32;
/// Producers idle this long are forgotten (Kafka's `producer.id.expiration.ms` default), so a
/// head does not grow with every producer that ever wrote: a forgotten producer's next batch
/// is accepted with any sequence, as for a new producer (Kafka does the same).
pub(crate) const PRODUCER_EXPIRY_MS: i64 = 24 * 60 * 60 * 1000;
/// Expiry is looked at only once a head remembers this many producers.
const PRODUCERS_BEFORE_EXPIRY: usize = 64;

/// One stored batch: where its bytes are and which offsets it holds.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct Entry {
    /// Base offset assigned to the batch (the stored bytes carry the producer's; it is
    /// rewritten on read: the CRC does not cover it).
    #[serde(rename = "b")]
    pub(crate) base: i64,
    /// Offsets the batch spans (`last_offset_delta + 1`).
    #[serde(rename = "n")]
    pub(crate) count: i64,
    /// Data object name (under `data/`).
    #[serde(rename = "k")]
    pub(crate) object: String,
    /// Byte range in that object.
    #[serde(rename = "s")]
    pub(crate) start: u64,
    #[serde(rename = "l")]
    pub(crate) len: u64,
    /// The batch header's max timestamp.
    #[serde(rename = "t")]
    pub(crate) max_timestamp: i64,
    /// Size of the whole data object (0: unknown), so a reader can fetch a small object whole
    /// and serve the other partitions' batches in it from memory.
    #[serde(rename = "z", default)]
    pub(crate) object_len: u64,
}

/// Largest offset a head may name: far beyond any real log, and far enough from `i64::MAX`
/// that offset arithmetic on it (a batch's count added, say) cannot overflow.
const MAX_OFFSET: i64 = i64::MAX / 4;

impl Entry {
    pub(crate) fn last(&self) -> i64 {
        self.base + self.count - 1
    }

    /// Refuses an entry no engine wrote: offsets or a byte range that do not add up. Objects
    /// in a bucket are anyone's to write, and offset and range arithmetic must not overflow.
    pub(crate) fn check(&self) -> Result<()> {
        let offsets_fit = (0..=MAX_OFFSET).contains(&self.base)
            && (1..=i64::from(i32::MAX) + 1).contains(&self.count);
        if !offsets_fit || self.start.checked_add(self.len).is_none() {
            return Err(StorageError::Corrupt(format!("index entry {self:?} is impossible")));
        }
        Ok(())
    }
}

/// An immutable index segment: the entries for offsets `first..=last`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct SegmentRef {
    pub(crate) first: i64,
    pub(crate) last: i64,
    /// Object name (under the partition's `index/`).
    pub(crate) object: String,
}

/// A producer's sequence state, as [`ProducerEntry`] but serialisable.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
struct StoredProducer {
    epoch: i16,
    /// (first sequence, last sequence, base offset) of its last batches, oldest first.
    batches: Vec<(i32, i32, i64)>,
    /// When it last appended here (ms since the epoch), for expiry.
    #[serde(default)]
    last_used_ms: i64,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
struct StoredAborted {
    producer_id: i64,
    first: i64,
    last: i64,
}

/// The head object's content.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct Head {
    pub(crate) log_start: i64,
    pub(crate) high: i64,
    #[serde(default)]
    producers: BTreeMap<i64, StoredProducer>,
    /// Open transactions: producer id -> first offset.
    #[serde(default)]
    open: BTreeMap<i64, i64>,
    /// Aborted transactions in marker order.
    #[serde(default)]
    aborted: Vec<StoredAborted>,
    /// Rolled index segments, oldest first; all older than `index`.
    #[serde(default)]
    pub(crate) segments: Vec<SegmentRef>,
    /// The newest index entries, in offset order.
    #[serde(default)]
    pub(crate) index: Vec<Entry>,
    /// Tokens of the last writes, newest last (see [`REMEMBERED_WRITES`]).
    #[serde(default)]
    writes: VecDeque<String>,
}

impl Head {
    /// Decodes a head and checks what the engine's arithmetic relies on: offsets in range,
    /// log start at most the high watermark, entries that add up. Anything else is `Corrupt`.
    pub(crate) fn decode(bytes: &[u8]) -> Result<Self> {
        let head: Self = serde_json::from_slice(bytes).map_err(|error| {
            StorageError::Corrupt(format!("partition head does not decode: {error}"))
        })?;
        head.check()?;
        Ok(head)
    }

    fn check(&self) -> Result<()> {
        let corrupt = |what: &str| Err(StorageError::Corrupt(format!("partition head: {what}")));
        if !(0..=self.high).contains(&self.log_start) || self.high > MAX_OFFSET {
            return corrupt(&format!("log start {} and high {}", self.log_start, self.high));
        }
        let offsets_in_range = |offset: &i64| (0..=MAX_OFFSET).contains(offset);
        if !self.open.values().all(offsets_in_range)
            || !self
                .aborted
                .iter()
                .all(|aborted| offsets_in_range(&aborted.first) && offsets_in_range(&aborted.last))
            || !self
                .segments
                .iter()
                .all(|segment| offsets_in_range(&segment.first) && offsets_in_range(&segment.last))
        {
            return corrupt("an offset out of range");
        }
        self.index.iter().try_for_each(Entry::check)
    }

    pub(crate) fn encode(&self) -> Result<bytes::Bytes> {
        serde_json::to_vec(self).map(bytes::Bytes::from).map_err(|error| {
            StorageError::Corrupt(format!("partition head does not encode: {error}"))
        })
    }

    pub(crate) fn watermarks(&self) -> Watermarks {
        let last_stable = self.open.values().copied().min().unwrap_or(self.high);
        Watermarks { log_start: self.log_start, high: self.high, last_stable }
    }

    pub(crate) fn producer(&self, producer_id: i64) -> Option<ProducerEntry> {
        self.producers.get(&producer_id).map(|stored| ProducerEntry {
            epoch: stored.epoch,
            batches: stored
                .batches
                .iter()
                .map(|(first, last, offset)| BatchSequence {
                    first_sequence: *first,
                    last_sequence: *last,
                    base_offset: *offset,
                })
                .collect(),
        })
    }

    pub(crate) fn open_since(&self, producer_id: i64) -> Option<i64> {
        self.open.get(&producer_id).copied()
    }

    /// Every producer this partition remembers, with its open transaction.
    pub(crate) fn producer_ids(&self) -> impl Iterator<Item = (i64, Option<i64>)> + '_ {
        self.producers.keys().map(|id| (*id, self.open.get(id).copied()))
    }

    pub(crate) fn aborted_between(&self, from: i64, to: i64) -> Vec<AbortedTransaction> {
        let mut found: Vec<AbortedTransaction> = self
            .aborted
            .iter()
            .filter(|aborted| aborted.last >= from && aborted.first < to)
            .map(|aborted| AbortedTransaction {
                producer_id: aborted.producer_id,
                first_offset: aborted.first,
                last_offset: aborted.last,
            })
            .collect();
        found.sort_by_key(|aborted| aborted.first_offset);
        found
    }

    /// Applies a plan whose batches were all placed in data objects: `placed[i]` is where
    /// `plan.appends[i]` is stored, as (object, start, len, object len).
    pub(crate) fn apply(
        &mut self,
        plan: AppendPlan,
        placed: &[(String, u64, u64, u64)],
        now_ms: i64,
    ) {
        for ((batch, base), (object, start, len, object_len)) in plan.appends.iter().zip(placed) {
            self.index.push(Entry {
                base: *base,
                count: batch.header.offset_count(),
                object: object.clone(),
                start: *start,
                len: *len,
                max_timestamp: batch.header.max_timestamp,
                object_len: *object_len,
            });
        }
        for (producer_id, entry) in plan.entries {
            let batches = entry
                .batches
                .iter()
                .map(|batch| (batch.first_sequence, batch.last_sequence, batch.base_offset))
                .collect();
            let stored = StoredProducer { epoch: entry.epoch, batches, last_used_ms: now_ms };
            self.producers.insert(producer_id, stored);
        }
        self.open.extend(plan.opened);
        for ended in plan.ended {
            self.open.remove(&ended.producer_id);
            if ended.aborted {
                self.aborted.push(StoredAborted {
                    producer_id: ended.producer_id,
                    first: ended.first_offset,
                    last: ended.last_offset,
                });
            }
        }
        self.high = plan.high;
        if self.producers.len() > PRODUCERS_BEFORE_EXPIRY {
            self.expire_producers(now_ms);
        }
    }

    /// Forgets producers idle for [`PRODUCER_EXPIRY_MS`] that have no open transaction here.
    pub(crate) fn expire_producers(&mut self, now_ms: i64) {
        let open = &self.open;
        self.producers.retain(|id, producer| {
            open.contains_key(id)
                || now_ms.saturating_sub(producer.last_used_ms) < PRODUCER_EXPIRY_MS
        });
    }

    /// Moves the log start to `before`, dropping index entries and aborted transactions wholly
    /// below it. Returns the segments no longer referenced (their objects may be deleted once
    /// this head is stored).
    pub(crate) fn truncate_before(&mut self, before: i64) -> Vec<SegmentRef> {
        self.log_start = before;
        self.index.retain(|entry| entry.last() >= before);
        self.aborted.retain(|aborted| aborted.last >= before);
        let (dropped, kept) = std::mem::take(&mut self.segments)
            .into_iter()
            .partition(|segment| segment.last < before);
        self.segments = kept;
        dropped
    }

    /// Takes the oldest `count` index entries out of the head (to be stored as a segment).
    pub(crate) fn take_oldest(&mut self, count: usize) -> Vec<Entry> {
        let count = count.min(self.index.len());
        self.index.drain(..count).collect()
    }

    pub(crate) fn remember_write(&mut self, token: &str) {
        if self.writes.len() >= REMEMBERED_WRITES {
            self.writes.pop_front();
        }
        self.writes.push_back(token.to_owned());
    }

    pub(crate) fn has_write(&self, token: &str) -> bool {
        self.writes.iter().any(|seen| seen == token)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(base: i64, count: i64) -> Entry {
        Entry {
            base,
            count,
            object: "o".into(),
            start: 0,
            len: 10,
            max_timestamp: 0,
            object_len: 0,
        }
    }

    #[test]
    fn heads_round_trip_and_truncate() {
        let mut head = Head { high: 10, ..Head::default() };
        head.index = vec![entry(0, 4), entry(4, 3), entry(7, 3)];
        head.segments.push(SegmentRef { first: 0, last: 3, object: "s".into() });
        head.remember_write("w1");
        let decoded = Head::decode(&head.encode().expect("encodes")).expect("decodes");
        assert_eq!(decoded, head);
        let dropped = head.truncate_before(5);
        assert_eq!(dropped.len(), 1);
        assert_eq!(head.index.iter().map(|e| e.base).collect::<Vec<_>>(), [4, 7]);
        assert_eq!(head.watermarks(), Watermarks { log_start: 5, high: 10, last_stable: 10 });
        assert!(head.has_write("w1") && !head.has_write("w2"));
    }

    #[test]
    fn idle_producers_expire_unless_in_a_transaction() {
        let mut head = Head::default();
        for id in 0..100 {
            let batches = vec![(0, 0, id)];
            head.producers.insert(id, StoredProducer { epoch: 0, batches, last_used_ms: id });
        }
        head.open.insert(1, 1);
        head.expire_producers(PRODUCER_EXPIRY_MS + 50);
        let kept: Vec<i64> = head.producers.keys().copied().collect();
        assert_eq!(kept.len(), 50);
        assert!(kept.contains(&1), "a producer with an open transaction stays");
        assert!(kept.iter().all(|id| *id == 1 || *id > 50));
    }

    #[test]
    fn impossible_heads_are_corrupt() {
        let good = Head { high: 10, index: vec![entry(0, 10)], ..Head::default() };
        assert_eq!(Head::decode(&good.encode().expect("encode")).expect("decode"), good);
        let mut bad = Vec::new();
        bad.push(Head { log_start: 11, ..good.clone() });
        bad.push(Head { log_start: -1, ..good.clone() });
        bad.push(Head { high: i64::MAX, ..good.clone() });
        bad.push(Head { index: vec![entry(i64::MAX - 1, 5)], ..good.clone() });
        bad.push(Head { index: vec![entry(0, 0)], ..good.clone() });
        bad.push(Head {
            index: vec![Entry { start: u64::MAX, len: 2, ..entry(0, 1) }],
            ..good.clone()
        });
        bad.push(Head { open: [(1, -5)].into(), ..good.clone() });
        for head in bad {
            let decoded = Head::decode(&head.encode().expect("encode"));
            assert!(matches!(decoded, Err(StorageError::Corrupt(_))), "{head:?}: {decoded:?}");
        }
    }

    #[test]
    fn garbage_is_corrupt() {
        assert!(matches!(Head::decode(b"{not json"), Err(StorageError::Corrupt(_))));
    }
}
