//! Reading size-prefixed Kafka frames, with limits checked before allocating.
//!
//! Requests from clients go through [`skiff_protocol::frame::check_request_length`] (a frame
//! must hold at least a request header and at most the configured request size). Responses
//! from an upstream broker (the proxy's other side) are trusted more, but a negative or absurd
//! length is still refused rather than allocated.

use bytes::{Buf, BytesMut};
use skiff_protocol::frame::check_request_length;
use tokio::io::{AsyncRead, AsyncReadExt};

/// Largest response frame accepted from an upstream broker (a Fetch answer can be big).
pub const MAX_RESPONSE_BYTES: usize = 1024 * 1024 * 1024;

/// Smallest read from a socket, so small frames arrive many per system call.
const READ_CHUNK: usize = 16 * 1024;

/// Largest idle read buffer kept per socket between frames.
const KEEP_CAPACITY: usize = 256 * 1024;

/// Which limits apply to a frame.
#[derive(Debug, Clone, Copy)]
pub enum FrameKind {
    /// A request from a client, capped at `max_request_bytes` and at least a request header.
    Request { max_request_bytes: usize },
    /// A response from upstream: at least a correlation id.
    Response,
    /// A bare SASL token (after a version 0 SaslHandshake): any length up to `max_bytes`.
    Token { max_bytes: usize },
}

/// Why no frame could be read.
#[derive(Debug, thiserror::Error)]
pub enum FrameError {
    /// The peer went away (reset, broken pipe): a normal goodbye, see [`crate::is_peer_gone`].
    #[error("peer went away: {0}")]
    PeerGone(std::io::Error),
    /// Another I/O failure.
    #[error("read failed: {0}")]
    Io(std::io::Error),
    /// A frame we refuse: an implausible length, or the stream ended inside a frame.
    #[error("{0}")]
    Malformed(String),
}

impl From<std::io::Error> for FrameError {
    fn from(error: std::io::Error) -> Self {
        if crate::is_peer_gone(&error) {
            FrameError::PeerGone(error)
        } else {
            FrameError::Io(error)
        }
    }
}

/// Reads frames from one stream into one reused buffer.
///
/// Each frame is split off the buffer (no copy) and, once every handle to it is dropped (it was
/// answered or written to the other side), its space is reclaimed by the next read. Allocating
/// a fresh buffer per frame instead left the allocator holding megabytes of freed frames under
/// load.
#[derive(Debug)]
pub struct FrameReader<R> {
    reader: R,
    buffer: BytesMut,
    kind: FrameKind,
}

impl<R: AsyncRead + Unpin> FrameReader<R> {
    pub fn new(reader: R, kind: FrameKind) -> Self {
        Self { reader, buffer: BytesMut::new(), kind }
    }

    /// Changes the limits the next frames are read with (a SASL connection's limit rises once
    /// the client has authenticated).
    pub fn set_kind(&mut self, kind: FrameKind) {
        self.kind = kind;
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
    pub async fn next(&mut self) -> Result<Option<BytesMut>, FrameError> {
        if self.buffer.is_empty() && self.buffer.capacity() > KEEP_CAPACITY {
            // A big frame passed: let its memory go with it instead of keeping it per socket.
            self.buffer = BytesMut::new();
        }
        if !self.fill(4).await? {
            if self.buffer.is_empty() {
                return Ok(None);
            }
            return Err(FrameError::Malformed("truncated frame length".to_owned()));
        }
        let mut prefix = [0u8; 4];
        prefix.copy_from_slice(&self.buffer[..4]);
        let length = match self.kind {
            FrameKind::Request { max_request_bytes } => {
                check_request_length(prefix, max_request_bytes)
                    .map_err(|error| FrameError::Malformed(error.to_string()))?
            }
            FrameKind::Response => check_response_length(prefix)?,
            FrameKind::Token { max_bytes } => check_token_length(prefix, max_bytes)?,
        };
        // The prefix stays in the buffer until the whole frame is there, so a read abandoned
        // half-way (a `select!` branch that lost) loses nothing.
        if !self.fill(4 + length).await? {
            return Err(FrameError::Malformed(format!("truncated frame of {length} bytes")));
        }
        self.buffer.advance(4);
        Ok(Some(self.buffer.split_to(length)))
    }
}

fn check_token_length(prefix: [u8; 4], max_bytes: usize) -> Result<usize, FrameError> {
    let length = i32::from_be_bytes(prefix);
    match usize::try_from(length) {
        Ok(length) if length <= max_bytes => Ok(length),
        _ => Err(FrameError::Malformed(format!(
            "SASL token length {length} outside 0..={max_bytes}"
        ))),
    }
}

fn check_response_length(prefix: [u8; 4]) -> Result<usize, FrameError> {
    let length = i32::from_be_bytes(prefix);
    match usize::try_from(length) {
        Ok(length) if (4..=MAX_RESPONSE_BYTES).contains(&length) => Ok(length),
        _ => Err(FrameError::Malformed(format!("implausible response frame length {length}"))),
    }
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
        let error = FrameReader::new(truncated, request).next().await.err().map(|e| e.to_string());
        assert_eq!(error.as_deref(), Some("truncated frame of 9 bytes"));
    }

    #[tokio::test]
    async fn sasl_tokens_may_be_short_but_not_long() {
        let token = FrameKind::Token { max_bytes: 16 };
        let short: &[u8] = &[0, 0, 0, 3, 0, b'a', 0];
        let read = FrameReader::new(short, token).next().await.ok().flatten();
        assert_eq!(read.as_deref(), Some(&[0, b'a', 0][..]));
        let empty: &[u8] = &[0, 0, 0, 0];
        assert_eq!(
            FrameReader::new(empty, token).next().await.ok().flatten().map(|f| f.len()),
            Some(0)
        );
        let long: &[u8] = &[0, 0, 0, 17];
        assert!(FrameReader::new(long, token).next().await.is_err());
        // The same reader reads a request with the request's limits after set_kind.
        let input: &[u8] = &[0, 0, 0, 3, 1, 2, 3, 0, 0, 0, 3, 1, 2, 3];
        let mut reader = FrameReader::new(input, token);
        assert!(reader.next().await.is_ok_and(|frame| frame.is_some()));
        reader.set_kind(FrameKind::Request { max_request_bytes: 1024 });
        assert!(reader.next().await.is_err(), "3 bytes are too few for a request");
    }

    #[tokio::test]
    async fn reads_frames_one_after_another() {
        let input: &[u8] =
            &[0, 0, 0, 8, 0, 3, 0, 1, 0, 0, 0, 7, 0, 0, 0, 8, 0, 3, 0, 1, 0, 0, 0, 8];
        let kind = FrameKind::Request { max_request_bytes: 1024 };
        let mut reader = FrameReader::new(input, kind);
        let first = reader.next().await.ok().flatten().unwrap_or_default();
        let second = reader.next().await.ok().flatten().unwrap_or_default();
        assert!(matches!(reader.next().await, Ok(None)));
        assert_eq!(&first[..], &[0, 3, 0, 1, 0, 0, 0, 7]);
        assert_eq!(&second[..], &[0, 3, 0, 1, 0, 0, 0, 8]);
    }
}
