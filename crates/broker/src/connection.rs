//! One client connection: read a frame, answer it, repeat.
//!
//! Requests on a connection are handled one at a time, as Kafka does (it mutes a channel until
//! its response is sent): that keeps each producer's batches in order. Any frame we cannot make
//! sense of ends only this connection, with a log line saying why. The stream may be plaintext
//! or TLS: `skiff-net` established it and reads its frames.

use bytes::{BufMut, Bytes, BytesMut};
use skiff_net::{ConnectionInfo, FrameError, FrameKind, FrameReader, ReadHalf, Stream, WriteHalf};
use skiff_protocol::header::{decode_header, peek_prefix};
use tokio::io::{AsyncWriteExt, BufWriter};
use tokio::sync::watch;
use tracing::{debug, warn, Instrument};

use crate::handlers::{self, Reply, RequestContext};
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
        if skiff_net::is_peer_gone(&error) {
            Self::PeerGone(error)
        } else {
            Self::Refused(format!("{context}: {error}"))
        }
    }
}

impl From<String> for ConnectionError {
    fn from(reason: String) -> Self {
        Self::Refused(reason)
    }
}

impl From<FrameError> for ConnectionError {
    fn from(error: FrameError) -> Self {
        match error {
            FrameError::PeerGone(error) => Self::PeerGone(error),
            other => Self::Refused(other.to_string()),
        }
    }
}

pub(crate) struct Connection {
    broker: Broker,
    reader: FrameReader<ReadHalf>,
    writer: BufWriter<WriteHalf>,
    info: ConnectionInfo,
    stop: watch::Receiver<bool>,
}

impl Connection {
    pub(crate) fn new(
        broker: Broker,
        stream: Stream,
        info: ConnectionInfo,
        stop: watch::Receiver<bool>,
    ) -> Self {
        let (read, write) = stream.into_split();
        let kind = FrameKind::Request { max_request_bytes: broker.config.max_request_bytes };
        Self {
            broker,
            reader: FrameReader::new(read, kind),
            writer: BufWriter::with_capacity(64 * 1024, write),
            info,
            stop,
        }
    }

    pub(crate) async fn run(mut self) {
        let peer = self.info.peer;
        debug!(%peer, listener = %self.info.listener.name, "connection opened");
        loop {
            let frame = tokio::select! {
                frame = self.reader.next() => frame,
                _ = self.stop.changed() => break,
            };
            let outcome = match frame {
                // A copy the request may keep (the memory engine stores produced batches as
                // they arrived): a slice of the reader's buffer would pin all of it.
                Ok(Some(frame)) => self.answer(Bytes::copy_from_slice(&frame)).await,
                Ok(None) => break,
                Err(error) => Err(error.into()),
            };
            match outcome {
                Ok(()) => {}
                Err(ConnectionError::PeerGone(error)) => {
                    debug!(%peer, %error, "client went away");
                    break;
                }
                Err(reason) => {
                    warn!(%peer, %reason, "closing connection");
                    break;
                }
            }
        }
        let _ = self.writer.shutdown().await;
        debug!(%peer, "connection closed");
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
        let context = RequestContext {
            connection: &self.info,
            client_id: header.client_id.as_deref().unwrap_or_default(),
        };
        let reply = handlers::dispatch(&self.broker, api_key, &header, frame, &context)
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
