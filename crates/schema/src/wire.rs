//! Confluent's wire format: magic byte 0, the schema id as 4 bytes big-endian, for Protobuf the
//! message indexes, then the payload.
//!
//! Message indexes are a zig-zag varint count followed by that many zig-zag varint indexes; a
//! count of 0 (the single byte 0) stands for `[0]`, the first message of the file.

use crate::{SchemaType, WireError};

/// The header of a record in the wire format, and the payload after it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Framed<'a> {
    /// The schema's id in the registry.
    pub schema_id: u32,
    /// Protobuf message indexes (`[0]` when the count is 0); empty for Avro and JSON.
    pub message_indexes: Vec<i32>,
    /// The encoded record, without the header.
    pub payload: &'a [u8],
}

/// Splits `bytes` into header and payload. Only Protobuf carries message indexes.
pub fn parse(bytes: &[u8], schema_type: SchemaType) -> Result<Framed<'_>, WireError> {
    let Some((&magic, rest)) = bytes.split_first() else {
        return Err(WireError::TooShort { len: 0 });
    };
    if magic != 0 {
        return Err(WireError::MagicByte(magic));
    }
    let Some((id, mut rest)) = rest.split_first_chunk::<4>() else {
        return Err(WireError::TooShort { len: bytes.len() });
    };
    let schema_id = u32::from_be_bytes(*id);
    let message_indexes = match schema_type {
        SchemaType::Protobuf => read_message_indexes(&mut rest)?,
        SchemaType::Avro | SchemaType::Json => Vec::new(),
    };
    Ok(Framed { schema_id, message_indexes, payload: rest })
}

/// Encodes a header: the inverse of [`parse`], for producers and tests. `message_indexes` is
/// written only for Protobuf, `[0]` (and `[]`) as the single byte 0.
pub fn encode_header(schema_id: u32, schema_type: SchemaType, message_indexes: &[i32]) -> Vec<u8> {
    let mut out = Vec::with_capacity(5 + message_indexes.len() + 1);
    out.push(0);
    out.extend_from_slice(&schema_id.to_be_bytes());
    if schema_type == SchemaType::Protobuf {
        if message_indexes.is_empty() || message_indexes == [0] {
            out.push(0);
        } else {
            let count = i32::try_from(message_indexes.len()).unwrap_or(i32::MAX);
            write_zigzag_varint(count, &mut out);
            for &index in message_indexes {
                write_zigzag_varint(index, &mut out);
            }
        }
    }
    out
}

fn read_message_indexes(rest: &mut &[u8]) -> Result<Vec<i32>, WireError> {
    let count =
        read_zigzag_varint(rest).map_err(|e| WireError::MessageIndexes(format!("count: {e}")))?;
    if count == 0 {
        return Ok(vec![0]);
    }
    // Every index takes at least one byte: a count beyond what is left is garbage, and
    // refusing it bounds the allocation below.
    let count =
        usize::try_from(count).ok().filter(|&count| count <= rest.len()).ok_or_else(|| {
            WireError::MessageIndexes(format!(
                "count {count} is negative or exceeds the {} bytes left",
                rest.len()
            ))
        })?;
    let mut indexes = Vec::with_capacity(count);
    for position in 0..count {
        let index = read_zigzag_varint(rest)
            .map_err(|e| WireError::MessageIndexes(format!("index {position}: {e}")))?;
        if index < 0 {
            return Err(WireError::MessageIndexes(format!(
                "index {position} is negative ({index})"
            )));
        }
        indexes.push(index);
    }
    Ok(indexes)
}

/// Reads a zig-zag varint of at most 32 bits (5 bytes), as Kafka's `ByteUtils.readVarint`.
fn read_zigzag_varint(rest: &mut &[u8]) -> Result<i32, String> {
    let mut value: u32 = 0;
    for i in 0..5 {
        let Some((&byte, tail)) = rest.split_first() else {
            return Err("ends in the middle of a varint".to_owned());
        };
        *rest = tail;
        if i == 4 && byte > 0x0f {
            return Err("varint longer than 32 bits".to_owned());
        }
        value |= u32::from(byte & 0x7f) << (7 * i);
        if byte & 0x80 == 0 {
            return Ok(((value >> 1) as i32) ^ -((value & 1) as i32));
        }
    }
    Err("varint longer than 32 bits".to_owned())
}

fn write_zigzag_varint(value: i32, out: &mut Vec<u8>) {
    let mut zigzag = ((value << 1) ^ (value >> 31)) as u32;
    while zigzag >= 0x80 {
        out.push((zigzag as u8 & 0x7f) | 0x80);
        zigzag >>= 7;
    }
    out.push(zigzag as u8);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn avro_and_json_have_no_message_indexes() {
        let bytes = [0, 0, 0, 1, 2, b'{', b'}'];
        for schema_type in [SchemaType::Avro, SchemaType::Json] {
            let framed = parse(&bytes, schema_type).expect("framed");
            assert_eq!(framed.schema_id, 258);
            assert!(framed.message_indexes.is_empty());
            assert_eq!(framed.payload, b"{}");
        }
    }

    #[test]
    fn protobuf_single_zero_means_first_message() {
        let framed = parse(&[0, 0, 0, 0, 7, 0, 8, 1], SchemaType::Protobuf).expect("framed");
        assert_eq!(framed.schema_id, 7);
        assert_eq!(framed.message_indexes, vec![0]);
        assert_eq!(framed.payload, &[8, 1]);
    }

    #[test]
    fn protobuf_message_indexes_are_zigzag_varints() {
        // count 2 (zig-zag 4), indexes 1 (2) and 0 (0)
        let framed = parse(&[0, 0, 0, 0, 9, 4, 2, 0, 0xaa], SchemaType::Protobuf).expect("framed");
        assert_eq!(framed.message_indexes, vec![1, 0]);
        assert_eq!(framed.payload, &[0xaa]);
        // index 300: zig-zag 600 = 0xd8 0x04
        let framed = parse(&[0, 0, 0, 0, 9, 2, 0xd8, 0x04], SchemaType::Protobuf).expect("framed");
        assert_eq!(framed.message_indexes, vec![300]);
        assert!(framed.payload.is_empty());
    }

    #[test]
    fn encode_header_round_trips() {
        for indexes in [vec![0], vec![1, 0], vec![3, 200, 70000], vec![]] {
            let mut bytes = encode_header(42, SchemaType::Protobuf, &indexes);
            bytes.push(0x55);
            let framed = parse(&bytes, SchemaType::Protobuf).expect("framed");
            let expected = if indexes.is_empty() { vec![0] } else { indexes };
            assert_eq!(framed.message_indexes, expected);
            assert_eq!(framed.schema_id, 42);
            assert_eq!(framed.payload, &[0x55]);
        }
        assert_eq!(encode_header(1, SchemaType::Avro, &[5]), vec![0, 0, 0, 0, 1]);
    }

    #[test]
    fn short_and_foreign_inputs_are_refused_with_a_reason() {
        let message =
            |bytes: &[u8], schema_type| parse(bytes, schema_type).err().map(|e| e.to_string());
        assert_eq!(
            message(b"{\"a\":1}", SchemaType::Json).as_deref(),
            Some("magic byte 0x7b is not 0: not in the schema registry's wire format")
        );
        assert_eq!(
            message(&[], SchemaType::Avro).as_deref(),
            Some("0 bytes is too short for the schema registry's wire format (a magic byte and a 4-byte schema id)")
        );
        assert_eq!(parse(&[0, 0, 1], SchemaType::Avro), Err(WireError::TooShort { len: 3 }));
        assert_eq!(
            message(&[0, 0, 0, 0, 1], SchemaType::Protobuf).as_deref(),
            Some("protobuf message indexes: count: ends in the middle of a varint")
        );
        assert_eq!(
            message(&[0, 0, 0, 0, 1, 0x80, 0x80, 0x80, 0x80, 0x7f], SchemaType::Protobuf)
                .as_deref(),
            Some("protobuf message indexes: count: varint longer than 32 bits")
        );
        assert_eq!(
            message(&[0, 0, 0, 0, 1, 200, 1, 0], SchemaType::Protobuf).as_deref(),
            Some("protobuf message indexes: count 100 is negative or exceeds the 1 bytes left")
        );
        assert_eq!(
            message(&[0, 0, 0, 0, 1, 1], SchemaType::Protobuf).as_deref(),
            Some("protobuf message indexes: count -1 is negative or exceeds the 0 bytes left")
        );
        assert_eq!(
            message(&[0, 0, 0, 0, 1, 2, 1], SchemaType::Protobuf).as_deref(),
            Some("protobuf message indexes: index 0 is negative (-1)")
        );
        assert_eq!(
            message(&[0, 0, 0, 0, 1, 4, 0x82, 0x01], SchemaType::Protobuf).as_deref(),
            Some("protobuf message indexes: index 1: ends in the middle of a varint")
        );
    }
}
