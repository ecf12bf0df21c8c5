//! Shared steps of [`crate::LogStore::remove_records`] for engines that keep whole batches
//! (memory, SQLite, S3): which offsets may go, and what removing them does to one stored batch.

use bytes::Bytes;
use skiff_protocol::batch::{split_batches, BatchHeader};
use skiff_protocol::records;

use crate::{Result, StorageError, Watermarks};

/// What removing records does to one stored batch.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Rewrite {
    /// None of its records was named.
    Unchanged,
    /// Some records went; these are the batch's new bytes.
    Replaced { bytes: Bytes, removed: u64 },
    /// Every record went: the batch disappears.
    Emptied { removed: u64 },
}

/// The offsets (ascending) a removal may act on: those below the log start are skipped
/// (already unreadable), and any at or above the last stable offset refuses the whole call
/// (records of open transactions and records not yet written are not compaction's business).
pub fn removable(offsets: &[i64], marks: Watermarks) -> Result<&[i64]> {
    if let Some(offset) = offsets.iter().find(|offset| **offset >= marks.last_stable) {
        return Err(StorageError::InvalidArgument(format!(
            "offset {offset} is not below the last stable offset {}",
            marks.last_stable
        )));
    }
    Ok(&offsets[offsets.partition_point(|offset| *offset < marks.log_start)..])
}

/// The offsets of `offsets` (ascending) that fall inside a batch from `base` to `last`.
pub fn offsets_within(offsets: &[i64], base: i64, last: i64) -> &[i64] {
    let from = offsets.partition_point(|offset| *offset < base);
    let to = offsets.partition_point(|offset| *offset <= last);
    &offsets[from..to.max(from)]
}

/// Removes the records at `offsets` (ascending) from one stored batch (base offset assigned).
pub fn rewrite_batch(stored: &Bytes, offsets: &[i64]) -> Result<Rewrite> {
    let header = BatchHeader::parse(stored).map_err(corrupt)?;
    let named = offsets_within(offsets, header.base_offset, header.last_offset());
    if named.is_empty() {
        return Ok(Rewrite::Unchanged);
    }
    let batch = split_batches(stored).map_err(corrupt)?.into_iter().next();
    let batch = batch.ok_or_else(|| StorageError::Corrupt("empty stored batch".into()))?;
    let before = u64::try_from(batch.header.record_count).unwrap_or(0);
    let kept =
        records::retain(&batch, |offset| named.binary_search(&offset).is_err()).map_err(corrupt)?;
    Ok(match kept {
        None => Rewrite::Emptied { removed: before },
        Some(bytes) => {
            let after = BatchHeader::parse(&bytes).map_err(corrupt)?.record_count;
            let removed = before.saturating_sub(u64::try_from(after).unwrap_or(0));
            if removed == 0 {
                Rewrite::Unchanged
            } else {
                Rewrite::Replaced { bytes, removed }
            }
        }
    })
}

fn corrupt(error: skiff_protocol::batch::BatchError) -> StorageError {
    StorageError::Corrupt(format!("stored batch: {error}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn offsets_within_a_batch() {
        let offsets = [1, 4, 5, 9];
        assert_eq!(offsets_within(&offsets, 4, 8), &[4, 5]);
        assert_eq!(offsets_within(&offsets, 10, 12), &[] as &[i64]);
        assert_eq!(offsets_within(&offsets, 0, 0), &[] as &[i64]);
        assert_eq!(offsets_within(&offsets, 0, 100), &offsets);
    }

    #[test]
    fn only_offsets_from_the_log_start_below_the_last_stable_one_may_go() {
        let marks = Watermarks { log_start: 1, high: 5, last_stable: 3 };
        assert_eq!(removable(&[0, 1, 2], marks).expect("fine"), &[1, 2]);
        assert!(matches!(removable(&[1, 3], marks), Err(StorageError::InvalidArgument(_))));
    }
}
