//! One client connection: read a frame, answer it, repeat.
//!
//! Requests are answered in the order they arrived, as Kafka requires. Kafka handles a
//! connection's requests one at a time (it mutes the channel until the response is sent); so do
//! we, except for Produce: a client that pipelines produce requests (librdkafka keeps up to five
//! in flight) has them handled together, so that an engine which coalesces appends stores them
//! in one write (the S3 engine's flushes) instead of one write each. Each pipelined request
//! still queues its appends only after the one before it ([`AppendTurn`]), so a producer's
//! batches keep their order. Any other request first waits until the pipelined ones are
//! answered. Any frame we cannot make sense of ends only this connection, with a log line
//! saying why. The stream may be plaintext or TLS: `skiff-net` established it and reads its
//! frames.
//!
//! On a SASL listener the connection's [`Session`] admits nothing but the SASL handshake until
//! the client has authenticated: the one check before any request is dispatched. A failed
//! authentication is answered, then the connection closes.

use std::future::Future;
use std::sync::Mutex;

use bytes::{BufMut, Bytes, BytesMut};
use futures::stream::{FuturesOrdered, StreamExt};
use kafka_protocol::messages::ApiKey;
use skiff_net::{ConnectionInfo, FrameError, FrameReader, ReadHalf, Stream, WriteHalf};
use skiff_protocol::header::{decode_header, peek_prefix};
use tokio::io::{AsyncWriteExt, BufWriter};
use tokio::sync::{oneshot, watch};
use tracing::{debug, warn, Instrument};

use crate::handlers::{self, Reply, RequestContext};
use crate::session::{self, Session};
use crate::Broker;

/// Produce requests of one connection handled at the same time, at most: librdkafka keeps up
/// to five in flight per connection (idempotent producers), the Java client five too.
const MAX_PIPELINED: usize = 8;

/// Request bytes those pipelined requests may hold, so that a client cannot make a connection
/// hold many large requests at once; a request larger than this runs alone.
const MAX_PIPELINED_BYTES: usize = 16 * 1024 * 1024;

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

/// A produce request's turn to queue its appends: pipelined produce requests queue them in the
/// order they arrived, each after the one before it has queued (or has finished).
#[derive(Default)]
pub(crate) struct AppendTurn {
    /// Resolves (or is dropped) when the request before has queued its appends.
    previous: Mutex<Option<oneshot::Receiver<()>>>,
    /// Tells the request after that this one has queued; dropped with the turn at the latest.
    next: Mutex<Option<oneshot::Sender<()>>>,
}

impl AppendTurn {
    /// Waits until the request before this one has queued its appends.
    pub(crate) async fn wait(&self) {
        let previous = lock(&self.previous).take();
        if let Some(previous) = previous {
            // An error only means the request before ended without queueing: our turn too.
            let _ = previous.await;
        }
    }

    /// Lets the request after this one queue its appends.
    pub(crate) fn pass(&self) {
        lock(&self.next).take();
    }
}

/// Until when a connection reads no request: a client over its quota is muted for its
/// throttle time after its response (Kafka's muted channel).
#[derive(Default)]
pub(crate) struct Throttle {
    until: Mutex<Option<tokio::time::Instant>>,
}

impl Throttle {
    /// Mutes the connection for `time` from now (or longer, if it already is).
    pub(crate) fn mute_for(&self, time: std::time::Duration) {
        if time.is_zero() {
            return;
        }
        let until = tokio::time::Instant::now() + time;
        let mut current = lock(&self.until);
        if current.is_none_or(|current| current < until) {
            *current = Some(until);
        }
    }

    /// When the connection may read again, if it is muted now.
    fn muted_until(&self) -> Option<tokio::time::Instant> {
        let mut current = lock(&self.until);
        match *current {
            Some(until) if until > tokio::time::Instant::now() => Some(until),
            _ => {
                *current = None;
                None
            }
        }
    }
}

fn lock<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// A response ready to write, or why the connection must end.
type Answer = Result<Option<(i32, i16, BytesMut)>, ConnectionError>;

pub(crate) struct Connection {
    broker: Broker,
    reader: FrameReader<ReadHalf>,
    writer: BufWriter<WriteHalf>,
    info: ConnectionInfo,
    session: Session,
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
        let session = session::new(&info, &broker.config.sasl);
        let kind = session::frame_kind(&session, broker.config.max_request_bytes);
        Self {
            broker,
            reader: FrameReader::new(read, kind),
            writer: BufWriter::with_capacity(64 * 1024, write),
            session,
            info,
            stop,
        }
    }

    pub(crate) async fn run(self) {
        let Connection { broker, mut reader, mut writer, info, session, mut stop } = self;
        let peer = info.peer;
        debug!(%peer, listener = %info.listener.name, principal = %session.principal(), "connection opened");
        let throttle = Throttle::default();
        let mut pipeline = Pipeline::new();
        let outcome = loop {
            reader.set_kind(session::frame_kind(&session, broker.config.max_request_bytes));
            let muted = throttle.muted_until();
            let room = pipeline.has_room() && muted.is_none();
            let step = tokio::select! {
                biased;
                Some((size, answer)) = pipeline.requests.next() => {
                    pipeline.bytes -= size;
                    write_answer(&mut writer, answer).await
                }
                // A client over its quota: nothing more is read until its throttle time passed.
                _ = tokio::time::sleep_until(muted.unwrap_or_else(tokio::time::Instant::now)), if muted.is_some() => Ok(()),
                frame = reader.next(), if room => match frame {
                    // A copy the request may keep (the memory engine stores produced batches as
                    // they arrived): a slice of the reader's buffer would pin all of it.
                    Ok(Some(frame)) => {
                        let frame = Bytes::copy_from_slice(&frame);
                        if session.expects_raw_token() {
                            // After a version 0 SaslHandshake: a bare token, no Kafka header.
                            raw_token(&broker, &info, &session, &frame, &mut writer).await
                        } else if is_produce(&frame) && frame.len() <= MAX_PIPELINED_BYTES {
                            let turn = pipeline.next_turn();
                            pipeline.bytes += frame.len();
                            let size = frame.len();
                            let answer = answer(&broker, &info, &session, &throttle, frame, turn);
                            pipeline.requests.push_back(sized(size, answer));
                            Ok(())
                        } else {
                            // Anything else runs alone, after the pipelined requests.
                            match pipeline.drain(&mut writer).await {
                                Ok(()) => {
                                    let answer = answer(
                                        &broker,
                                        &info,
                                        &session,
                                        &throttle,
                                        frame,
                                        AppendTurn::default(),
                                    )
                                    .await;
                                    write_answer(&mut writer, answer).await
                                }
                                Err(error) => Err(error),
                            }
                        }
                    }
                    Ok(None) => break pipeline.drain(&mut writer).await,
                    Err(error) => Err(error.into()),
                },
                _ = stop.changed() => break pipeline.drain(&mut writer).await,
            };
            if let Err(error) = step {
                break Err(error);
            }
            if session.must_close() {
                // Authentication failed (logged by the session), or the SASL state is broken.
                break pipeline.drain(&mut writer).await;
            }
        };
        match outcome {
            Ok(()) => {}
            Err(ConnectionError::PeerGone(error)) => debug!(%peer, %error, "client went away"),
            Err(reason) => warn!(%peer, %reason, "closing connection"),
        }
        let _ = writer.shutdown().await;
        debug!(%peer, "connection closed");
    }
}

/// The pipelined produce requests of a connection, answered in the order they arrived.
struct Pipeline<F: Future> {
    requests: FuturesOrdered<F>,
    /// Request bytes the pipelined requests hold.
    bytes: usize,
    /// Resolves when the last pipelined request has queued its appends.
    last_turn: Option<oneshot::Receiver<()>>,
}

impl<F: Future<Output = (usize, Answer)>> Pipeline<F> {
    fn new() -> Self {
        Self { requests: FuturesOrdered::new(), bytes: 0, last_turn: None }
    }

    fn has_room(&self) -> bool {
        self.requests.len() < MAX_PIPELINED && self.bytes < MAX_PIPELINED_BYTES
    }

    /// The turn of the next pipelined request, after the last one.
    fn next_turn(&mut self) -> AppendTurn {
        if self.requests.is_empty() {
            self.last_turn = None;
        }
        let (next, after) = oneshot::channel();
        let previous = self.last_turn.replace(after);
        AppendTurn { previous: Mutex::new(previous), next: Mutex::new(Some(next)) }
    }

    /// Answers every pipelined request, in order.
    async fn drain(&mut self, writer: &mut BufWriter<WriteHalf>) -> Result<(), ConnectionError> {
        while let Some((size, answer)) = self.requests.next().await {
            self.bytes -= size;
            write_answer(writer, answer).await?;
        }
        Ok(())
    }
}

async fn sized(size: usize, answer: impl Future<Output = Answer>) -> (usize, Answer) {
    (size, answer.await)
}

/// Whether a frame is a Produce request (an unreadable frame is not: it runs alone and ends
/// the connection with its reason).
fn is_produce(frame: &[u8]) -> bool {
    peek_prefix(frame).is_ok_and(|prefix| prefix.api_key == ApiKey::Produce as i16)
}

/// Handles one request frame: its response (if the request wants one), with the correlation id
/// and header version to write it with.
async fn answer(
    broker: &Broker,
    info: &ConnectionInfo,
    session: &Session,
    throttle: &Throttle,
    mut frame: Bytes,
    turn: AppendTurn,
) -> Answer {
    let prefix = peek_prefix(&frame).map_err(|error| error.to_string())?;
    let (api_key, header) =
        decode_header(&mut frame, &prefix).map_err(|error| error.to_string())?;
    session.admits(api_key)?;
    let span = tracing::debug_span!(
        "request",
        api = ?api_key,
        version = prefix.api_version,
        correlation_id = prefix.correlation_id,
        client_id = header.client_id.as_deref().unwrap_or(""),
        principal = %session.principal(),
    );
    let authorizer = match &broker.authorization {
        Some(authorization) if !skiff_auth::session::is_authentication(api_key) => {
            Some(authorization.authorizer().await.map_err(|error| {
                format!("{api_key:?}: cannot authorize, the ACLs are unreadable: {error}")
            })?)
        }
        _ => None,
    };
    let quotas = broker.quotas.current().await;
    let context = RequestContext {
        connection: info,
        session,
        principal: session.principal(),
        authorizer,
        quotas,
        throttle,
        metrics: broker.metrics(),
        client_id: header.client_id.as_deref().unwrap_or_default(),
        append_turn: turn,
    };
    let reply = handlers::dispatch(broker, api_key, &header, frame, &context)
        .instrument(span)
        .await
        .map_err(|error| format!("{api_key:?} v{}: {error}", prefix.api_version))?;
    match reply {
        Reply::Response { header_version, body } => {
            Ok(Some((prefix.correlation_id, header_version, body)))
        }
        Reply::None => Ok(None),
    }
}

/// A bare SASL token (after a version 0 SaslHandshake) and the bare token that answers it.
/// A failed exchange writes nothing: the session marks the connection to close, as Kafka
/// closes it.
async fn raw_token(
    broker: &Broker,
    info: &ConnectionInfo,
    session: &Session,
    token: &[u8],
    writer: &mut BufWriter<WriteHalf>,
) -> Result<(), ConnectionError> {
    let Ok(step) = session.authenticate(&broker.users(), info.peer, token).await else {
        return Ok(());
    };
    let length = i32::try_from(step.response.len())
        .map_err(|_| ConnectionError::Refused("SASL token larger than 2 GiB".to_owned()))?;
    let io = |error| ConnectionError::io("write failed", error);
    writer.write_i32(length).await.map_err(io)?;
    writer.write_all(&step.response).await.map_err(io)?;
    writer.flush().await.map_err(io)
}

async fn write_answer(
    writer: &mut BufWriter<WriteHalf>,
    answer: Answer,
) -> Result<(), ConnectionError> {
    match answer? {
        Some((correlation_id, header_version, body)) => {
            write_response(writer, correlation_id, header_version, &body).await
        }
        None => Ok(()),
    }
}

async fn write_response(
    writer: &mut BufWriter<WriteHalf>,
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
    writer.write_i32(length).await.map_err(io)?;
    writer.write_all(&header).await.map_err(io)?;
    writer.write_all(body).await.map_err(io)?;
    writer.flush().await.map_err(io)
}
