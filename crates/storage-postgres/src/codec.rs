//! Record batches to rows and back.
//!
//! Produce decodes each v2 batch into its records; Fetch rebuilds batches from the rows and the
//! batch row that kept everything else (producer fields, attributes, timestamps). This is a small
//! codec of its own rather than `kafka-protocol`'s record encoder because that one keeps headers in
//! a map, collapsing repeated keys that Kafka allows (DESIGN 10.1), and because encoding with the
//! stored `base_sequence` keeps one batch one batch (DESIGN 10.2). Compression reuses
//! `kafka-protocol`'s codecs, so a batch re-encoded with its producer's codec comes out as sent.

use bytes::{Buf, BufMut, Bytes, BytesMut};
use kafka_protocol::compression::{Compressor, Decompressor, Gzip, Lz4, Snappy, Zstd};
use postgres_types::{FromSql, ToSql};
use skiff_protocol::batch::{Batch, HEADER_BYTES};
use skiff_storage::{Result, StorageError};

/// Offset of the CRC field and of the first byte it covers.
const CRC_AT: usize = 17;
const CRC_FROM: usize = 21;
/// Attribute bits of the compression codec and of log-append time.
const CODEC_BITS: i16 = 0x07;
const LOG_APPEND_TIME: i16 = 0x08;

/// One record header as stored (`skiff.header`): repeated keys keep their order.
#[derive(Debug, Clone, PartialEq, Eq, ToSql, FromSql)]
#[postgres(name = "header")]
pub(crate) struct Header {
    pub(crate) key: String,
    pub(crate) value: Option<Vec<u8>>,
}

/// One record of a batch, as a row holds it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct RowRecord {
    pub(crate) offset_delta: i32,
    /// What consumers see: the record's timestamp, or the batch's for log-append time.
    pub(crate) timestamp: i64,
    pub(crate) key: Option<Bytes>,
    pub(crate) value: Option<Bytes>,
    pub(crate) headers: Vec<Header>,
}

/// The batch-level fields kept in `skiff.batches`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct BatchFields {
    pub(crate) base_offset: i64,
    pub(crate) last_offset_delta: i32,
    pub(crate) attributes: i16,
    pub(crate) producer_id: i64,
    pub(crate) producer_epoch: i16,
    pub(crate) base_sequence: i32,
    pub(crate) leader_epoch: i32,
    pub(crate) base_timestamp: i64,
    pub(crate) max_timestamp: i64,
}

impl BatchFields {
    /// The fields of `batch` once stored at `base_offset`.
    pub(crate) fn of(batch: &Batch, base_offset: i64) -> Self {
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
}

fn invalid(what: impl std::fmt::Display) -> StorageError {
    StorageError::InvalidArgument(format!("record batch does not decode: {what}"))
}

/// The records of a validated batch, headers in order with duplicates.
pub(crate) fn decode(batch: &Batch) -> Result<Vec<RowRecord>> {
    let header = &batch.header;
    let payload = batch.bytes.get(HEADER_BYTES..).map(|_| batch.bytes.slice(HEADER_BYTES..));
    let payload = payload.ok_or_else(|| invalid("shorter than its header"))?;
    let mut records = decompress(header.compression(), payload)?;
    let count = usize::try_from(header.record_count).map_err(|_| invalid("negative count"))?;
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

fn decompress(codec: i16, payload: Bytes) -> Result<Bytes> {
    match codec {
        0 => Ok(payload),
        1 => inflate::<Gzip>(payload),
        2 => inflate::<Snappy>(payload),
        3 => inflate::<Lz4>(payload),
        4 => inflate::<Zstd>(payload),
        other => Err(invalid(format!("unknown compression codec {other}"))),
    }
}

fn inflate<D: Decompressor<Bytes>>(mut payload: Bytes) -> Result<Bytes> {
    D::decompress(&mut payload, |buf| Ok(buf.copy_to_bytes(buf.remaining())))
        .map_err(|error| invalid(format!("decompression failed: {error}")))
}

fn decode_record(buf: &mut Bytes, base_timestamp: i64) -> Result<RowRecord> {
    let size = length(read_varint(buf)?)?.ok_or_else(|| invalid("null record"))?;
    let mut body = take(buf, size)?;
    if !body.has_remaining() {
        return Err(invalid("empty record"));
    }
    let _attributes = body.get_i8();
    let timestamp_delta = read_varint(&mut body)?;
    let offset_delta = i32::try_from(read_varint(&mut body)?).map_err(|_| invalid("offset"))?;
    let key = read_bytes(&mut body)?;
    let value = read_bytes(&mut body)?;
    let count = length(read_varint(&mut body)?)?.unwrap_or(0);
    let mut headers = Vec::with_capacity(count.min(body.len()));
    for _ in 0..count {
        let key = read_bytes(&mut body)?.ok_or_else(|| invalid("null header key"))?;
        let key = String::from_utf8(key.to_vec()).map_err(|_| invalid("header key not utf-8"))?;
        let value = read_bytes(&mut body)?.map(|value| value.to_vec());
        headers.push(Header { key, value });
    }
    Ok(RowRecord {
        offset_delta,
        timestamp: base_timestamp.wrapping_add(timestamp_delta),
        key,
        value,
        headers,
    })
}

/// A length field: -1 is null, other negatives are invalid.
fn length(value: i64) -> Result<Option<usize>> {
    match value {
        -1 => Ok(None),
        _ => usize::try_from(value).map(Some).map_err(|_| invalid(format!("length {value}"))),
    }
}

fn take(buf: &mut Bytes, length: usize) -> Result<Bytes> {
    if buf.len() < length {
        return Err(invalid(format!("{length} bytes needed, {} left", buf.len())));
    }
    Ok(buf.split_to(length))
}

fn read_bytes(buf: &mut Bytes) -> Result<Option<Bytes>> {
    match length(read_varint(buf)?)? {
        None => Ok(None),
        Some(length) => take(buf, length).map(Some),
    }
}

/// A zigzag-encoded variable-length integer (Kafka's varint and varlong).
fn read_varint(buf: &mut Bytes) -> Result<i64> {
    let mut raw: u64 = 0;
    for shift in (0..70).step_by(7) {
        if !buf.has_remaining() {
            return Err(invalid("truncated varint"));
        }
        let byte = buf.get_u8();
        raw |= u64::from(byte & 0x7f) << shift;
        if byte & 0x80 == 0 {
            return Ok((raw >> 1) as i64 ^ -((raw & 1) as i64));
        }
    }
    Err(invalid("varint longer than 10 bytes"))
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

fn encode_record(out: &mut BytesMut, body: &mut BytesMut, record: &RowRecord, base_ts: i64) {
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

/// Rebuilds a v2 batch from its stored fields and records, compressed with `codec` (0 none,
/// 1 gzip, 2 snappy, 3 lz4, 4 zstd).
pub(crate) fn encode(fields: &BatchFields, records: &[RowRecord], codec: i16) -> Result<Bytes> {
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
    out.put_i32(i32::try_from(records.len()).map_err(|_| invalid("too many records"))?);
    compress(codec, &mut out, &plain)?;
    let length = i32::try_from(out.len() - 12).map_err(|_| invalid("batch too large"))?;
    out[8..12].copy_from_slice(&length.to_be_bytes());
    let crc = crc32c::crc32c(&out[CRC_FROM..]);
    out[CRC_AT..CRC_FROM].copy_from_slice(&crc.to_be_bytes());
    Ok(out.freeze())
}

fn compress(codec: i16, out: &mut BytesMut, plain: &[u8]) -> Result<()> {
    match codec {
        0 => {
            out.put_slice(plain);
            Ok(())
        }
        1 => deflate::<Gzip>(out, plain),
        2 => deflate::<Snappy>(out, plain),
        3 => deflate::<Lz4>(out, plain),
        4 => deflate::<Zstd>(out, plain),
        other => Err(invalid(format!("unknown compression codec {other}"))),
    }
}

fn deflate<C: Compressor<BytesMut>>(out: &mut BytesMut, plain: &[u8]) -> Result<()> {
    C::compress(out, |buf| {
        buf.put_slice(plain);
        Ok(())
    })
    .map_err(|error| StorageError::Unavailable(format!("compression failed: {error}")))
}

/// The codec a topic's `compression.type` asks for; `producer` (and anything unknown) keeps the
/// codec the producer used.
pub(crate) fn codec_for(compression_type: Option<&str>, producer_codec: i16) -> i16 {
    match compression_type {
        Some("uncompressed") | Some("none") => 0,
        Some("gzip") => 1,
        Some("snappy") => 2,
        Some("lz4") => 3,
        Some("zstd") => 4,
        _ => producer_codec & CODEC_BITS,
    }
}

#[cfg(test)]
mod tests {
    use kafka_protocol::records::Compression;
    use skiff_storage::testsuite::{batch_with, marker, transactional_batch};

    use super::*;

    fn round_trip(batch: &Batch) -> Bytes {
        let records = decode(batch).expect("decodes");
        let fields = BatchFields::of(batch, batch.header.base_offset);
        encode(&fields, &records, batch.header.compression()).expect("encodes")
    }

    #[test]
    fn batches_come_back_byte_for_byte() {
        for compression in [Compression::None, Compression::Gzip, Compression::Lz4] {
            let batch = batch_with(&["a", "bb", ""], &[5, 9, 7], compression);
            assert_eq!(round_trip(&batch), batch.bytes, "{compression:?}");
        }
        for batch in [transactional_batch(3, 1, 7, 4), marker(3, 1, false)] {
            assert_eq!(round_trip(&batch), batch.bytes);
        }
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
        let mut batch = batch_with(&["a"], &[1], Compression::None);
        let mut bytes = batch.bytes.to_vec();
        bytes.truncate(HEADER_BYTES + 2);
        batch.bytes = Bytes::from(bytes);
        assert!(matches!(decode(&batch), Err(StorageError::InvalidArgument(_))));
    }
}
