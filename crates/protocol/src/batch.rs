//! Record batches (magic v2) as opaque bytes with a parsed header.
//!
//! Skiff keeps a producer's batch bytes as they came and only reads the fixed 61-byte header:
//! enough to validate the CRC, count records, learn the timestamps and producer fields, and
//! rewrite the base offset when storage assigns one. Records themselves are decoded only by
//! engines that store rows. The layout (all big-endian):
//!
//! ```text
//!  0 base_offset i64        8 batch_length i32     12 partition_leader_epoch i32
//! 16 magic i8              17 crc u32 (crc32c of bytes 21..)
//! 21 attributes i16        23 last_offset_delta i32
//! 27 base_timestamp i64    35 max_timestamp i64
//! 43 producer_id i64       51 producer_epoch i16  53 base_sequence i32
//! 57 record_count i32      61 records...
//! ```

use bytes::{Buf, Bytes};
use thiserror::Error;

/// Size of the fixed v2 batch header.
pub const HEADER_BYTES: usize = 61;
/// Bytes before `batch_length`'s payload begins (base offset + length field).
pub const LOG_OVERHEAD: usize = 12;
const CRC_START: usize = 21;

/// Why a batch was refused.
#[derive(Debug, Error, PartialEq, Eq)]
#[non_exhaustive]
pub enum BatchError {
    #[error("record batch truncated: {needed} bytes needed, {available} available")]
    Truncated { needed: usize, available: usize },
    #[error("record batch length {0} is invalid")]
    InvalidLength(i32),
    #[error("unsupported record batch magic {0} (only v2 is accepted)")]
    UnsupportedMagic(i8),
    #[error("record batch crc mismatch: header says {expected:#010x}, bytes give {actual:#010x}")]
    CrcMismatch { expected: u32, actual: u32 },
    #[error("record batch has {record_count} records but last offset delta {last_offset_delta}")]
    InvalidCount { record_count: i32, last_offset_delta: i32 },
    #[error("record set is empty")]
    Empty,
    #[error("record batch holds {found} records but declares {declared}")]
    RecordCountMismatch { declared: i32, found: i64 },
    #[error("record batch does not decode: {0}")]
    Malformed(String),
    #[error("record batch inflates to more than {limit} bytes")]
    TooLarge { limit: usize },
}

/// The fixed header of a v2 record batch.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BatchHeader {
    pub base_offset: i64,
    pub batch_length: i32,
    pub partition_leader_epoch: i32,
    pub magic: i8,
    pub crc: u32,
    pub attributes: i16,
    pub last_offset_delta: i32,
    pub base_timestamp: i64,
    pub max_timestamp: i64,
    pub producer_id: i64,
    pub producer_epoch: i16,
    pub base_sequence: i32,
    pub record_count: i32,
}

impl BatchHeader {
    /// Parses the header at the start of `bytes` (no CRC check).
    pub fn parse(bytes: &[u8]) -> Result<Self, BatchError> {
        if bytes.len() < HEADER_BYTES {
            return Err(BatchError::Truncated { needed: HEADER_BYTES, available: bytes.len() });
        }
        let mut buf = &bytes[..HEADER_BYTES];
        Ok(Self {
            base_offset: buf.get_i64(),
            batch_length: buf.get_i32(),
            partition_leader_epoch: buf.get_i32(),
            magic: buf.get_i8(),
            crc: buf.get_u32(),
            attributes: buf.get_i16(),
            last_offset_delta: buf.get_i32(),
            base_timestamp: buf.get_i64(),
            max_timestamp: buf.get_i64(),
            producer_id: buf.get_i64(),
            producer_epoch: buf.get_i16(),
            base_sequence: buf.get_i32(),
            record_count: buf.get_i32(),
        })
    }

    /// Total size of the batch on the wire, header included.
    pub fn total_bytes(&self) -> usize {
        LOG_OVERHEAD + self.batch_length.max(0) as usize
    }

    /// Compression codec id (0 none, 1 gzip, 2 snappy, 3 lz4, 4 zstd).
    pub fn compression(&self) -> i16 {
        self.attributes & 0x07
    }

    /// True when timestamps are the broker's append time rather than the producer's.
    pub fn is_log_append_time(&self) -> bool {
        self.attributes & 0x08 != 0
    }

    pub fn is_transactional(&self) -> bool {
        self.attributes & 0x10 != 0
    }

    pub fn is_control(&self) -> bool {
        self.attributes & 0x20 != 0
    }

    /// Offset of the batch's last record, given its (possibly rewritten) base offset.
    pub fn last_offset(&self) -> i64 {
        self.base_offset + i64::from(self.last_offset_delta)
    }

    /// Number of offsets the batch occupies.
    pub fn offset_count(&self) -> i64 {
        i64::from(self.last_offset_delta) + 1
    }
}

/// One validated batch: its header and its exact bytes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Batch {
    pub header: BatchHeader,
    pub bytes: Bytes,
}

/// Splits a produce request's record set into validated batches.
///
/// Every batch must be magic v2, complete, CRC-correct and count its records consistently;
/// the first failure rejects the whole set (Kafka fails the partition, never part of it).
pub fn split_batches(records: &Bytes) -> Result<Vec<Batch>, BatchError> {
    let mut batches = Vec::with_capacity(1);
    let mut position = 0;
    while position < records.len() {
        let rest = &records[position..];
        let header = BatchHeader::parse(rest)?;
        if header.batch_length < (HEADER_BYTES - LOG_OVERHEAD) as i32 {
            return Err(BatchError::InvalidLength(header.batch_length));
        }
        let total = header.total_bytes();
        if total > rest.len() {
            return Err(BatchError::Truncated { needed: total, available: rest.len() });
        }
        validate(&header, &rest[..total])?;
        batches.push(Batch { header, bytes: records.slice(position..position + total) });
        position += total;
    }
    if batches.is_empty() {
        return Err(BatchError::Empty);
    }
    Ok(batches)
}

fn validate(header: &BatchHeader, bytes: &[u8]) -> Result<(), BatchError> {
    if header.magic != 2 {
        return Err(BatchError::UnsupportedMagic(header.magic));
    }
    let actual = crc32c::crc32c(&bytes[CRC_START..]);
    if actual != header.crc {
        return Err(BatchError::CrcMismatch { expected: header.crc, actual });
    }
    if header.last_offset_delta < 0
        || header.record_count <= 0
        || header.record_count > header.last_offset_delta.saturating_add(1)
    {
        return Err(BatchError::InvalidCount {
            record_count: header.record_count,
            last_offset_delta: header.last_offset_delta,
        });
    }
    if header.compression() == 0 {
        check_uncompressed_records(header, &bytes[HEADER_BYTES..])?;
    }
    Ok(())
}

/// Walks the length prefixes of an uncompressed batch's records: they must fill the batch
/// exactly and number `record_count`, as Kafka checks. (Compressed batches would have to be
/// decompressed for this; their CRC still protects them.)
fn check_uncompressed_records(header: &BatchHeader, mut records: &[u8]) -> Result<(), BatchError> {
    let mut found: i64 = 0;
    while !records.is_empty() {
        let Some((length, used)) = read_varint(records) else {
            return Err(BatchError::RecordCountMismatch { declared: header.record_count, found });
        };
        let end = usize::try_from(length).ok().and_then(|length| used.checked_add(length));
        match end {
            Some(end) if length > 0 && end <= records.len() => records = &records[end..],
            _ => {
                return Err(BatchError::RecordCountMismatch {
                    declared: header.record_count,
                    found,
                })
            }
        }
        found += 1;
    }
    if found != i64::from(header.record_count) {
        return Err(BatchError::RecordCountMismatch { declared: header.record_count, found });
    }
    Ok(())
}

/// Reads a zigzag varint (Kafka's record length encoding): the value and the bytes it used.
pub(crate) fn read_varint(bytes: &[u8]) -> Option<(i64, usize)> {
    let mut raw: u64 = 0;
    for (index, byte) in bytes.iter().take(10).enumerate() {
        raw |= u64::from(byte & 0x7f) << (7 * index);
        if byte & 0x80 == 0 {
            let value = (raw >> 1) as i64 ^ -((raw & 1) as i64);
            return Some((value, index + 1));
        }
    }
    None
}

/// Writes `base_offset` into a batch. The base offset is outside the CRC, so no re-checksum.
pub fn set_base_offset(batch: &mut [u8], base_offset: i64) {
    if batch.len() >= 8 {
        batch[..8].copy_from_slice(&base_offset.to_be_bytes());
    }
}

/// Stamps a batch with the broker's append time (topics with
/// `message.timestamp.type=LogAppendTime`): sets the timestamp-type attribute and the max
/// timestamp, then recomputes the CRC those fields are covered by.
pub fn set_log_append_time(batch: &mut [u8], now_ms: i64) {
    if batch.len() < HEADER_BYTES {
        return;
    }
    let attributes = i16::from_be_bytes([batch[21], batch[22]]) | 0x08;
    batch[21..23].copy_from_slice(&attributes.to_be_bytes());
    batch[35..43].copy_from_slice(&now_ms.to_be_bytes());
    let crc = crc32c::crc32c(&batch[CRC_START..]);
    batch[17..21].copy_from_slice(&crc.to_be_bytes());
}

/// Transaction marker kinds, the `type` of a control record's key.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ControlType {
    Abort = 0,
    Commit = 1,
}

/// Builds the control batch that ends a transaction on one partition: one record whose key is
/// (version 0, type) and whose value is (version 0, coordinator epoch), transactional and
/// control attributes set, from the producer's id and (current) epoch.
///
/// Its base offset is `ends_before`: storage assigns the real offset when it appends, and until
/// then the field says which transaction the marker ends, one that began below that offset (the
/// partition's high watermark when the transaction was prepared). A marker that arrives late,
/// after its producer began its next transaction with the same epoch, then leaves that next
/// transaction alone (see `skiff_storage::producers::plan_append`).
pub fn control_batch(
    producer_id: i64,
    producer_epoch: i16,
    kind: ControlType,
    timestamp_ms: i64,
    ends_before: i64,
) -> Result<Batch, BatchError> {
    use kafka_protocol::records::{
        Compression, Record, RecordBatchEncoder, RecordEncodeOptions, TimestampType,
    };
    let mut key = Vec::with_capacity(4);
    key.extend_from_slice(&0i16.to_be_bytes());
    key.extend_from_slice(&(kind as i16).to_be_bytes());
    let mut value = Vec::with_capacity(6);
    value.extend_from_slice(&0i16.to_be_bytes());
    value.extend_from_slice(&0i32.to_be_bytes());
    let record = Record {
        transactional: true,
        control: true,
        delete_horizon: false,
        partition_leader_epoch: 0,
        producer_id,
        producer_epoch,
        timestamp_type: TimestampType::Creation,
        offset: ends_before,
        sequence: -1,
        timestamp: timestamp_ms,
        key: Some(Bytes::from(key)),
        value: Some(Bytes::from(value)),
        headers: Default::default(),
    };
    let mut buf = bytes::BytesMut::new();
    RecordBatchEncoder::encode(
        &mut buf,
        [&record],
        &RecordEncodeOptions { version: 2, compression: Compression::None },
    )
    .map_err(|_| BatchError::Empty)?;
    let mut batches = split_batches(&buf.freeze())?;
    batches.pop().ok_or(BatchError::Empty)
}

/// The marker kind of an (uncompressed) control batch, read from its first record's key.
pub fn control_type(batch: &[u8]) -> Option<ControlType> {
    let mut rest = batch.get(HEADER_BYTES..)?;
    let (_, used) = read_varint(rest)?; // record length
    rest = rest.get(used + 1..)?; // and the attributes byte
    let (_, used) = read_varint(rest)?; // timestamp delta
    rest = rest.get(used..)?;
    let (_, used) = read_varint(rest)?; // offset delta
    rest = rest.get(used..)?;
    let (key_length, used) = read_varint(rest)?;
    if key_length < 4 {
        return None;
    }
    let key = rest.get(used..used + 4)?;
    match i16::from_be_bytes([key[2], key[3]]) {
        0 => Some(ControlType::Abort),
        1 => Some(ControlType::Commit),
        _ => None,
    }
}

/// Reads the base offset of a stored batch.
pub fn base_offset(batch: &[u8]) -> Option<i64> {
    batch.get(..8).map(|mut b| b.get_i64())
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use bytes::BytesMut;
    use kafka_protocol::records::{
        Compression, Record, RecordBatchEncoder, RecordEncodeOptions, TimestampType,
    };

    /// A producer's batch of `count` keyless records `value-0..`, stamped 1000, 1001, ...
    pub(crate) fn encode(count: i64, compression: Compression) -> Bytes {
        let records: Vec<Record> = (0..count)
            .map(|i| Record {
                transactional: false,
                control: false,
                delete_horizon: false,
                partition_leader_epoch: 0,
                producer_id: -1,
                producer_epoch: -1,
                timestamp_type: TimestampType::Creation,
                offset: i,
                sequence: i as i32,
                timestamp: 1_000 + i,
                key: None,
                value: Some(Bytes::from(format!("value-{i}"))),
                headers: Default::default(),
            })
            .collect();
        let mut buf = BytesMut::new();
        RecordBatchEncoder::encode(
            &mut buf,
            &records,
            &RecordEncodeOptions { version: 2, compression },
        )
        .expect("encode");
        buf.freeze()
    }

    #[test]
    fn parses_an_encoded_batch() {
        for compression in [Compression::None, Compression::Gzip, Compression::Zstd] {
            let bytes = encode(3, compression);
            let batches = split_batches(&bytes).expect("valid");
            assert_eq!(batches.len(), 1);
            let header = batches[0].header;
            assert_eq!(header.record_count, 3);
            assert_eq!(header.last_offset_delta, 2);
            assert_eq!(header.max_timestamp, 1_002);
            assert_eq!(header.compression(), compression as i16);
            assert_eq!(batches[0].bytes.len(), bytes.len());
        }
    }

    #[test]
    fn splits_concatenated_batches() {
        let mut joined = BytesMut::new();
        joined.extend_from_slice(&encode(2, Compression::None));
        joined.extend_from_slice(&encode(5, Compression::Lz4));
        let batches = split_batches(&joined.freeze()).expect("valid");
        assert_eq!(batches.iter().map(|b| b.header.record_count).collect::<Vec<_>>(), [2, 5]);
    }

    #[test]
    fn rejects_corruption_truncation_and_bad_magic() {
        let good = encode(2, Compression::None);
        let mut corrupt = BytesMut::from(&good[..]);
        let last = corrupt.len() - 1;
        corrupt[last] ^= 0xff;
        assert!(matches!(split_batches(&corrupt.freeze()), Err(BatchError::CrcMismatch { .. })));

        let truncated = good.slice(..good.len() - 1);
        assert!(matches!(split_batches(&truncated), Err(BatchError::Truncated { .. })));

        let mut magic = BytesMut::from(&good[..]);
        magic[16] = 1;
        assert_eq!(split_batches(&magic.freeze()), Err(BatchError::UnsupportedMagic(1)));

        assert_eq!(split_batches(&Bytes::new()), Err(BatchError::Empty));
        assert!(split_batches(&Bytes::from_static(&[0xff; 70])).is_err());
    }

    #[test]
    fn base_offset_rewrite_keeps_crc_valid() {
        let mut bytes = BytesMut::from(&encode(2, Compression::Snappy)[..]);
        set_base_offset(&mut bytes, 1234);
        let bytes = bytes.freeze();
        assert_eq!(base_offset(&bytes), Some(1234));
        let batches = split_batches(&bytes).expect("still valid");
        assert_eq!(batches[0].header.base_offset, 1234);
        assert_eq!(batches[0].header.last_offset(), 1235);
    }

    #[test]
    fn uncompressed_record_count_must_match_the_records() {
        let good = encode(2, Compression::None);
        let mut lying = BytesMut::from(&good[..]);
        lying[57..61].copy_from_slice(&1i32.to_be_bytes());
        lying[23..27].copy_from_slice(&0i32.to_be_bytes());
        let crc = crc32c::crc32c(&lying[CRC_START..]);
        lying[17..21].copy_from_slice(&crc.to_be_bytes());
        assert_eq!(
            split_batches(&lying.freeze()),
            Err(BatchError::RecordCountMismatch { declared: 1, found: 2 })
        );
    }

    #[test]
    fn control_batches_round_trip_their_kind() {
        for kind in [ControlType::Abort, ControlType::Commit] {
            let batch = control_batch(42, 3, kind, 1_000, 77).expect("control batch");
            assert!(batch.header.is_control() && batch.header.is_transactional());
            assert_eq!(batch.header.base_offset, 77, "the bound rides in the base offset");
            assert_eq!((batch.header.producer_id, batch.header.producer_epoch), (42, 3));
            assert_eq!(batch.header.record_count, 1);
            assert_eq!(control_type(&batch.bytes), Some(kind));
        }
        assert_eq!(control_type(&encode(1, Compression::None)), None);
    }

    #[test]
    fn varints_decode_zigzag() {
        assert_eq!(read_varint(&[0x00]), Some((0, 1)));
        assert_eq!(read_varint(&[0x01]), Some((-1, 1)));
        assert_eq!(read_varint(&[0x02]), Some((1, 1)));
        assert_eq!(read_varint(&[0xac, 0x02]), Some((150, 2)));
        assert_eq!(read_varint(&[0x80]), None);
    }

    #[test]
    fn log_append_time_keeps_crc_valid() {
        let mut bytes = BytesMut::from(&encode(3, Compression::None)[..]);
        set_log_append_time(&mut bytes, 99_000);
        let batches = split_batches(&bytes.freeze()).expect("crc recomputed");
        assert!(batches[0].header.is_log_append_time());
        assert_eq!(batches[0].header.max_timestamp, 99_000);
    }

    proptest::proptest! {
        #[test]
        fn arbitrary_bytes_never_panic(data in proptest::collection::vec(proptest::prelude::any::<u8>(), 0..200)) {
            let _ = split_batches(&Bytes::from(data));
        }
    }
}
