//! Request and response frames: a 4-byte big-endian length, a header, a body.
//!
//! Pure functions over bytes so the framing rules are unit-tested without a socket.

use anyhow::{bail, Context};
use bytes::{BufMut, Bytes, BytesMut};
use kafka_protocol::messages::{ApiKey, RequestHeader, ResponseHeader};
use kafka_protocol::protocol::{Decodable, Encodable, StrBytes};

/// The client id brokers see in their logs for every request of these tools.
pub(crate) const CLIENT_ID: &str = "skiff-cli";

/// Largest response we accept; a larger (or negative) length means a confused peer, and refusing
/// it before allocating keeps a bad broker from making us allocate gigabytes.
pub(crate) const MAX_RESPONSE_BYTES: usize = 100 * 1024 * 1024;

/// The smallest response: a correlation id.
const MIN_RESPONSE_BYTES: usize = 4;

/// Encodes one request frame: length prefix, request header for `version`, and `body`.
pub(crate) fn encode_request<B: Encodable>(
    api_key: ApiKey,
    version: i16,
    correlation_id: i32,
    body: &B,
) -> anyhow::Result<Bytes> {
    let header = RequestHeader::default()
        .with_request_api_key(api_key as i16)
        .with_request_api_version(version)
        .with_correlation_id(correlation_id)
        .with_client_id(Some(StrBytes::from_static_str(CLIENT_ID)));
    let mut frame = BytesMut::new();
    frame.put_i32(0); // patched below once the size is known
    header
        .encode(&mut frame, api_key.request_header_version(version))
        .with_context(|| format!("encoding the {api_key:?} v{version} request header"))?;
    body.encode(&mut frame, version)
        .with_context(|| format!("encoding the {api_key:?} v{version} request"))?;
    let length = i32::try_from(frame.len() - 4).context("request frame larger than 2 GiB")?;
    frame[..4].copy_from_slice(&length.to_be_bytes());
    Ok(frame.freeze())
}

/// Checks a response's announced length before anything is allocated for it.
pub(crate) fn check_response_length(prefix: [u8; 4]) -> anyhow::Result<usize> {
    let length = i32::from_be_bytes(prefix);
    if length < 0 {
        bail!("broker sent a negative frame length ({length})");
    }
    let length = length as usize;
    if length > MAX_RESPONSE_BYTES {
        bail!("broker sent a {length}-byte frame, over the {MAX_RESPONSE_BYTES}-byte limit");
    }
    if length < MIN_RESPONSE_BYTES {
        bail!("broker sent a {length}-byte frame, too short for a response header");
    }
    Ok(length)
}

/// Strips the response header from a frame (without its length prefix) and returns the body.
///
/// A different correlation id means the connection is out of step with us: nothing after it can
/// be trusted, so it is an error rather than something to skip.
pub(crate) fn split_response(
    mut frame: Bytes,
    api_key: ApiKey,
    version: i16,
    expected_correlation_id: i32,
) -> anyhow::Result<Bytes> {
    let header_version = api_key.response_header_version(version);
    let header = ResponseHeader::decode(&mut frame, header_version)
        .with_context(|| format!("decoding the {api_key:?} v{version} response header"))?;
    if header.correlation_id != expected_correlation_id {
        bail!(
            "broker answered correlation id {} to request {expected_correlation_id}",
            header.correlation_id
        );
    }
    Ok(frame)
}

/// Decodes a response body for `version`, naming the API in the error.
pub(crate) fn decode_body<T: Decodable>(
    mut body: Bytes,
    api_key: ApiKey,
    version: i16,
) -> anyhow::Result<T> {
    T::decode(&mut body, version)
        .with_context(|| format!("decoding the {api_key:?} v{version} response"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use kafka_protocol::messages::{ApiVersionsRequest, MetadataResponse};

    #[test]
    fn request_frame_has_length_header_and_body() -> anyhow::Result<()> {
        let frame = encode_request(ApiKey::ApiVersions, 3, 7, &ApiVersionsRequest::default())?;
        let length = i32::from_be_bytes([frame[0], frame[1], frame[2], frame[3]]);
        assert_eq!(length as usize, frame.len() - 4);
        let mut rest = frame.slice(4..);
        let header = RequestHeader::decode(&mut rest, 2)?;
        assert_eq!(header.request_api_key, ApiKey::ApiVersions as i16);
        assert_eq!(header.request_api_version, 3);
        assert_eq!(header.correlation_id, 7);
        assert_eq!(header.client_id.as_deref(), Some(CLIENT_ID));
        Ok(())
    }

    #[test]
    fn refuses_bad_lengths() {
        assert!(check_response_length((-1i32).to_be_bytes()).is_err());
        assert!(check_response_length((200 * 1024 * 1024i32).to_be_bytes()).is_err());
        assert!(check_response_length(2i32.to_be_bytes()).is_err());
        assert_eq!(check_response_length(10i32.to_be_bytes()).ok(), Some(10));
    }

    /// A Metadata v12 response written out byte by byte, as a broker would send it.
    fn hand_made_metadata_v12(correlation_id: i32) -> Vec<u8> {
        let mut frame = Vec::new();
        frame.extend_from_slice(&correlation_id.to_be_bytes());
        frame.push(0); // response header v1: no tagged fields
        frame.extend_from_slice(&0i32.to_be_bytes()); // throttle_time_ms
        frame.push(2); // brokers: compact array of 1
        frame.extend_from_slice(&5i32.to_be_bytes()); // node_id
        frame.push(10); // host: compact string of 9 bytes
        frame.extend_from_slice(b"127.0.0.1");
        frame.extend_from_slice(&9092i32.to_be_bytes()); // port
        frame.push(0); // rack: null
        frame.push(0); // broker tagged fields
        frame.push(0); // cluster_id: null
        frame.extend_from_slice(&5i32.to_be_bytes()); // controller_id
        frame.push(1); // topics: empty compact array
        frame.push(0); // tagged fields
        frame
    }

    #[test]
    fn decodes_a_hand_made_response() -> anyhow::Result<()> {
        let frame = Bytes::from(hand_made_metadata_v12(42));
        let body = split_response(frame, ApiKey::Metadata, 12, 42)?;
        let response: MetadataResponse = decode_body(body, ApiKey::Metadata, 12)?;
        assert_eq!(response.brokers.len(), 1);
        assert_eq!(response.brokers[0].node_id, 5);
        assert_eq!(response.brokers[0].host.as_str(), "127.0.0.1");
        assert_eq!(response.brokers[0].port, 9092);
        assert!(response.topics.is_empty());
        Ok(())
    }

    #[test]
    fn rejects_a_mismatched_correlation_id() {
        let frame = Bytes::from(hand_made_metadata_v12(41));
        let error = split_response(frame, ApiKey::Metadata, 12, 42).err();
        assert!(error.is_some_and(|error| error.to_string().contains("correlation id 41")));
    }

    #[test]
    fn truncated_body_is_an_error_not_a_panic() -> anyhow::Result<()> {
        let mut bytes = hand_made_metadata_v12(1);
        bytes.truncate(bytes.len() - 6);
        let body = split_response(Bytes::from(bytes), ApiKey::Metadata, 12, 1)?;
        assert!(decode_body::<MetadataResponse>(body, ApiKey::Metadata, 12).is_err());
        Ok(())
    }
}
