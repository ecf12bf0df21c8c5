//! Reading a partition's committed data records in offset order: what compaction and the table
//! writers need, and consumers get from Fetch with `read_committed`.
//!
//! Control batches (transaction markers) are skipped; records of aborted transactions are
//! flagged, so each caller decides (compaction removes them, table writers leave them out).
//! Callers read below the last stable offset, so no record of an open transaction is seen.

use skiff_protocol::batch::split_batches;
use skiff_protocol::records::{self, RecordHeader};
use skiff_storage::{AbortedTransaction, LogStore, StorageError, TopicPartition};

/// How much one read of a scan asks storage for.
const READ_CHUNK: usize = 1 << 20;

/// A data record as a scan sees it.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Scanned<'a> {
    pub(crate) offset: i64,
    pub(crate) key: Option<&'a [u8]>,
    pub(crate) value: Option<&'a [u8]>,
    pub(crate) headers: &'a [RecordHeader],
    pub(crate) timestamp: i64,
    /// Part of an aborted transaction.
    pub(crate) aborted: bool,
}

impl Scanned<'_> {
    /// A null value: a delete marker on compacted topics.
    pub(crate) fn tombstone(&self) -> bool {
        self.value.is_none()
    }
}

/// Calls `visit` with every data record from `from` below `limit`, in offset order, until it
/// returns false; returns the offset it stopped at: the offset of the record `visit` declined,
/// or `limit` when it saw everything (less when the log ends earlier). `aborted` is the
/// partition's aborted transactions over `from..limit`.
pub(crate) async fn scan(
    log: &dyn LogStore,
    partition: &TopicPartition,
    from: i64,
    limit: i64,
    aborted: &[AbortedTransaction],
    mut visit: impl FnMut(&Scanned<'_>) -> bool,
) -> Result<i64, StorageError> {
    let mut offset = from;
    while offset < limit {
        let read = log.read(partition, offset, READ_CHUNK).await?;
        let start = offset;
        for bytes in &read.batches {
            let batch = split_batches(bytes).map_err(corrupt)?.into_iter().next();
            let Some(batch) = batch else { continue };
            let header = batch.header;
            if header.base_offset >= limit {
                return Ok(limit);
            }
            offset = offset.max(header.last_offset() + 1);
            if header.is_control() {
                continue;
            }
            let in_aborted = |at: i64| {
                header.is_transactional()
                    && aborted.iter().any(|txn| {
                        txn.producer_id == header.producer_id
                            && (txn.first_offset..=txn.last_offset).contains(&at)
                    })
            };
            for record in records::decode(&batch).map_err(corrupt)? {
                let at = header.base_offset + i64::from(record.offset_delta);
                if at < from {
                    continue;
                }
                if at >= limit {
                    return Ok(limit);
                }
                let scanned = Scanned {
                    offset: at,
                    key: record.key.as_deref(),
                    value: record.value.as_deref(),
                    headers: &record.headers,
                    timestamp: record.timestamp,
                    aborted: in_aborted(at),
                };
                if !visit(&scanned) {
                    return Ok(at);
                }
            }
        }
        if offset == start {
            break; // nothing more to read
        }
    }
    Ok(limit.min(offset.max(from)))
}

fn corrupt(error: skiff_protocol::batch::BatchError) -> StorageError {
    StorageError::Corrupt(format!("stored batch: {error}"))
}
