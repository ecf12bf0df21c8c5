//! One connection to an upstream broker, shared by any number of client requests.
//!
//! A writer task takes requests from a channel, gives each a fresh upstream correlation id and
//! writes it; a reader task matches responses to requests. Kafka answers the requests of one
//! connection in the order it received them, so the in-flight requests are a FIFO queue and the
//! correlation id of each response only confirms what the queue already says (a mismatch means
//! the upstream broke the protocol, and the connection is dropped).
//!
//! When either side fails, the connection is closed for good: every in-flight request's reply
//! sender is dropped at once, so each waiting client notices immediately instead of hanging. A
//! closed connection is never reused; the pool opens a new one on the next request.

use std::collections::VecDeque;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use bytes::BytesMut;
use tokio::io::{AsyncWriteExt, BufWriter};
use tokio::net::tcp::{OwnedReadHalf, OwnedWriteHalf};
use tokio::sync::{mpsc, oneshot, watch, OwnedSemaphorePermit};
use tracing::{debug, warn};

use crate::error::ProxyError;
use crate::frame::{correlation_id, set_correlation_id};
use crate::sasl::UpstreamSasl;
use skiff_net::{FrameKind, FrameReader};

/// Requests queued for writing per upstream connection before senders wait.
const OUTBOUND_QUEUE: usize = 1024;
const BUFFER_BYTES: usize = 16 * 1024;

/// A request on its way upstream: the frame (without length prefix; the correlation id is
/// replaced on writing) and where to send the response frame, if one is expected.
pub(crate) struct Outbound {
    pub(crate) frame: BytesMut,
    pub(crate) reply: Option<oneshot::Sender<BytesMut>>,
    /// The sender's share of its in-transit byte budget, returned when the frame is written.
    pub(crate) budget: Option<OwnedSemaphorePermit>,
}

/// A live or closed upstream connection.
pub(crate) struct UpstreamConnection {
    address: Arc<str>,
    outbound: mpsc::Sender<Outbound>,
    state: Arc<State>,
}

/// What the reader and writer tasks share.
struct State {
    address: Arc<str>,
    in_flight: Mutex<InFlight>,
    closed: watch::Sender<bool>,
}

#[derive(Default)]
struct InFlight {
    closed: bool,
    next_id: i32,
    /// Upstream correlation id, where the answer goes, when the request was written.
    waiting: VecDeque<(i32, oneshot::Sender<BytesMut>, Instant)>,
}

impl UpstreamConnection {
    /// Connects to `address` (HOST:PORT, resolved here by `skiff-resolve`, so also in the static
    /// binary) within `timeout` and starts the tasks.
    ///
    /// With a `request_timeout`, a connection whose oldest unanswered request waited longer is
    /// closed (failing its requests), so an upstream that hangs without closing its socket
    /// cannot hold clients forever. Only connections that carry no long polls get one.
    ///
    /// With a `login`, the connection authenticates (SASL) within the same `timeout` before
    /// it is used; a refused login makes the upstream unavailable, with the reason logged.
    pub(crate) async fn connect(
        address: Arc<str>,
        timeout: Duration,
        request_timeout: Option<Duration>,
        login: Option<&UpstreamSasl>,
    ) -> Result<Arc<Self>, ProxyError> {
        let unavailable =
            |reason: String| ProxyError::Unavailable { address: address.to_string(), reason };
        let opened = tokio::time::timeout(timeout, async {
            let mut stream = skiff_resolve::connect(&address).await.map_err(|e| e.to_string())?;
            if let Some(login) = login {
                crate::sasl::login(&mut stream, login).await.map_err(|reason| {
                    warn!(upstream = %address, user = %login.username, %reason, "upstream SASL login failed");
                    format!("SASL login as {} failed: {reason}", login.username)
                })?;
            }
            Ok::<_, String>(stream)
        });
        let stream = match opened.await {
            Ok(Ok(stream)) => stream,
            Ok(Err(reason)) => return Err(unavailable(reason)),
            Err(_) => return Err(unavailable(format!("no connection within {timeout:?}"))),
        };
        let _ = stream.set_nodelay(true);
        let (read, write) = stream.into_split();
        let (outbound, requests) = mpsc::channel(OUTBOUND_QUEUE);
        let state = Arc::new(State {
            address: address.clone(),
            in_flight: Mutex::new(InFlight::default()),
            closed: watch::channel(false).0,
        });
        tokio::spawn(write_loop(
            state.clone(),
            requests,
            BufWriter::with_capacity(BUFFER_BYTES, write),
        ));
        tokio::spawn(read_loop(
            state.clone(),
            FrameReader::new(read, FrameKind::Response),
            request_timeout,
        ));
        debug!(upstream = %address, "upstream connection opened");
        Ok(Arc::new(Self { address, outbound, state }))
    }

    pub(crate) fn address(&self) -> &Arc<str> {
        &self.address
    }

    /// False once the connection failed or was closed; it is then never used again.
    pub(crate) fn is_alive(&self) -> bool {
        !*self.state.closed.borrow()
    }

    /// Queues a request. An error means the connection is closed; the request was not sent.
    pub(crate) async fn send(&self, request: Outbound) -> Result<(), ProxyError> {
        self.outbound.send(request).await.map_err(|_| ProxyError::Unavailable {
            address: self.address.to_string(),
            reason: "upstream connection closed".to_owned(),
        })
    }
}

impl Drop for UpstreamConnection {
    /// The last handle gone (a client's dedicated connection, or a replaced pool slot): close.
    fn drop(&mut self) {
        self.state.close("no longer used");
    }
}

impl State {
    fn lock(&self) -> MutexGuard<'_, InFlight> {
        // A poisoned lock only means another task panicked mid-update of a queue of senders;
        // the queue is still a valid queue.
        self.in_flight.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// Closes the connection: no more requests, and every waiting client is told at once (its
    /// reply sender is dropped).
    fn close(&self, reason: &str) {
        let abandoned = {
            let mut in_flight = self.lock();
            if in_flight.closed {
                return;
            }
            in_flight.closed = true;
            std::mem::take(&mut in_flight.waiting)
        };
        let _ = self.closed.send(true);
        if abandoned.is_empty() {
            debug!(upstream = %self.address, reason, "upstream connection closed");
        } else {
            warn!(
                upstream = %self.address,
                reason,
                in_flight = abandoned.len(),
                "upstream connection lost; failing its in-flight requests"
            );
        }
    }
}

async fn write_loop(
    state: Arc<State>,
    mut requests: mpsc::Receiver<Outbound>,
    mut writer: BufWriter<OwnedWriteHalf>,
) {
    let mut closed = state.closed.subscribe();
    let result: Result<(), String> = async {
        loop {
            let first = tokio::select! {
                request = requests.recv() => request,
                _ = closed.wait_for(|closed| *closed) => None,
            };
            let Some(first) = first else { return Ok(()) };
            write_request(&state, &mut writer, first).await?;
            // Write whatever else is queued before one flush: pipelined requests share syscalls.
            while let Ok(next) = requests.try_recv() {
                write_request(&state, &mut writer, next).await?;
            }
            writer.flush().await.map_err(|error| format!("write failed: {error}"))?;
        }
    }
    .await;
    match result {
        Ok(()) => state.close("closed"),
        Err(reason) => state.close(&reason),
    }
    let _ = writer.shutdown().await;
}

async fn write_request(
    state: &State,
    writer: &mut BufWriter<OwnedWriteHalf>,
    mut request: Outbound,
) -> Result<(), String> {
    {
        let mut in_flight = state.lock();
        if in_flight.closed {
            return Err("closed".to_owned());
        }
        let id = in_flight.next_id;
        in_flight.next_id = if id == i32::MAX { 0 } else { id + 1 };
        set_correlation_id(&mut request.frame, 4, id);
        if let Some(reply) = request.reply {
            in_flight.waiting.push_back((id, reply, Instant::now()));
        }
    }
    let length = i32::try_from(request.frame.len()).map_err(|_| "request over 2 GiB".to_owned())?;
    let io = |error: std::io::Error| format!("write failed: {error}");
    writer.write_all(&length.to_be_bytes()).await.map_err(io)?;
    let written = writer.write_all(&request.frame).await.map_err(io);
    // The frame is in the socket (or the write buffer) now: the client may send more.
    drop(request.budget);
    written
}

async fn read_loop(
    state: Arc<State>,
    mut reader: FrameReader<OwnedReadHalf>,
    request_timeout: Option<Duration>,
) {
    let mut closed = state.closed.subscribe();
    let check_every = request_timeout
        .map(|limit| (limit / 4).clamp(Duration::from_millis(50), Duration::from_secs(1)))
        .unwrap_or(Duration::from_secs(3600));
    let mut watchdog = tokio::time::interval(check_every);
    let reason = loop {
        let frame = tokio::select! {
            // FrameReader::next is cancel-safe, so the other branches may win at any time.
            frame = reader.next() => frame,
            _ = closed.wait_for(|closed| *closed) => return,
            _ = watchdog.tick(), if request_timeout.is_some() => {
                let oldest = state.lock().waiting.front().map(|(_, _, sent)| sent.elapsed());
                match (oldest, request_timeout) {
                    (Some(waited), Some(limit)) if waited > limit => {
                        break format!("no answer within {limit:?}");
                    }
                    _ => continue,
                }
            }
        };
        let frame = match frame {
            Ok(Some(frame)) => frame,
            Ok(None) => break "closed by upstream".to_owned(),
            Err(error) => break error.to_string(),
        };
        let got = correlation_id(&frame, 0);
        let waiting = state.lock().waiting.pop_front();
        match waiting {
            Some((expected, reply, _)) if Some(expected) == got => {
                // The client may have gone meanwhile; its response is then simply dropped.
                let _ = reply.send(frame);
            }
            Some((expected, _, _)) => {
                break format!("response correlation id {got:?} where {expected} was next")
            }
            None => break format!("unsolicited response with correlation id {got:?}"),
        }
    };
    state.close(&reason);
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::io::AsyncReadExt;
    use tokio::net::TcpListener;

    /// A fake broker: answers every request, in order, with its correlation id followed by the
    /// request's own correlation id as seen (so the test can check the remapping), then closes
    /// after `answer` requests.
    async fn fake_broker(answer: usize) -> (Arc<str>, tokio::task::JoinHandle<Vec<i32>>) {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap_or_else(|e| panic!("{e}"));
        let address: Arc<str> =
            listener.local_addr().map(|a| a.to_string()).unwrap_or_default().into();
        let task = tokio::spawn(async move {
            let mut seen = Vec::new();
            let Ok((mut stream, _)) = listener.accept().await else { return seen };
            while seen.len() < answer {
                let Ok(length) = stream.read_i32().await else { break };
                let mut frame = vec![0u8; length as usize];
                if stream.read_exact(&mut frame).await.is_err() {
                    break;
                }
                let id = correlation_id(&frame, 4).unwrap_or(-1);
                seen.push(id);
                let mut response = Vec::new();
                response.extend_from_slice(&8i32.to_be_bytes());
                response.extend_from_slice(&id.to_be_bytes());
                response.extend_from_slice(&frame[4..8]);
                if stream.write_all(&response).await.is_err() {
                    break;
                }
            }
            seen
        });
        (address, task)
    }

    fn request(client_correlation_id: i32) -> BytesMut {
        let mut frame = BytesMut::from(&[0u8, 3, 0, 1][..]);
        frame.extend_from_slice(&client_correlation_id.to_be_bytes());
        frame
    }

    #[tokio::test]
    async fn requests_from_many_clients_get_unique_ids_and_their_own_answers() {
        let (address, broker) = fake_broker(40).await;
        let connection =
            UpstreamConnection::connect(address, Duration::from_secs(5), None, None).await;
        let Ok(connection) = connection else { panic!("no connection") };
        let mut replies = Vec::new();
        // Forty requests that all carry client correlation id 1, as if from forty clients.
        for _ in 0..40 {
            let (reply, answer) = oneshot::channel();
            let sent = connection
                .send(Outbound { frame: request(1), reply: Some(reply), budget: None })
                .await;
            assert!(sent.is_ok());
            replies.push(answer);
        }
        for (index, answer) in replies.into_iter().enumerate() {
            let frame = answer.await.unwrap_or_default();
            assert_eq!(correlation_id(&frame, 0), Some(index as i32), "upstream id");
        }
        let seen = broker.await.unwrap_or_default();
        assert_eq!(seen, (0..40).collect::<Vec<i32>>(), "each request had a unique id upstream");
    }

    #[tokio::test]
    async fn an_upstream_that_dies_fails_every_waiting_request_at_once() {
        let (address, _broker) = fake_broker(1).await;
        let connection =
            UpstreamConnection::connect(address, Duration::from_secs(5), None, None).await;
        let Ok(connection) = connection else { panic!("no connection") };
        let mut answers = Vec::new();
        for id in 0..3 {
            let (reply, answer) = oneshot::channel();
            let _ = connection
                .send(Outbound { frame: request(id), reply: Some(reply), budget: None })
                .await;
            answers.push(answer);
        }
        let results = tokio::time::timeout(Duration::from_secs(5), async {
            let mut results = Vec::new();
            for answer in answers {
                results.push(answer.await.is_ok());
            }
            results
        })
        .await;
        assert_eq!(results.ok(), Some(vec![true, false, false]));
        assert!(!connection.is_alive());
        let (reply, _answer) = oneshot::channel();
        assert!(connection
            .send(Outbound { frame: request(9), reply: Some(reply), budget: None })
            .await
            .is_err());
    }

    #[tokio::test]
    async fn an_unreachable_upstream_is_unavailable() {
        let free = std::net::TcpListener::bind("127.0.0.1:0").and_then(|l| l.local_addr());
        let address: Arc<str> = free.map(|a| a.to_string()).unwrap_or_default().into();
        let result = UpstreamConnection::connect(address, Duration::from_secs(2), None, None).await;
        assert!(matches!(result, Err(ProxyError::Unavailable { .. })));
    }
}
