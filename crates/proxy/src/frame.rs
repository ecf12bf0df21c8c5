//! Reading length-prefixed frames from either side, with limits checked before allocating.
//!
//! Client frames go through [`skiff_protocol::frame::check_request_length`], the same check the
//! broker uses. Upstream frames are trusted more, but a negative or absurd length from upstream is
//! still refused rather than allocated.

use bytes::{Buf, BytesMut};
use skiff_protocol::frame::check_request_length;
use tokio::io::{AsyncRead, AsyncReadExt};

use crate::error::ProxyError;

/// Largest response frame accepted from an upstream broker (a Fetch answer can be big).
pub(crate) const MAX_RESPONSE_BYTES: usize = 1024 * 1024 * 1024;

/// Smallest read from a socket, so small frames arrive many per system call.
const READ_CHUNK: usize = 16 * 1024;

/// Largest idle read buffer kept per socket between frames.
const KEEP_CAPACITY: usize = 256 * 1024;

/// Which limits apply to a frame.
#[derive(Debug, Clone, Copy)]
pub(crate) enum FrameKind {
    /// A request from a client, capped at `max_request_bytes` and at least a request header.
    Request { max_request_bytes: usize },
    /// A response from upstream: at least a correlation id.
    Response,
}

/// Reads frames from one socket into one reused buffer.
///
/// Each frame is split off the buffer (no copy) and, once every handle to it is dropped (it was
/// written to the other side), its space is reclaimed by the next read. Allocating a fresh
/// buffer per frame instead left the allocator holding megabytes of freed frames under load.
pub(crate) struct FrameReader<R> {
    reader: R,
    buffer: BytesMut,
    kind: FrameKind,
}

impl<R: AsyncRead + Unpin> FrameReader<R> {
    pub(crate) fn new(reader: R, kind: FrameKind) -> Self {
        Self { reader, buffer: BytesMut::new(), kind }
    }

    /// Reads until the buffer holds `wanted` bytes; false on end of stream.
    async fn fill(&mut self, wanted: usize) -> std::io::Result<bool> {
        while self.buffer.len() < wanted {
            self.buffer.reserve((wanted - self.buffer.len()).max(READ_CHUNK));
            if self.reader.read_buf(&mut self.buffer).await? == 0 {
                return Ok(false);
            }
        }
        Ok(true)
    }

    /// Reads one frame (without its length prefix). `Ok(None)` is a clean close between
    /// frames. Cancel-safe: bytes read before a cancellation stay buffered for the next call.
    pub(crate) async fn next(&mut self) -> Result<Option<BytesMut>, ProxyError> {
        if self.buffer.is_empty() && self.buffer.capacity() > KEEP_CAPACITY {
            // A big frame passed: let its memory go with it instead of keeping it per socket.
            self.buffer = BytesMut::new();
        }
        let io =
            |what: &str, error: std::io::Error| ProxyError::Protocol(format!("{what}: {error}"));
        if !self.fill(4).await.map_err(|error| io("read failed", error))? {
            if self.buffer.is_empty() {
                return Ok(None);
            }
            return Err(ProxyError::Protocol("truncated frame length".to_owned()));
        }
        let mut prefix = [0u8; 4];
        prefix.copy_from_slice(&self.buffer[..4]);
        let length = match self.kind {
            FrameKind::Request { max_request_bytes } => {
                check_request_length(prefix, max_request_bytes)
                    .map_err(|error| ProxyError::Protocol(error.to_string()))?
            }
            FrameKind::Response => check_response_length(prefix)?,
        };
        // The prefix stays in the buffer until the whole frame is there, so a read abandoned
        // half-way (a `select!` branch that lost) loses nothing.
        if !self.fill(4 + length).await.map_err(|error| io("read failed", error))? {
            return Err(ProxyError::Protocol(format!("truncated frame of {length} bytes")));
        }
        self.buffer.advance(4);
        Ok(Some(self.buffer.split_to(length)))
    }
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
        let negative: &[u8] = &(-5i32).to_be_bytes();
        assert!(FrameReader::new(negative, request).next().await.is_err());
        let huge: &[u8] = &(1_000_000i32).to_be_bytes();
        assert!(FrameReader::new(huge, request).next().await.is_err());
        let short_response: &[u8] = &[0, 0, 0, 2, 1, 2];
        assert!(FrameReader::new(short_response, FrameKind::Response).next().await.is_err());
        let empty: &[u8] = &[];
        assert!(matches!(FrameReader::new(empty, request).next().await, Ok(None)));
        let truncated: &[u8] = &[0, 0, 0, 9, 0, 1];
        assert!(FrameReader::new(truncated, request).next().await.is_err());
    }

    #[tokio::test]
    async fn reads_a_frame_and_rewrites_its_correlation_id() {
        let input: &[u8] =
            &[0, 0, 0, 8, 0, 3, 0, 1, 0, 0, 0, 7, 0, 0, 0, 8, 0, 3, 0, 1, 0, 0, 0, 8];
        let kind = FrameKind::Request { max_request_bytes: 1024 };
        let mut reader = FrameReader::new(input, kind);
        let mut frame = reader.next().await.ok().flatten().unwrap_or_default();
        let second = reader.next().await.ok().flatten().unwrap_or_default();
        assert!(matches!(reader.next().await, Ok(None)));
        assert_eq!(correlation_id(&frame, 4), Some(7));
        assert_eq!(correlation_id(&second, 4), Some(8));
        set_correlation_id(&mut frame, 4, 99);
        assert_eq!(correlation_id(&frame, 4), Some(99));
        assert_eq!(correlation_id(&frame, 6), None);
    }
}
