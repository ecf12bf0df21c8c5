//! The records inside a v2 batch: decode them, re-encode them, and keep only some of them.
//!
//! Most of Skiff never looks inside a batch ([`crate::batch`] reads only its header). Records
//! are decoded where they must be: engines that store rows (Postgres), compaction (which keeps
//! the newest record per key), and checks such as "a compacted topic needs keys". This is a
//! small codec of its own rather than `kafka-protocol`'s record encoder because that one keeps
//! headers in a map, collapsing repeated keys that Kafka allows (DESIGN 10.1), and because
//! encoding with the stored `base_sequence` keeps one batch one batch (DESIGN 10.2).
//! Compression reuses `kafka-protocol`'s codecs, so a batch re-encoded with its producer's codec
//! comes out as sent.

use bytes::{Buf, BufMut, Bytes, BytesMut};
use kafka_protocol::compression::{Compressor, Gzip, Lz4, Snappy, Zstd};

use crate::batch::{Batch, BatchError, HEADER_BYTES};

/// Offset of the CRC field and of the first byte it covers.
const CRC_AT: usize = 17;
const CRC_FROM: usize = 21;
/// Attribute bits of the compression codec and of log-append time.
pub const CODEC_BITS: i16 = 0x07;
const LOG_APPEND_TIME: i16 = 0x08;

/// One record header: repeated keys keep their order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RecordHeader {
    pub key: String,
    pub value: Option<Vec<u8>>,
}

/// One record of a batch.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Record {
    pub offset_delta: i32,
    /// What consumers see: the record's timestamp, or the batch's for log-append time.
    pub timestamp: i64,
    pub key: Option<Bytes>,
    pub value: Option<Bytes>,
    pub headers: Vec<RecordHeader>,
}

/// The batch-level fields a batch is rebuilt from (everything but its records).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BatchFields {
    pub base_offset: i64,
    pub last_offset_delta: i32,
    pub attributes: i16,
    pub producer_id: i64,
    pub producer_epoch: i16,
    pub base_sequence: i32,
    pub leader_epoch: i32,
    pub base_timestamp: i64,
    pub max_timestamp: i64,
}

impl BatchFields {
    /// The fields of `batch` once stored at `base_offset`.
    pub fn of(batch: &Batch, base_offset: i64) -> Self {
        let header = &batch.header;
        Self {
            base_offset,
            last_offset_delta: header.last_offset_delta,
            attributes: header.attributes,
            producer_id: header.producer_id,
            producer_epoch: header.producer_epoch,
            base_sequence: header.base_sequence,
            leader_epoch: header.partition_leader_epoch,
            base_timestamp: header.base_timestamp,
            max_timestamp: header.max_timestamp,
        }
    }

    /// The fields of a batch of `record_count` records from no producer (producer id, epoch
    /// and sequence -1) at offset 0, every record stamped `timestamp`: what a plain client
    /// sends, and what tests build batches from.
    pub fn producerless(record_count: usize, timestamp: i64) -> Self {
        let last_offset_delta = i32::try_from(record_count).unwrap_or(i32::MAX).saturating_sub(1);
        Self {
            base_offset: 0,
            last_offset_delta,
            attributes: 0,
            producer_id: -1,
            producer_epoch: -1,
            base_sequence: -1,
            leader_epoch: -1,
            base_timestamp: timestamp,
            max_timestamp: timestamp,
        }
    }

    /// The compression codec (0 none, 1 gzip, 2 snappy, 3 lz4, 4 zstd).
    pub fn codec(&self) -> i16 {
        self.attributes & CODEC_BITS
    }
}

fn malformed(what: impl std::fmt::Display) -> BatchError {
    BatchError::Malformed(what.to_string())
}

/// How far [`decode`] inflates a compressed batch: far beyond any batch a client's default
/// settings make (Kafka clients cap a batch's uncompressed size at about 1 MiB), and small
/// enough that a compression bomb cannot exhaust memory. Paths that know the topic's limits
/// use [`decode_within`].
pub const DEFAULT_INFLATE_LIMIT: usize = 64 * 1024 * 1024;

/// The records of a validated batch, headers in order with duplicates.
pub fn decode(batch: &Batch) -> Result<Vec<Record>, BatchError> {
    decode_within(batch, DEFAULT_INFLATE_LIMIT)
}

/// Like [`decode`], refusing a compressed batch that inflates to more than `limit` bytes
/// (`BatchError::TooLarge`).
pub fn decode_within(batch: &Batch, limit: usize) -> Result<Vec<Record>, BatchError> {
    let header = &batch.header;
    let payload = batch.bytes.get(HEADER_BYTES..).map(|_| batch.bytes.slice(HEADER_BYTES..));
    let payload = payload.ok_or_else(|| malformed("shorter than its header"))?;
    let mut records = crate::inflate::inflate(header.compression(), payload, limit)?;
    let count =
        usize::try_from(header.record_count).map_err(|_| malformed("negative record count"))?;
    let mut found = Vec::with_capacity(count.min(records.len()));
    let log_append = header.attributes & LOG_APPEND_TIME != 0;
    for _ in 0..count {
        let mut record = decode_record(&mut records, header.base_timestamp)?;
        if log_append {
            record.timestamp = header.max_timestamp;
        }
        found.push(record);
    }
    Ok(found)
}

/// Rebuilds a v2 batch from its fields and records, compressed with `codec` (0 none, 1 gzip,
/// 2 snappy, 3 lz4, 4 zstd). The header keeps `fields` as they are (notably the last offset
/// delta, so a batch whose last records were removed still ends where it ended).
pub fn encode(fields: &BatchFields, records: &[Record], codec: i16) -> Result<Bytes, BatchError> {
    let mut plain = BytesMut::new();
    let mut body = BytesMut::new();
    for record in records {
        encode_record(&mut plain, &mut body, record, fields.base_timestamp);
    }
    let mut out = BytesMut::with_capacity(HEADER_BYTES + plain.len());
    out.put_i64(fields.base_offset);
    out.put_i32(0); // batch length, set below
    out.put_i32(fields.leader_epoch);
    out.put_i8(2);
    out.put_u32(0); // crc, set below
    out.put_i16((fields.attributes & !CODEC_BITS) | codec);
    out.put_i32(fields.last_offset_delta);
    out.put_i64(fields.base_timestamp);
    out.put_i64(fields.max_timestamp);
    out.put_i64(fields.producer_id);
    out.put_i16(fields.producer_epoch);
    out.put_i32(fields.base_sequence);
    out.put_i32(i32::try_from(records.len()).map_err(|_| malformed("too many records"))?);
    compress(codec, &mut out, &plain)?;
    let length = i32::try_from(out.len() - 12).map_err(|_| malformed("batch too large"))?;
    out[8..12].copy_from_slice(&length.to_be_bytes());
    let crc = crc32c::crc32c(&out[CRC_FROM..]);
    out[CRC_AT..CRC_FROM].copy_from_slice(&crc.to_be_bytes());
    Ok(out.freeze())
}

/// The batch with only the records whose offset `keep` accepts, everything else unchanged
/// (base offset, last offset delta, producer fields, timestamps, codec); `None` if no record is
/// kept. The batch itself when every record is kept.
pub fn retain(
    batch: &Batch,
    mut keep: impl FnMut(i64) -> bool,
) -> Result<Option<Bytes>, BatchError> {
    let fields = BatchFields::of(batch, batch.header.base_offset);
    let records = decode(batch)?;
    let total = records.len();
    let kept: Vec<Record> = records
        .into_iter()
        .filter(|record| keep(fields.base_offset + i64::from(record.offset_delta)))
        .collect();
    if kept.len() == total {
        return Ok(Some(batch.bytes.clone()));
    }
    if kept.is_empty() {
        return Ok(None);
    }
    // Records keep their timestamps, which are encoded as deltas from the unchanged base.
    let mut records = kept;
    if batch.header.attributes & LOG_APPEND_TIME != 0 {
        for record in &mut records {
            record.timestamp = fields.base_timestamp;
        }
    }
    encode(&fields, &records, fields.codec()).map(Some)
}

fn decode_record(buf: &mut Bytes, base_timestamp: i64) -> Result<Record, BatchError> {
    let size = length(read_varint(buf)?)?.ok_or_else(|| malformed("null record"))?;
    let mut body = take(buf, size)?;
    if !body.has_remaining() {
        return Err(malformed("empty record"));
    }
    let _attributes = body.get_i8();
    let timestamp_delta = read_varint(&mut body)?;
    let offset_delta =
        i32::try_from(read_varint(&mut body)?).map_err(|_| malformed("offset delta"))?;
    let key = read_bytes(&mut body)?;
    let value = read_bytes(&mut body)?;
    let count = length(read_varint(&mut body)?)?.unwrap_or(0);
    let mut headers = Vec::with_capacity(count.min(body.len()));
    for _ in 0..count {
        let key = read_bytes(&mut body)?.ok_or_else(|| malformed("null header key"))?;
        let key = String::from_utf8(key.to_vec()).map_err(|_| malformed("header key not utf-8"))?;
        let value = read_bytes(&mut body)?.map(|value| value.to_vec());
        headers.push(RecordHeader { key, value });
    }
    Ok(Record {
        offset_delta,
        timestamp: base_timestamp.wrapping_add(timestamp_delta),
        key,
        value,
        headers,
    })
}

/// A length field: -1 is null, other negatives are invalid.
fn length(value: i64) -> Result<Option<usize>, BatchError> {
    match value {
        -1 => Ok(None),
        _ => usize::try_from(value).map(Some).map_err(|_| malformed(format!("length {value}"))),
    }
}

fn take(buf: &mut Bytes, length: usize) -> Result<Bytes, BatchError> {
    if buf.len() < length {
        return Err(malformed(format!("{length} bytes needed, {} left", buf.len())));
    }
    Ok(buf.split_to(length))
}

fn read_bytes(buf: &mut Bytes) -> Result<Option<Bytes>, BatchError> {
    match length(read_varint(buf)?)? {
        None => Ok(None),
        Some(length) => take(buf, length).map(Some),
    }
}

/// A zigzag-encoded variable-length integer (Kafka's varint and varlong).
fn read_varint(buf: &mut Bytes) -> Result<i64, BatchError> {
    let (value, used) =
        crate::batch::read_varint(buf).ok_or_else(|| malformed("truncated varint"))?;
    buf.advance(used);
    Ok(value)
}

fn write_varint(buf: &mut BytesMut, value: i64) {
    let mut raw = ((value << 1) ^ (value >> 63)) as u64;
    while raw >= 0x80 {
        buf.put_u8((raw as u8) | 0x80);
        raw >>= 7;
    }
    buf.put_u8(raw as u8);
}

fn write_bytes(buf: &mut BytesMut, bytes: Option<&[u8]>) {
    match bytes {
        None => write_varint(buf, -1),
        Some(bytes) => {
            write_varint(buf, bytes.len() as i64);
            buf.put_slice(bytes);
        }
    }
}

fn encode_record(out: &mut BytesMut, body: &mut BytesMut, record: &Record, base_ts: i64) {
    body.clear();
    body.put_i8(0);
    write_varint(body, record.timestamp.wrapping_sub(base_ts));
    write_varint(body, i64::from(record.offset_delta));
    write_bytes(body, record.key.as_deref());
    write_bytes(body, record.value.as_deref());
    write_varint(body, record.headers.len() as i64);
    for header in &record.headers {
        write_bytes(body, Some(header.key.as_bytes()));
        write_bytes(body, header.value.as_deref());
    }
    write_varint(out, body.len() as i64);
    out.put_slice(body);
}

fn compress(codec: i16, out: &mut BytesMut, plain: &[u8]) -> Result<(), BatchError> {
    match codec {
        0 => {
            out.put_slice(plain);
            Ok(())
        }
        1 => deflate::<Gzip>(out, plain),
        2 => deflate::<Snappy>(out, plain),
        3 => deflate::<Lz4>(out, plain),
        4 => deflate::<Zstd>(out, plain),
        other => Err(malformed(format!("unknown compression codec {other}"))),
    }
}

fn deflate<C: Compressor<BytesMut>>(out: &mut BytesMut, plain: &[u8]) -> Result<(), BatchError> {
    C::compress(out, |buf| {
        buf.put_slice(plain);
        Ok(())
    })
    .map_err(|error| malformed(format!("compression failed: {error}")))
}

/// The codec a topic's `compression.type` asks for; `producer` (and anything unknown) keeps the
/// codec the producer used.
pub fn codec_for(compression_type: Option<&str>, producer_attributes: i16) -> i16 {
    match compression_type {
        Some("uncompressed") | Some("none") => 0,
        Some("gzip") => 1,
        Some("snappy") => 2,
        Some("lz4") => 3,
        Some("zstd") => 4,
        _ => producer_attributes & CODEC_BITS,
    }
}

#[cfg(test)]
mod tests {
    use kafka_protocol::records::Compression;

    use super::*;
    use crate::batch::split_batches;
    use crate::batch::tests::encode as producer_batch;

    fn batch(count: i64, compression: Compression) -> Batch {
        let mut batches = split_batches(&producer_batch(count, compression)).expect("valid");
        assert_eq!(batches.len(), 1);
        batches.remove(0)
    }

    fn values(batch: &Batch) -> Vec<(i32, i64, String)> {
        decode(batch)
            .expect("decodes")
            .into_iter()
            .map(|record| {
                let value = String::from_utf8_lossy(record.value.as_deref().unwrap_or_default());
                (record.offset_delta, record.timestamp, value.into_owned())
            })
            .collect()
    }

    #[test]
    fn batches_come_back_byte_for_byte() {
        for compression in [Compression::None, Compression::Gzip, Compression::Lz4] {
            let batch = batch(3, compression);
            let fields = BatchFields::of(&batch, batch.header.base_offset);
            let records = decode(&batch).expect("decodes");
            let encoded = encode(&fields, &records, fields.codec()).expect("encodes");
            assert_eq!(encoded, batch.bytes, "{compression:?}");
        }
    }

    #[test]
    fn retain_removes_records_but_keeps_offsets_and_the_batch_end() {
        for compression in [Compression::None, Compression::Snappy, Compression::Zstd] {
            let batch = batch(4, compression);
            let kept = retain(&batch, |offset| offset == 1 || offset == 2).expect("retains");
            let kept = split_batches(&kept.expect("some kept")).expect("still a valid batch");
            let kept = &kept[0];
            assert_eq!(kept.header.record_count, 2);
            assert_eq!(kept.header.last_offset_delta, 3, "the batch still ends at offset 3");
            assert_eq!(kept.header.compression(), batch.header.compression());
            assert_eq!(
                values(kept),
                vec![(1, 1001, "value-1".to_owned()), (2, 1002, "value-2".to_owned())]
            );
        }
    }

    #[test]
    fn retain_all_is_the_same_batch_and_retain_none_is_nothing() {
        let batch = batch(3, Compression::None);
        assert_eq!(retain(&batch, |_| true).expect("all"), Some(batch.bytes.clone()));
        assert_eq!(retain(&batch, |_| false).expect("none"), None);
    }

    #[test]
    fn repeated_header_keys_survive_in_order() {
        let batch = batch(1, Compression::None);
        let mut records = decode(&batch).expect("decodes");
        records[0].headers = vec![
            RecordHeader { key: "h".into(), value: Some(b"1".to_vec()) },
            RecordHeader { key: "h".into(), value: Some(b"2".to_vec()) },
        ];
        let fields = BatchFields::of(&batch, 0);
        let encoded = encode(&fields, &records, 0).expect("encodes");
        let decoded = split_batches(&encoded).expect("valid");
        assert_eq!(decode(&decoded[0]).expect("decodes")[0].headers, records[0].headers);
    }

    #[test]
    fn varints_round_trip() {
        for value in [0, 1, -1, 63, -64, 64, 300, i64::from(i32::MAX), i64::MIN, i64::MAX] {
            let mut buf = BytesMut::new();
            write_varint(&mut buf, value);
            assert_eq!(read_varint(&mut buf.freeze()), Ok(value));
        }
    }

    #[test]
    fn garbage_is_refused_not_panicked_on() {
        let mut batch = batch(1, Compression::None);
        let mut bytes = batch.bytes.to_vec();
        bytes.truncate(HEADER_BYTES + 2);
        batch.bytes = Bytes::from(bytes);
        assert!(matches!(decode(&batch), Err(BatchError::Malformed(_))));
    }
}
