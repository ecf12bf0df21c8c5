//! Reading length-prefixed frames from either side, with limits checked before allocating.
//!
//! Client frames go through [`skiff_protocol::frame::check_request_length`], the same check the
//! broker uses. Upstream frames are trusted more, but a negative or absurd length from upstream is
//! still refused rather than allocated.

use bytes::BytesMut;
use skiff_protocol::frame::check_request_length;
use tokio::io::{AsyncRead, AsyncReadExt};

use crate::error::ProxyError;

/// Largest response frame accepted from an upstream broker (a Fetch answer can be big).
pub(crate) const MAX_RESPONSE_BYTES: usize = 1024 * 1024 * 1024;

/// Which limits apply to a frame.
#[derive(Debug, Clone, Copy)]
pub(crate) enum FrameKind {
    /// A request from a client, capped at `max_request_bytes` and at least a request header.
    Request { max_request_bytes: usize },
    /// A response from upstream: at least a correlation id.
    Response,
}

/// Reads one frame (without its length prefix). `Ok(None)` is a clean close between frames.
pub(crate) async fn read_frame<R: AsyncRead + Unpin>(
    reader: &mut R,
    kind: FrameKind,
) -> Result<Option<BytesMut>, ProxyError> {
    let mut prefix = [0u8; 4];
    match reader.read(&mut prefix[..1]).await {
        Ok(0) => return Ok(None),
        Ok(_) => {}
        Err(error) => return Err(ProxyError::Protocol(format!("read failed: {error}"))),
    }
    reader
        .read_exact(&mut prefix[1..])
        .await
        .map_err(|error| ProxyError::Protocol(format!("truncated frame length: {error}")))?;
    let length = match kind {
        FrameKind::Request { max_request_bytes } => check_request_length(prefix, max_request_bytes)
            .map_err(|error| ProxyError::Protocol(error.to_string()))?,
        FrameKind::Response => check_response_length(prefix)?,
    };
    let mut frame = BytesMut::zeroed(length);
    reader.read_exact(&mut frame).await.map_err(|error| {
        ProxyError::Protocol(format!("truncated frame of {length} bytes: {error}"))
    })?;
    Ok(Some(frame))
}

fn check_response_length(prefix: [u8; 4]) -> Result<usize, ProxyError> {
    let length = i32::from_be_bytes(prefix);
    if length < 4 || length as usize > MAX_RESPONSE_BYTES {
        return Err(ProxyError::Protocol(format!("implausible response frame length {length}")));
    }
    Ok(length as usize)
}

/// Overwrites the correlation id at `offset` (0 in responses, 4 in requests).
pub(crate) fn set_correlation_id(frame: &mut [u8], offset: usize, correlation_id: i32) {
    if let Some(slot) = frame.get_mut(offset..offset + 4) {
        slot.copy_from_slice(&correlation_id.to_be_bytes());
    }
}

/// Reads the correlation id at `offset`, if the frame is long enough.
pub(crate) fn correlation_id(frame: &[u8], offset: usize) -> Option<i32> {
    let bytes: [u8; 4] = frame.get(offset..offset + 4)?.try_into().ok()?;
    Some(i32::from_be_bytes(bytes))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn refuses_bad_lengths_before_allocating() {
        let request = FrameKind::Request { max_request_bytes: 1024 };
        let mut negative: &[u8] = &(-5i32).to_be_bytes();
        assert!(read_frame(&mut negative, request).await.is_err());
        let mut huge: &[u8] = &(1_000_000i32).to_be_bytes();
        assert!(read_frame(&mut huge, request).await.is_err());
        let mut short_response: &[u8] = &[0, 0, 0, 2, 1, 2];
        assert!(read_frame(&mut short_response, FrameKind::Response).await.is_err());
        let mut empty: &[u8] = &[];
        assert!(matches!(read_frame(&mut empty, request).await, Ok(None)));
    }

    #[tokio::test]
    async fn reads_a_frame_and_rewrites_its_correlation_id() {
        let mut input: &[u8] = &[0, 0, 0, 8, 0, 3, 0, 1, 0, 0, 0, 7];
        let kind = FrameKind::Request { max_request_bytes: 1024 };
        let mut frame = read_frame(&mut input, kind).await.ok().flatten().unwrap_or_default();
        assert_eq!(correlation_id(&frame, 4), Some(7));
        set_correlation_id(&mut frame, 4, 99);
        assert_eq!(correlation_id(&frame, 4), Some(99));
        assert_eq!(correlation_id(&frame, 6), None);
    }
}
