//! One client connection: read requests, forward them upstream, answer in request order.
//!
//! The reading side (this task) forwards each request as soon as it is read, so a client's
//! pipelined requests stay pipelined upstream. For each request that expects an answer it queues
//! the request's API key, version and correlation id with a reply channel; a writer task answers
//! strictly in that queue's order, so responses reach the client in request order even when they
//! come back from different upstream connections. Produce with acks=0 expects no answer, so
//! nothing is queued for it.
//!
//! Failures never leave a client hanging: if its upstream connection dies, the reply channels of
//! its in-flight requests close, the writer logs and closes the client connection, and the client
//! reconnects and retries as it would after losing a broker. Malformed frames close the connection
//! with a log line.
//!
//! On a proxy that terminates SASL (`--sasl-users`), the connection's [`Session`] answers
//! SaslHandshake and SaslAuthenticate here (queued like any answer, so in request order) and
//! admits nothing else but ApiVersions before the client logged in (see [`crate::sasl`]).

use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use bytes::{Bytes, BytesMut};
use kafka_protocol::messages::ApiKey;
use skiff_net::{FrameKind, FrameReader, Stream, WriteHalf};
use skiff_protocol::header::peek_prefix;
use tokio::io::{AsyncWriteExt, BufWriter};
use tokio::sync::{mpsc, oneshot, watch, Semaphore};
use tracing::{debug, trace, warn};

use crate::error::ProxyError;
use crate::hook::{ProduceVerdict, ProduceView};
use crate::rewrite::{self, RequestInfo};
use crate::routing::{self, Lane};
use crate::sasl::{self, Terminated};
use crate::topology::Target;
use crate::upstream::{Outbound, UpstreamConnection};
use crate::validate::Refusals;
use crate::Context;
use skiff_auth::session::Session;

/// Requests of one client awaiting their answers before the reader stops reading.
const MAX_IN_FLIGHT: usize = 256;
const BUFFER_BYTES: usize = 16 * 1024;
/// Request bytes of one client read but not yet written upstream (a larger frame takes all).
const MAX_BYTES_IN_TRANSIT: u32 = 1024 * 1024;
/// How long a closing client connection waits for answers still owed to it.
const DRAIN_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(30);

/// A request sent upstream whose answer the client is owed.
struct Pending {
    request: RequestInfo,
    reply: oneshot::Receiver<BytesMut>,
    /// Partitions of a Produce the produce hook refused, merged into the answer.
    refusals: Option<Refusals>,
}

pub(crate) struct ClientConnection {
    context: Arc<Context>,
    stream: Stream,
    peer: SocketAddr,
    target: Target,
    stop: watch::Receiver<bool>,
}

/// The upstream connections this client uses, opened on first need.
struct Lanes {
    /// The upstream broker this client talks to (for the bootstrap port: the one that answered).
    address: Option<Arc<str>>,
    /// Connected to the bootstrap port (any upstream broker will do).
    bootstrap: bool,
    slot: usize,
    shared: Option<Arc<UpstreamConnection>>,
    dedicated: Option<Arc<UpstreamConnection>>,
    /// After SASL every request uses the dedicated (authenticated) connection.
    pinned: bool,
    /// Requests queued for an answer and not yet answered (shared with the writer).
    unanswered: Arc<AtomicUsize>,
    /// Permits for request bytes read from this client and not yet written upstream.
    budget: Arc<Semaphore>,
}

impl ClientConnection {
    pub(crate) fn new(
        context: Arc<Context>,
        stream: Stream,
        peer: SocketAddr,
        target: Target,
        stop: watch::Receiver<bool>,
    ) -> Self {
        Self { context, stream, peer, target, stop }
    }

    pub(crate) async fn run(self) {
        let Self { context, stream, peer, target, mut stop } = self;
        debug!(%peer, ?target, "client connected");
        let (read, write) = stream.into_split();
        let (pending_tx, pending_rx) = mpsc::channel(MAX_IN_FLIGHT);
        let unanswered = Arc::new(AtomicUsize::new(0));
        let writer = tokio::spawn(write_responses(
            context.clone(),
            peer,
            pending_rx,
            unanswered.clone(),
            BufWriter::with_capacity(BUFFER_BYTES, write),
        ));
        let address = match &target {
            Target::Broker(address) => Some(address.clone()),
            Target::Bootstrap => None,
        };
        let mut lanes = Lanes {
            bootstrap: address.is_none(),
            address,
            slot: context.pool.assign_slot(),
            shared: None,
            dedicated: None,
            pinned: false,
            unanswered,
            budget: Arc::new(Semaphore::new(MAX_BYTES_IN_TRANSIT as usize)),
        };
        let session =
            context.config.sasl.as_ref().map(|sasl| Session::new(true, None, sasl.max_reauth));
        let max_request_bytes = context.config.max_request_bytes;
        let mut reader = FrameReader::new(read, FrameKind::Request { max_request_bytes });
        loop {
            if let Some(session) = &session {
                // Small frames only until the client logged in.
                let max_request_bytes = session.frame_limit(max_request_bytes);
                reader.set_kind(FrameKind::Request { max_request_bytes });
            }
            let frame = tokio::select! {
                frame = reader.next() => frame,
                // The writer ended (upstream failure or client gone): stop reading too.
                _ = pending_tx.closed() => break,
                _ = stop.wait_for(|stop| *stop) => break,
            };
            let frame = match frame {
                Ok(Some(frame)) => frame,
                Ok(None) => break,
                Err(error) => {
                    warn!(%peer, %error, "closing client connection");
                    break;
                }
            };
            let forwarded =
                forward(&context, session.as_ref(), peer, frame, &mut lanes, &pending_tx).await;
            if let Err(error) = forwarded {
                warn!(%peer, %error, "closing client connection");
                break;
            }
        }
        // Answers already owed are still written (graceful shutdown finishes in-flight work), but
        // an upstream that never answers must not hold the connection (or a shutdown) forever.
        drop(pending_tx);
        let abort = writer.abort_handle();
        if tokio::time::timeout(DRAIN_TIMEOUT, writer).await.is_err() {
            warn!(%peer, "gave up waiting for upstream answers owed to a closing client");
            abort.abort();
        }
        debug!(%peer, "client disconnected");
    }
}

/// Sends one request upstream and, if it expects an answer, queues it for the writer.
async fn forward(
    context: &Context,
    session: Option<&Session>,
    peer: SocketAddr,
    frame: BytesMut,
    lanes: &mut Lanes,
    pending: &mpsc::Sender<Pending>,
) -> Result<(), ProxyError> {
    let prefix = peek_prefix(&frame).map_err(|error| ProxyError::Protocol(error.to_string()))?;
    let mut frame = frame;
    if let (Some(session), Some(sasl)) = (session, &context.config.sasl) {
        match sasl::terminate(sasl, session, peer, &prefix, frame).await? {
            Terminated::Forward(request) => frame = request,
            Terminated::Answered { frame, close } => {
                queue_answer(&prefix, frame, lanes, pending).await?;
                if close {
                    // The refusal is written before the connection closes.
                    return Err(ProxyError::Sasl("authentication failed".to_owned()));
                }
                return Ok(());
            }
        }
    }
    let mut expects_response = true;
    let mut refusals = None;
    if prefix.api_key == ApiKey::Produce as i16 {
        let produce = routing::parse_produce(&frame, &prefix)?;
        expects_response = produce.acks != 0;
        if context.hook.enabled() {
            // Only an enabled hook costs a copy of the request.
            let body = Bytes::copy_from_slice(frame.get(produce.body_offset..).unwrap_or_default());
            let view = ProduceView {
                api_version: prefix.api_version,
                correlation_id: prefix.correlation_id,
                client_id: produce.client_id.as_deref(),
                acks: produce.acks,
                body: &body,
            };
            match context.hook.check(&view).await {
                ProduceVerdict::Forward => {}
                ProduceVerdict::Reject { reason } => return Err(ProxyError::Rejected(reason)),
                ProduceVerdict::Answer { refusals } => {
                    return answer_locally(&prefix, expects_response, &refusals, lanes, pending)
                        .await;
                }
                ProduceVerdict::Split { body, refusals: refused } => {
                    let mut split = BytesMut::with_capacity(produce.body_offset + body.len());
                    split.extend_from_slice(frame.get(..produce.body_offset).unwrap_or_default());
                    split.extend_from_slice(&body);
                    frame = split;
                    refusals = expects_response.then_some(refused);
                }
            }
        }
    }
    if session.is_none() && routing::starts_connection_state(prefix.api_key) {
        lanes.pinned = true;
    }
    let lane = if lanes.pinned { Lane::Dedicated } else { routing::lane(prefix.api_key) };
    trace!(
        api_key = prefix.api_key,
        api_version = prefix.api_version,
        correlation_id = prefix.correlation_id,
        ?lane,
        expects_response,
        "forwarding request"
    );
    let connection = connection(context, lanes, lane).await?;
    let reply = if expects_response {
        let (reply_tx, reply_rx) = oneshot::channel();
        let request = RequestInfo {
            api_key: prefix.api_key,
            api_version: prefix.api_version,
            correlation_id: prefix.correlation_id,
        };
        lanes.unanswered.fetch_add(1, Ordering::AcqRel);
        pending
            .send(Pending { request, reply: reply_rx, refusals })
            .await
            .map_err(|_| ProxyError::Protocol("client connection closing".to_owned()))?;
        Some(reply_tx)
    } else {
        None
    };
    // Bound the request bytes this client has read but the proxy has not yet written upstream:
    // a producer pipelining megabytes faster than the upstream takes them waits here, in TCP,
    // instead of in the proxy's memory.
    let wanted = u32::try_from(frame.len()).unwrap_or(u32::MAX).min(MAX_BYTES_IN_TRANSIT);
    let budget = lanes.budget.clone().acquire_many_owned(wanted.max(1)).await.ok();
    connection.send(Outbound { frame, reply, budget }).await
}

/// Answers a Produce request of which the produce hook refused every partition, without
/// sending anything upstream (with acks=0, nothing at all). The answer is queued like any
/// other, so it reaches the client in request order.
async fn answer_locally(
    prefix: &skiff_protocol::header::RequestPrefix,
    expects_response: bool,
    refusals: &Refusals,
    lanes: &Lanes,
    pending: &mpsc::Sender<Pending>,
) -> Result<(), ProxyError> {
    if !expects_response {
        return Ok(());
    }
    let request = RequestInfo {
        api_key: prefix.api_key,
        api_version: prefix.api_version,
        correlation_id: prefix.correlation_id,
    };
    let frame = rewrite::produce::answer(request, refusals)?;
    queue_answer(prefix, frame, lanes, pending).await
}

/// Queues an answer made by the proxy itself (nothing goes upstream), so that it reaches the
/// client in request order.
async fn queue_answer(
    prefix: &skiff_protocol::header::RequestPrefix,
    frame: BytesMut,
    lanes: &Lanes,
    pending: &mpsc::Sender<Pending>,
) -> Result<(), ProxyError> {
    let request = RequestInfo {
        api_key: prefix.api_key,
        api_version: prefix.api_version,
        correlation_id: prefix.correlation_id,
    };
    let (reply_tx, reply_rx) = oneshot::channel();
    // The receiver is in `Pending` below, so this send cannot fail.
    let _ = reply_tx.send(frame);
    lanes.unanswered.fetch_add(1, Ordering::AcqRel);
    pending
        .send(Pending { request, reply: reply_rx, refusals: None })
        .await
        .map_err(|_| ProxyError::Protocol("client connection closing".to_owned()))
}

/// The live upstream connection for `lane`. A lane whose connection died is reopened only if
/// this client has no request waiting for an answer: otherwise an earlier request may be lost,
/// so the client must see a closed connection and retry (the error closes it). An idle client
/// just carries on over a new connection.
async fn connection(
    context: &Context,
    lanes: &mut Lanes,
    lane: Lane,
) -> Result<Arc<UpstreamConnection>, ProxyError> {
    let current = match lane {
        Lane::Shared => &lanes.shared,
        Lane::Dedicated => &lanes.dedicated,
    };
    if let Some(connection) = current {
        if connection.is_alive() {
            return Ok(connection.clone());
        }
        if lanes.unanswered.load(Ordering::Acquire) > 0 {
            return Err(ProxyError::Unavailable {
                address: connection.address().to_string(),
                reason: "upstream connection lost with requests in flight".to_owned(),
            });
        }
        debug!(upstream = %connection.address(), "reopening a lost upstream connection for an idle client");
        if lanes.bootstrap {
            // Any upstream will do for a bootstrap client: pick again rather than insist on
            // the one that just went away.
            lanes.address = None;
            lanes.shared = None;
            lanes.dedicated = None;
        }
    }
    let pool = &context.pool;
    let address = match &lanes.address {
        Some(address) => address.clone(),
        None => {
            // Bootstrap port: the first upstream that answers becomes this client's.
            let connection = pool.any_bootstrap(lanes.slot).await?;
            lanes.address = Some(connection.address().clone());
            connection.address().clone()
        }
    };
    let connection = match lane {
        Lane::Shared => pool.shared(&address, lanes.slot).await?,
        Lane::Dedicated => pool.dedicated(&address).await?,
    };
    match lane {
        Lane::Shared => lanes.shared = Some(connection.clone()),
        Lane::Dedicated => lanes.dedicated = Some(connection.clone()),
    }
    Ok(connection)
}

/// Answers the client in request order; ends on the first failure. Responses that are already
/// there are written together and flushed once; the writer flushes before it waits for anything.
async fn write_responses(
    context: Arc<Context>,
    peer: SocketAddr,
    mut pending: mpsc::Receiver<Pending>,
    unanswered: Arc<AtomicUsize>,
    mut writer: BufWriter<WriteHalf>,
) {
    let result = async {
        loop {
            let next = match pending.try_recv() {
                Ok(next) => next,
                Err(_) => {
                    writer.flush().await.map_err(client_gone)?;
                    match pending.recv().await {
                        Some(next) => next,
                        None => return Ok(()),
                    }
                }
            };
            let request = next.request;
            let mut reply = next.reply;
            let frame = match reply.try_recv() {
                Ok(frame) => Ok(frame),
                Err(oneshot::error::TryRecvError::Empty) => {
                    writer.flush().await.map_err(client_gone)?;
                    reply.await.map_err(|_| ())
                }
                Err(oneshot::error::TryRecvError::Closed) => Err(()),
            };
            let Ok(frame) = frame else {
                return Err(format!(
                    "upstream failed before answering {:?} (correlation id {})",
                    ApiKey::try_from(request.api_key).map_err(|_| request.api_key),
                    request.correlation_id
                ));
            };
            let mut frame = rewrite::response(&context.topology, request, frame)
                .map_err(|error| crate::error::with_causes(&error))?;
            if context.config.sasl.is_some() {
                frame = rewrite::offer_sasl(request, frame);
            }
            if let Some(refusals) = &next.refusals {
                frame = rewrite::produce::merge(request, frame, refusals)
                    .map_err(|error| crate::error::with_causes(&error))?;
            }
            write_frame(&mut writer, &frame).await.map_err(client_gone)?;
            unanswered.fetch_sub(1, Ordering::AcqRel);
        }
    }
    .await;
    match result {
        Ok(()) => {
            let _ = writer.flush().await;
        }
        Err(reason) => warn!(%peer, %reason, "closing client connection"),
    }
    // Dropping `pending` tells the reader to stop; closing the write half ends the connection.
    drop(pending);
    let _ = writer.shutdown().await;
}

fn client_gone(error: std::io::Error) -> String {
    format!("client write failed: {error}")
}

async fn write_frame(writer: &mut BufWriter<WriteHalf>, frame: &[u8]) -> std::io::Result<()> {
    let length = i32::try_from(frame.len())
        .map_err(|_| std::io::Error::other("response larger than 2 GiB"))?;
    writer.write_all(&length.to_be_bytes()).await?;
    writer.write_all(frame).await
}
