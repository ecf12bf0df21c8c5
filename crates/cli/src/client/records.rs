//! Record batches: building one for Produce, and reading the ones Fetch returns.

use anyhow::{bail, Context};
use bytes::{Buf, Bytes, BytesMut};
use kafka_protocol::indexmap::IndexMap;
use kafka_protocol::records::{
    Compression, Record, RecordBatchDecoder, RecordBatchEncoder, RecordEncodeOptions,
    TimestampType, NO_PARTITION_LEADER_EPOCH, NO_PRODUCER_EPOCH, NO_PRODUCER_ID,
};

/// Bytes before the batch length field ends: base offset (8) + batch length (4).
const BATCH_LENGTH_END: usize = 12;
/// Offset of the magic byte and of the last-offset-delta field in a v2 batch header.
const MAGIC_AT: usize = 16;
const LAST_OFFSET_DELTA_AT: usize = 23;
const BATCH_HEADER_BYTES: usize = 61;

/// One record to produce.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct OutgoingRecord {
    pub(crate) key: Option<Bytes>,
    pub(crate) value: Bytes,
}

/// One record read back, at its absolute offset.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct FetchedRecord {
    pub(crate) offset: i64,
    pub(crate) key: Option<Bytes>,
    pub(crate) value: Option<Bytes>,
}

/// What one partition's fetched bytes held.
#[derive(Debug, Default)]
pub(crate) struct FetchedRecords {
    /// Data records (control records dropped), in offset order.
    pub(crate) records: Vec<FetchedRecord>,
    /// One past the last offset of the last complete batch: where the next fetch starts even if
    /// that batch held only control records.
    pub(crate) next_offset: Option<i64>,
    /// The bytes held only the start of a batch: the broker's size limit cut it off.
    pub(crate) truncated: bool,
}

/// Encodes `records` as one non-idempotent v2 batch with offsets 0..n.
///
/// The codec starts a new batch whenever `offset - sequence` changes, so every record gets
/// `sequence = offset - 1`: one batch, and a base sequence of -1 as Kafka's own non-idempotent
/// producers write.
pub(crate) fn encode_batch(
    records: &[OutgoingRecord],
    compression: Compression,
    timestamp_ms: i64,
) -> anyhow::Result<Bytes> {
    let records: Vec<Record> = records
        .iter()
        .zip(0i64..)
        .map(|(record, offset)| Record {
            transactional: false,
            control: false,
            delete_horizon: false,
            partition_leader_epoch: NO_PARTITION_LEADER_EPOCH,
            producer_id: NO_PRODUCER_ID,
            producer_epoch: NO_PRODUCER_EPOCH,
            timestamp_type: TimestampType::Creation,
            offset,
            sequence: (offset as i32).wrapping_sub(1),
            timestamp: timestamp_ms,
            key: record.key.clone(),
            value: Some(record.value.clone()),
            headers: IndexMap::new(),
        })
        .collect();
    let mut buf = BytesMut::new();
    let options = RecordEncodeOptions { version: 2, compression };
    RecordBatchEncoder::encode(&mut buf, &records, &options).context("encoding a record batch")?;
    Ok(buf.freeze())
}

/// Decodes the complete batches in a partition's fetched bytes.
///
/// A fetch may end with a partial batch (the broker stops at its byte limit), and returns whole
/// batches that can start before the offset asked for; the caller skips those records.
pub(crate) fn decode_fetched(mut bytes: Bytes) -> anyhow::Result<FetchedRecords> {
    let mut fetched = FetchedRecords::default();
    while let Some(batch_len) = complete_batch_len(&bytes)? {
        let mut batch = bytes.split_to(batch_len);
        let base_offset = (&batch[..8]).get_i64();
        let magic = batch[MAGIC_AT];
        if magic != 2 {
            bail!("record batch at offset {base_offset} uses message format v{magic}; only v2 is supported");
        }
        let last_offset_delta = (&batch[LAST_OFFSET_DELTA_AT..LAST_OFFSET_DELTA_AT + 4]).get_i32();
        let set = RecordBatchDecoder::decode(&mut batch)
            .with_context(|| format!("decoding the record batch at offset {base_offset}"))?;
        fetched.records.extend(set.records.into_iter().filter(|record| !record.control).map(
            |record| FetchedRecord { offset: record.offset, key: record.key, value: record.value },
        ));
        fetched.next_offset = Some(base_offset + i64::from(last_offset_delta) + 1);
    }
    fetched.truncated = fetched.next_offset.is_none() && !bytes.is_empty();
    Ok(fetched)
}

/// The total size of the batch at the start of `bytes`, if all of it is there; an error if its
/// length field cannot be a batch's (rather than waiting forever for bytes that won't come).
fn complete_batch_len(bytes: &[u8]) -> anyhow::Result<Option<usize>> {
    if bytes.len() < BATCH_LENGTH_END {
        return Ok(None);
    }
    let length = i32::from_be_bytes([bytes[8], bytes[9], bytes[10], bytes[11]]);
    let total = usize::try_from(length)
        .ok()
        .and_then(|length| length.checked_add(BATCH_LENGTH_END))
        .filter(|&total| total >= BATCH_HEADER_BYTES)
        .with_context(|| format!("corrupt record batch: length field {length}"))?;
    Ok((total <= bytes.len()).then_some(total))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn record(key: Option<&'static str>, value: &'static str) -> OutgoingRecord {
        OutgoingRecord {
            key: key.map(|key| Bytes::from_static(key.as_bytes())),
            value: Bytes::from_static(value.as_bytes()),
        }
    }

    /// Rewrites a batch's base offset as a broker does on append (the CRC doesn't cover it).
    fn at_offset(batch: &Bytes, base_offset: i64) -> BytesMut {
        let mut batch = BytesMut::from(&batch[..]);
        batch[..8].copy_from_slice(&base_offset.to_be_bytes());
        batch
    }

    #[test]
    fn many_records_make_one_batch() -> anyhow::Result<()> {
        let records: Vec<_> = (0..100).map(|_| record(None, "v")).collect();
        let batch = encode_batch(&records, Compression::None, 1)?;
        assert_eq!(complete_batch_len(&batch)?, Some(batch.len()));
        let base_sequence = (&batch[53..57]).get_i32();
        assert_eq!(base_sequence, -1);
        Ok(())
    }

    #[test]
    fn round_trips_keys_and_values_at_absolute_offsets() -> anyhow::Result<()> {
        for compression in [Compression::None, Compression::Gzip, Compression::Zstd] {
            let batch = encode_batch(&[record(Some("k"), "a"), record(None, "b")], compression, 5)?;
            let fetched = decode_fetched(at_offset(&batch, 40).freeze())?;
            assert_eq!(fetched.next_offset, Some(42));
            assert_eq!(fetched.records.len(), 2);
            assert_eq!(fetched.records[0].offset, 40);
            assert_eq!(fetched.records[0].key.as_deref(), Some(&b"k"[..]));
            assert_eq!(fetched.records[1].offset, 41);
            assert_eq!(fetched.records[1].key, None);
            assert_eq!(fetched.records[1].value.as_deref(), Some(&b"b"[..]));
        }
        Ok(())
    }

    #[test]
    fn a_trailing_partial_batch_is_left_for_the_next_fetch() -> anyhow::Result<()> {
        let batch = encode_batch(&[record(None, "a")], Compression::None, 5)?;
        let mut two = at_offset(&batch, 0);
        two.extend_from_slice(&at_offset(&batch, 1)[..30]);
        let fetched = decode_fetched(two.freeze())?;
        assert_eq!(fetched.records.len(), 1);
        assert_eq!(fetched.next_offset, Some(1));
        assert!(!fetched.truncated);

        let only_partial = decode_fetched(batch.slice(..batch.len() - 1))?;
        assert!(only_partial.records.is_empty());
        assert!(only_partial.truncated);
        Ok(())
    }

    #[test]
    fn impossible_lengths_are_errors_not_panics() {
        assert!(complete_batch_len(&[0xff; 12]).is_err()); // negative
        assert!(matches!(complete_batch_len(&[0; 5]), Ok(None))); // not even a length yet
        let mut tiny = vec![0u8; 12];
        tiny[11] = 1; // a 13-byte "batch" is shorter than any v2 header
        tiny.push(0);
        assert!(complete_batch_len(&tiny).is_err());
        assert!(decode_fetched(Bytes::from(tiny)).is_err());
    }
}
