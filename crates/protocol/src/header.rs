//! Request-header decoding.
//!
//! The first eight bytes of every request are fixed (api key, api version, correlation id), so we
//! read them ourselves first: that lets the broker answer an unsupported version with the right
//! correlation id, and log an unknown API key, before trusting the rest of the header.

use bytes::{Buf, Bytes};
use kafka_protocol::messages::{ApiKey, RequestHeader};
use kafka_protocol::protocol::Decodable;
use thiserror::Error;

/// The fixed prefix of every request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RequestPrefix {
    pub api_key: i16,
    pub api_version: i16,
    pub correlation_id: i32,
}

/// Why a request header could not be read.
#[derive(Debug, Error)]
#[non_exhaustive]
pub enum HeaderError {
    #[error("request shorter than its fixed header")]
    Truncated,
    #[error("unknown api key {0}")]
    UnknownApiKey(i16),
    #[error("malformed request header: {0}")]
    Malformed(String),
}

/// Reads the fixed prefix without consuming `frame`.
pub fn peek_prefix(frame: &[u8]) -> Result<RequestPrefix, HeaderError> {
    if frame.len() < 8 {
        return Err(HeaderError::Truncated);
    }
    let mut buf = &frame[..8];
    Ok(RequestPrefix {
        api_key: buf.get_i16(),
        api_version: buf.get_i16(),
        correlation_id: buf.get_i32(),
    })
}

/// Decodes the full request header for `api_key`/`api_version`, advancing `frame` to the body.
pub fn decode_header(
    frame: &mut Bytes,
    prefix: &RequestPrefix,
) -> Result<(ApiKey, RequestHeader), HeaderError> {
    let api_key =
        ApiKey::try_from(prefix.api_key).map_err(|_| HeaderError::UnknownApiKey(prefix.api_key))?;
    let header_version = api_key.request_header_version(prefix.api_version);
    let header = RequestHeader::decode(frame, header_version)
        .map_err(|error| HeaderError::Malformed(error.to_string()))?;
    Ok((api_key, header))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn prefix_needs_eight_bytes() {
        assert!(matches!(peek_prefix(&[0; 7]), Err(HeaderError::Truncated)));
        let prefix = peek_prefix(&[0, 18, 0, 3, 0, 0, 0, 42]).expect("eight bytes");
        assert_eq!(prefix, RequestPrefix { api_key: 18, api_version: 3, correlation_id: 42 });
    }

    #[test]
    fn unknown_api_key_is_reported() {
        let mut frame = Bytes::from_static(&[0x7f, 0x00, 0, 0, 0, 0, 0, 1]);
        let prefix = peek_prefix(&frame).expect("eight bytes");
        assert!(matches!(
            decode_header(&mut frame, &prefix),
            Err(HeaderError::UnknownApiKey(0x7f00))
        ));
    }

    #[test]
    fn truncated_client_id_is_malformed() {
        // Metadata v1 has header v1: a client id string of announced length 10 but only 2 bytes.
        let mut frame = Bytes::from_static(&[0, 3, 0, 1, 0, 0, 0, 1, 0, 10, b'a', b'b']);
        let prefix = peek_prefix(&frame).expect("eight bytes");
        assert!(matches!(decode_header(&mut frame, &prefix), Err(HeaderError::Malformed(_))));
    }
}
