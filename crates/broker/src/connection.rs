//! One client connection: read a frame, answer it, repeat.
//!
//! Requests on a connection are handled one at a time, as Kafka does (it mutes a channel until
//! its response is sent): that keeps each producer's batches in order. Any frame we cannot make
//! sense of ends only this connection, with a log line saying why.

use std::net::SocketAddr;

use bytes::{BufMut, Bytes, BytesMut};
use skiff_protocol::frame::check_request_length;
use skiff_protocol::header::{decode_header, peek_prefix};
use tokio::io::{AsyncReadExt, AsyncWriteExt, BufReader, BufWriter};
use tokio::net::tcp::{OwnedReadHalf, OwnedWriteHalf};
use tokio::net::TcpStream;
use tokio::sync::watch;
use tracing::{debug, warn, Instrument};

use crate::handlers::{self, Reply};
use crate::Broker;

/// Why a connection ends before the client closed it between frames.
#[derive(Debug, thiserror::Error)]
enum ConnectionError {
    /// The client went away while we read or wrote (it closed with a long poll open, or its
    /// process died): a normal goodbye for Kafka too, logged only at debug level.
    #[error("client went away: {0}")]
    PeerGone(std::io::Error),
    /// Something we cannot make sense of, or an I/O failure of ours: worth a warning.
    #[error("{0}")]
    Refused(String),
}

impl ConnectionError {
    fn io(context: &str, error: std::io::Error) -> Self {
        use std::io::ErrorKind::{BrokenPipe, ConnectionAborted, ConnectionReset};
        match error.kind() {
            BrokenPipe | ConnectionReset | ConnectionAborted => Self::PeerGone(error),
            _ => Self::Refused(format!("{context}: {error}")),
        }
    }
}

impl From<String> for ConnectionError {
    fn from(reason: String) -> Self {
        Self::Refused(reason)
    }
}

pub(crate) struct Connection {
    broker: Broker,
    reader: BufReader<OwnedReadHalf>,
    writer: BufWriter<OwnedWriteHalf>,
    peer: SocketAddr,
    stop: watch::Receiver<bool>,
}

impl Connection {
    pub(crate) fn new(
        broker: Broker,
        stream: TcpStream,
        peer: SocketAddr,
        stop: watch::Receiver<bool>,
    ) -> Self {
        let (read, write) = stream.into_split();
        Self {
            broker,
            reader: BufReader::with_capacity(64 * 1024, read),
            writer: BufWriter::with_capacity(64 * 1024, write),
            peer,
            stop,
        }
    }

    pub(crate) async fn run(mut self) {
        debug!(peer = %self.peer, "connection opened");
        loop {
            let frame = tokio::select! {
                frame = read_frame(&mut self.reader, self.broker.config.max_request_bytes) => frame,
                _ = self.stop.changed() => break,
            };
            let outcome = match frame {
                Ok(Some(frame)) => self.answer(frame).await,
                Ok(None) => break,
                Err(error) => Err(error),
            };
            match outcome {
                Ok(()) => {}
                Err(ConnectionError::PeerGone(error)) => {
                    debug!(peer = %self.peer, %error, "client went away");
                    break;
                }
                Err(reason) => {
                    warn!(peer = %self.peer, %reason, "closing connection");
                    break;
                }
            }
        }
        let _ = self.writer.shutdown().await;
        debug!(peer = %self.peer, "connection closed");
    }

    /// Handles one request frame and writes its response (if the request wants one).
    async fn answer(&mut self, mut frame: Bytes) -> Result<(), ConnectionError> {
        let prefix = peek_prefix(&frame).map_err(|error| error.to_string())?;
        let (api_key, header) =
            decode_header(&mut frame, &prefix).map_err(|error| error.to_string())?;
        let span = tracing::debug_span!(
            "request",
            api = ?api_key,
            version = prefix.api_version,
            correlation_id = prefix.correlation_id,
            client_id = header.client_id.as_deref().unwrap_or(""),
        );
        let reply = handlers::dispatch(&self.broker, api_key, &header, frame, self.peer)
            .instrument(span)
            .await
            .map_err(|error| format!("{api_key:?} v{}: {error}", prefix.api_version))?;
        match reply {
            Reply::Response { header_version, body } => {
                self.write_response(prefix.correlation_id, header_version, &body).await
            }
            Reply::None => Ok(()),
        }
    }

    async fn write_response(
        &mut self,
        correlation_id: i32,
        header_version: i16,
        body: &[u8],
    ) -> Result<(), ConnectionError> {
        // Response header: correlation id, plus an empty tagged-field section from v1 on.
        let mut header = BytesMut::with_capacity(9);
        header.put_i32(correlation_id);
        if header_version >= 1 {
            header.put_u8(0);
        }
        let length = i32::try_from(header.len() + body.len())
            .map_err(|_| ConnectionError::Refused("response larger than 2 GiB".to_owned()))?;
        let io = |error| ConnectionError::io("write failed", error);
        self.writer.write_i32(length).await.map_err(io)?;
        self.writer.write_all(&header).await.map_err(io)?;
        self.writer.write_all(body).await.map_err(io)?;
        self.writer.flush().await.map_err(io)
    }
}

/// Reads one frame. `Ok(None)` is a clean close between frames; errors say what was wrong.
async fn read_frame(
    reader: &mut BufReader<OwnedReadHalf>,
    max_request_bytes: usize,
) -> Result<Option<Bytes>, ConnectionError> {
    // A close before the first byte is a normal goodbye; a close inside a frame is not.
    let mut prefix = [0u8; 4];
    match reader.read(&mut prefix[..1]).await {
        Ok(0) => return Ok(None),
        Ok(_) => {}
        Err(error) => return Err(ConnectionError::io("read failed", error)),
    }
    reader
        .read_exact(&mut prefix[1..])
        .await
        .map_err(|error| format!("truncated frame length: {error}"))?;
    let length = check_request_length(prefix, max_request_bytes)
        .map_err(|error| ConnectionError::Refused(error.to_string()))?;
    let mut frame = BytesMut::zeroed(length);
    reader
        .read_exact(&mut frame)
        .await
        .map_err(|error| format!("truncated frame of {length} bytes: {error}"))?;
    Ok(Some(frame.freeze()))
}
