//! What the proxy must know about a request before forwarding it: which upstream connection
//! ("lane") it travels on, and whether a response will come back.

use bytes::{Buf, Bytes};
use kafka_protocol::messages::ApiKey;
use skiff_protocol::header::{decode_header, RequestPrefix};

use crate::error::ProxyError;

/// Which upstream connection a request travels on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Lane {
    /// The client's slot in the shared pool of its upstream broker.
    Shared,
    /// A connection of this client alone.
    Dedicated,
}

/// Requests that may wait upstream on purpose (long-poll Fetch, rebalance waits) or that carry
/// connection state (SASL) get the client's dedicated connection; the rest are pipelined on the
/// shared pool.
pub(crate) fn lane(api_key: i16) -> Lane {
    const DEDICATED: [ApiKey; 5] = [
        ApiKey::Fetch,
        ApiKey::JoinGroup,
        ApiKey::SyncGroup,
        ApiKey::SaslHandshake,
        ApiKey::SaslAuthenticate,
    ];
    if DEDICATED.iter().any(|key| *key as i16 == api_key) {
        Lane::Dedicated
    } else {
        Lane::Shared
    }
}

/// SASL authenticates a connection, so once a client starts it, all its requests must use the
/// connection it authenticated (the proxy pins the client to its dedicated lane).
pub(crate) fn starts_connection_state(api_key: i16) -> bool {
    api_key == ApiKey::SaslHandshake as i16 || api_key == ApiKey::SaslAuthenticate as i16
}

/// A Produce request's header fields, for the acks check and the produce hook.
pub(crate) struct ProduceRequest {
    pub(crate) client_id: Option<String>,
    pub(crate) acks: i16,
    /// Where the request body (after the header) starts in the frame.
    pub(crate) body_offset: usize,
}

/// Bytes copied to parse a Produce request's header, transactional id and acks; only a longer
/// header (a huge client id) makes the parser copy the whole frame.
const PRODUCE_HEAD_BYTES: usize = 1024;

/// Reads the header, transactional id and acks of a Produce request (`frame` without length).
/// The frame itself is not consumed or shared, so it can be forwarded without a copy.
pub(crate) fn parse_produce(
    frame: &[u8],
    prefix: &RequestPrefix,
) -> Result<ProduceRequest, ProxyError> {
    let head = Bytes::copy_from_slice(&frame[..frame.len().min(PRODUCE_HEAD_BYTES)]);
    match parse_produce_head(&head, prefix) {
        Err(_) if frame.len() > PRODUCE_HEAD_BYTES => {
            parse_produce_head(&Bytes::copy_from_slice(frame), prefix)
        }
        parsed => parsed,
    }
}

fn parse_produce_head(frame: &Bytes, prefix: &RequestPrefix) -> Result<ProduceRequest, ProxyError> {
    let mut rest = frame.clone();
    let (_, header) = decode_header(&mut rest, prefix)
        .map_err(|error| ProxyError::Protocol(error.to_string()))?;
    let body_offset = frame.len() - rest.len();
    let truncated = || ProxyError::Protocol("truncated produce request".to_owned());
    // transactional_id: a nullable string, compact (varint length + 1) from version 9 on.
    let skip = if prefix.api_version >= 9 {
        let length_plus_one = read_unsigned_varint(&mut rest).ok_or_else(truncated)?;
        length_plus_one.saturating_sub(1) as usize
    } else {
        if rest.remaining() < 2 {
            return Err(truncated());
        }
        usize::try_from(rest.get_i16()).unwrap_or(0)
    };
    if rest.remaining() < skip + 2 {
        return Err(truncated());
    }
    rest.advance(skip);
    let acks = rest.get_i16();
    Ok(ProduceRequest { client_id: header.client_id.map(|id| id.to_string()), acks, body_offset })
}

fn read_unsigned_varint(buf: &mut Bytes) -> Option<u32> {
    let mut value = 0u32;
    for shift in (0..35).step_by(7) {
        if !buf.has_remaining() {
            return None;
        }
        let byte = buf.get_u8();
        value |= u32::from(byte & 0x7f) << shift;
        if byte & 0x80 == 0 {
            return Some(value);
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;
    use bytes::BytesMut;
    use kafka_protocol::messages::{ProduceRequest as Produce, RequestHeader, TransactionalId};
    use kafka_protocol::protocol::{Encodable, StrBytes};
    use skiff_protocol::header::peek_prefix;

    fn produce_frame(version: i16, acks: i16, transactional_id: Option<&str>) -> Bytes {
        let mut frame = BytesMut::new();
        let header = RequestHeader::default()
            .with_request_api_key(ApiKey::Produce as i16)
            .with_request_api_version(version)
            .with_correlation_id(5)
            .with_client_id(Some(StrBytes::from_static_str("test")));
        let header_version = ApiKey::Produce.request_header_version(version);
        header.encode(&mut frame, header_version).unwrap_or_default();
        let request =
            Produce::default().with_acks(acks).with_timeout_ms(1000).with_transactional_id(
                transactional_id.map(|id| TransactionalId(StrBytes::from_string(id.to_owned()))),
            );
        request.encode(&mut frame, version).unwrap_or_default();
        frame.freeze()
    }

    #[test]
    fn reads_acks_in_old_and_flexible_versions() {
        for version in [3, 7, 8, 9, 11, 13] {
            for (acks, txn) in [(0, None), (1, Some("tx-1")), (-1, Some(""))] {
                let frame = produce_frame(version, acks, txn);
                let prefix = peek_prefix(&frame).unwrap_or_else(|_| unreachable!());
                let parsed = parse_produce(&frame, &prefix);
                assert_eq!(parsed.map(|p| p.acks).ok(), Some(acks), "v{version} {txn:?}");
            }
        }
    }

    #[test]
    fn truncated_produce_is_an_error() {
        let frame = produce_frame(9, 1, Some("abc"));
        let prefix = peek_prefix(&frame).unwrap_or_else(|_| unreachable!());
        let cut = frame.slice(..frame.len() - 5);
        // Cut inside the body after acks: still parses acks; cut before: error.
        assert!(parse_produce(&cut, &prefix).is_ok());
        let header_only = frame.slice(..14);
        assert!(parse_produce(&header_only, &prefix).is_err());
    }

    #[test]
    fn long_waits_and_sasl_get_dedicated_connections() {
        assert_eq!(lane(ApiKey::Fetch as i16), Lane::Dedicated);
        assert_eq!(lane(ApiKey::JoinGroup as i16), Lane::Dedicated);
        assert_eq!(lane(ApiKey::Produce as i16), Lane::Shared);
        assert_eq!(lane(ApiKey::Metadata as i16), Lane::Shared);
        assert_eq!(lane(999), Lane::Shared);
        assert!(starts_connection_state(ApiKey::SaslHandshake as i16));
    }
}
