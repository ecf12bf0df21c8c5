//! Timestamp searches inside stored batches.
//!
//! Engines index batches by their header's `max_timestamp`; the exact record is then found by
//! decoding just that batch. ListOffsets by time is rare, so this keeps the hot path free of
//! per-record work while still answering to the record, as Kafka does.

use bytes::Bytes;
use kafka_protocol::records::RecordBatchDecoder;

use crate::{Result, StorageError, TimestampOffset};

fn records(batch: &Bytes) -> Result<Vec<kafka_protocol::records::Record>> {
    let mut buf = batch.clone();
    RecordBatchDecoder::decode(&mut buf)
        .map(|set| set.records)
        .map_err(|error| StorageError::Corrupt(format!("stored batch does not decode: {error}")))
}

/// The first record of `batch` at or after `log_start` whose timestamp is `>= timestamp`.
pub fn first_at_or_after(
    batch: &Bytes,
    timestamp: i64,
    log_start: i64,
) -> Result<Option<TimestampOffset>> {
    Ok(records(batch)?
        .into_iter()
        .filter(|record| !record.control && record.offset >= log_start)
        .find(|record| record.timestamp >= timestamp)
        .map(|record| TimestampOffset { timestamp: record.timestamp, offset: record.offset }))
}

/// The earliest record of `batch` at or after `log_start` carrying the batch's largest timestamp.
pub fn max_in(batch: &Bytes, log_start: i64) -> Result<Option<TimestampOffset>> {
    let mut best: Option<TimestampOffset> = None;
    for record in records(batch)? {
        if record.control || record.offset < log_start {
            continue;
        }
        if best.is_none_or(|found| record.timestamp > found.timestamp) {
            best = Some(TimestampOffset { timestamp: record.timestamp, offset: record.offset });
        }
    }
    Ok(best)
}
