//! Decompressing a batch's records with a bound on what comes out.
//!
//! A few hundred compressed bytes can claim gigabytes (a "compression bomb"), and a codec's own
//! "decompressed length" field is whatever the client wrote. So every codec here is read as a
//! stream that stops one byte past the limit, and a declared length over the limit is refused
//! before anything is allocated: the protection does not depend on the allocator. The codec
//! crates are the ones `kafka-protocol` compresses with, so their formats match: gzip, Kafka's
//! snappy (raw, or the xerial framing that Java and librdkafka write), LZ4 frames and zstd.

use std::io::Read;

use bytes::Bytes;

use crate::batch::BatchError;

/// Xerial snappy's stream header, written by Java clients and librdkafka.
const XERIAL_MAGIC: &[u8; 8] = b"\x82SNAPPY\x00";
const XERIAL_HEADER_BYTES: usize = 16;

/// The records of a batch payload compressed with `codec` (0 none, 1 gzip, 2 snappy, 3 lz4,
/// 4 zstd), inflated to at most `limit` bytes; `TooLarge` beyond that.
pub fn inflate(codec: i16, payload: Bytes, limit: usize) -> Result<Bytes, BatchError> {
    let inflated = match codec {
        0 => return Ok(payload),
        1 => read_bounded(flate2::read::GzDecoder::new(&payload[..]), limit)?,
        2 => snappy(&payload, limit)?,
        3 => {
            let decoder = lz4::Decoder::new(&payload[..]).map_err(corrupt)?;
            read_bounded(decoder, limit)?
        }
        4 => {
            let decoder = zstd::stream::read::Decoder::new(&payload[..]).map_err(corrupt)?;
            read_bounded(decoder, limit)?
        }
        other => {
            return Err(BatchError::Malformed(format!("unknown compression codec {other}")));
        }
    };
    Ok(Bytes::from(inflated))
}

fn corrupt(error: impl std::fmt::Display) -> BatchError {
    BatchError::Malformed(format!("decompression failed: {error}"))
}

/// Reads `reader` to its end, refusing to go past `limit` bytes.
fn read_bounded(reader: impl Read, limit: usize) -> Result<Vec<u8>, BatchError> {
    let mut out = Vec::new();
    let cap = u64::try_from(limit).unwrap_or(u64::MAX).saturating_add(1);
    reader.take(cap).read_to_end(&mut out).map_err(corrupt)?;
    if out.len() > limit {
        return Err(BatchError::TooLarge { limit });
    }
    Ok(out)
}

fn snappy(payload: &[u8], limit: usize) -> Result<Vec<u8>, BatchError> {
    if payload.len() < XERIAL_HEADER_BYTES || &payload[..XERIAL_MAGIC.len()] != XERIAL_MAGIC {
        let mut out = Vec::new();
        snappy_block(payload, limit, &mut out)?;
        return Ok(out);
    }
    // Xerial: the header, then blocks, each a 4-byte big-endian length and a raw snappy block.
    let mut rest = &payload[XERIAL_HEADER_BYTES..];
    let mut out = Vec::new();
    while !rest.is_empty() {
        let (length, tail) =
            rest.split_at_checked(4).ok_or_else(|| corrupt("truncated block length"))?;
        let length = u32::from_be_bytes([length[0], length[1], length[2], length[3]]);
        let length = usize::try_from(length).map_err(corrupt)?;
        let (block, tail) =
            tail.split_at_checked(length).ok_or_else(|| corrupt("truncated block"))?;
        snappy_block(block, limit, &mut out)?;
        rest = tail;
    }
    Ok(out)
}

/// Appends one raw snappy block to `out`, checking its declared length against what is left
/// of `limit` before allocating for it.
fn snappy_block(block: &[u8], limit: usize, out: &mut Vec<u8>) -> Result<(), BatchError> {
    let length = snap::raw::decompress_len(block).map_err(corrupt)?;
    if out.len().saturating_add(length) > limit {
        return Err(BatchError::TooLarge { limit });
    }
    let start = out.len();
    out.resize(start + length, 0);
    let written =
        snap::raw::Decoder::new().decompress(block, &mut out[start..]).map_err(corrupt)?;
    out.truncate(start + written);
    Ok(())
}

#[cfg(test)]
mod tests {
    use bytes::{Buf, BytesMut};
    use kafka_protocol::compression::{Compressor, Gzip, Lz4, Snappy, Zstd};

    use super::*;

    fn compressed<C: Compressor<BytesMut>>(plain: &[u8]) -> Bytes {
        let mut out = BytesMut::new();
        C::compress(&mut out, |buf: &mut C::BufMut| {
            bytes::BufMut::put_slice(buf, plain);
            Ok(())
        })
        .expect("compresses");
        out.freeze()
    }

    fn every_codec(plain: &[u8]) -> Vec<(i16, Bytes)> {
        vec![
            (1, compressed::<Gzip>(plain)),
            (2, compressed::<Snappy>(plain)),
            (3, compressed::<Lz4>(plain)),
            (4, compressed::<Zstd>(plain)),
        ]
    }

    #[test]
    fn every_codec_round_trips_within_the_limit() {
        let plain: Vec<u8> = (0..100_000u32).flat_map(|i| (i % 251).to_be_bytes()).collect();
        for (codec, payload) in every_codec(&plain) {
            let inflated = inflate(codec, payload, plain.len()).expect("within the limit");
            assert_eq!(inflated.chunk(), &plain[..], "codec {codec}");
        }
    }

    #[test]
    fn a_compression_bomb_is_refused_at_the_limit() {
        let bomb = vec![0u8; 8 * 1024 * 1024];
        for (codec, payload) in every_codec(&bomb) {
            assert!(payload.len() < 1024 * 1024, "codec {codec} compresses zeros well");
            let refused = inflate(codec, payload, 1024 * 1024);
            assert!(
                matches!(refused, Err(BatchError::TooLarge { limit: 1048576 })),
                "codec {codec}: {refused:?}"
            );
        }
    }

    #[test]
    fn a_raw_snappy_block_claiming_more_than_the_limit_allocates_nothing() {
        // A varint length of 2^32 - 1 and no data.
        let lying = Bytes::from_static(&[0xff, 0xff, 0xff, 0xff, 0x0f]);
        let refused = inflate(2, lying, 1024);
        assert!(matches!(refused, Err(BatchError::TooLarge { .. })), "{refused:?}");
    }

    #[test]
    fn garbage_is_malformed_not_a_panic() {
        for codec in 1..=4 {
            let result = inflate(codec, Bytes::from_static(b"not compressed at all"), 1024);
            assert!(matches!(result, Err(BatchError::Malformed(_))), "codec {codec}: {result:?}");
            let _ = inflate(codec, Bytes::new(), 1024);
            let _ = inflate(
                codec,
                Bytes::from_static(b"\x82SNAPPY\x00\x00\x00\x00\x01\x00\x00\x00\x01\xff"),
                1024,
            );
        }
        assert!(inflate(9, Bytes::new(), 1024).is_err());
    }
}
