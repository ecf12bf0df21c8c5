//! Accept loops: any number of listeners, one connection limit, a graceful stop, and idle
//! detection for scale to zero.
//!
//! Each listener gets its own accept loop; a connection is handed to the caller's handler in its
//! own task once established (the TLS handshake runs in that task, so a slow or silent client
//! never holds up the accept loop). Stopping closes the listeners, tells every connection to
//! finish (a `watch` flag its handler selects on) and waits for them.

use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use rustls_pki_types::CertificateDer;
use tokio::net::TcpStream;
use tokio::sync::{watch, Semaphore};
use tokio::task::JoinSet;
use tracing::{debug, info, warn};

use crate::listener::{Listener, ListenerInfo};
use crate::stream::Stream;
use crate::tls::ReloadingAcceptor;

/// How long a client may take to complete the TLS handshake.
const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);

/// What a connection knows about itself, for its handler and the requests it serves.
#[derive(Debug, Clone)]
pub struct ConnectionInfo {
    pub peer: SocketAddr,
    pub listener: Arc<ListenerInfo>,
    /// The client's certificate (leaf) on a mutual-TLS listener.
    pub client_certificate: Option<CertificateDer<'static>>,
}

/// Accept loops sharing one connection limit and one stop signal.
#[derive(Debug)]
pub struct Server {
    limit: Arc<Semaphore>,
    stop: watch::Sender<bool>,
    /// Connections open right now (accepted and not yet finished).
    open: Arc<watch::Sender<usize>>,
    loops: JoinSet<()>,
}

/// Decrements the open-connection count when a connection's task ends, however it ends.
struct OpenGuard(Arc<watch::Sender<usize>>);

impl Drop for OpenGuard {
    fn drop(&mut self) {
        self.0.send_modify(|open| *open = open.saturating_sub(1));
    }
}

impl Server {
    /// A server that holds at most `max_connections` client connections at once; further
    /// clients wait in the listen backlog.
    pub fn new(max_connections: usize) -> Self {
        Self {
            limit: Arc::new(Semaphore::new(max_connections.max(1))),
            stop: watch::channel(false).0,
            open: Arc::new(watch::channel(0).0),
            loops: JoinSet::new(),
        }
    }

    /// A receiver that turns `true` when the server stops: background tasks select on it.
    pub fn stopping(&self) -> watch::Receiver<bool> {
        self.stop.subscribe()
    }

    /// Connections open right now.
    pub fn open_connections(&self) -> usize {
        *self.open.borrow()
    }

    /// Accepts connections on `listener` until the server stops, running
    /// `handler(stream, info, stopping)` for each in its own task.
    pub fn serve<H, F>(&mut self, listener: Listener, handler: H)
    where
        H: Fn(Stream, ConnectionInfo, watch::Receiver<bool>) -> F + Send + Sync + 'static,
        F: Future<Output = ()> + Send + 'static,
    {
        let address = listener.local_addr().map(|a| a.to_string()).unwrap_or_default();
        info!(%address, listener = %listener.info.name, protocol = %listener.info.protocol, "listening");
        self.loops.spawn(accept_loop(
            listener,
            Arc::new(handler),
            self.limit.clone(),
            self.stop.subscribe(),
            self.open.clone(),
        ));
    }

    /// Completes once no connection has been open for a whole `period`: every accepted and
    /// every closed connection starts the period again.
    pub async fn idle_for(&self, period: Duration) {
        let mut open = self.open.subscribe();
        loop {
            if open.wait_for(|open| *open == 0).await.is_err() {
                return std::future::pending().await;
            }
            tokio::select! {
                _ = tokio::time::sleep(period) => return,
                _ = open.changed() => {}
            }
        }
    }

    /// Stops accepting and tells every connection to finish what it is doing.
    pub fn stop(&self) {
        let _ = self.stop.send(true);
    }

    /// Waits until every accept loop and every connection has finished; call [`Server::stop`]
    /// first.
    pub async fn finished(mut self) {
        while self.loops.join_next().await.is_some() {}
    }
}

async fn accept_loop<H, F>(
    listener: Listener,
    handler: Arc<H>,
    limit: Arc<Semaphore>,
    mut stop: watch::Receiver<bool>,
    open: Arc<watch::Sender<usize>>,
) where
    H: Fn(Stream, ConnectionInfo, watch::Receiver<bool>) -> F + Send + Sync + 'static,
    F: Future<Output = ()> + Send + 'static,
{
    let mut connections = JoinSet::new();
    loop {
        let permit = tokio::select! {
            _ = stop.wait_for(|stop| *stop) => break,
            permit = limit.clone().acquire_owned() => match permit {
                Ok(permit) => permit,
                Err(_) => break,
            },
        };
        let accepted = tokio::select! {
            _ = stop.wait_for(|stop| *stop) => break,
            accepted = listener.tcp.accept() => accepted,
        };
        let (tcp, peer) = match accepted {
            Ok(accepted) => accepted,
            Err(error) => {
                // Out of file descriptors or similar: log, pause briefly, carry on.
                warn!(%error, "accept failed");
                tokio::time::sleep(Duration::from_millis(50)).await;
                continue;
            }
        };
        let _ = tcp.set_nodelay(true);
        open.send_modify(|open| *open += 1);
        let guard = OpenGuard(open.clone());
        let handler = handler.clone();
        let info = listener.info.clone();
        let tls = listener.tls.clone();
        let stopping = stop.clone();
        connections.spawn(async move {
            let _guard = guard;
            let _permit = permit;
            if let Some((stream, connection)) = establish(tcp, peer, info, tls.as_deref()).await {
                handler(stream, connection, stopping).await;
            }
        });
        while connections.try_join_next().is_some() {}
    }
    drop(listener);
    while connections.join_next().await.is_some() {}
}

/// Completes the TLS handshake where the listener speaks TLS. A client that fails it (a
/// plaintext client on a TLS port, an untrusted client certificate) is logged and dropped.
async fn establish(
    tcp: TcpStream,
    peer: SocketAddr,
    listener: Arc<ListenerInfo>,
    tls: Option<&ReloadingAcceptor>,
) -> Option<(Stream, ConnectionInfo)> {
    let Some(tls) = tls else {
        let info = ConnectionInfo { peer, listener, client_certificate: None };
        return Some((Stream::Plain(tcp), info));
    };
    let handshake = tls.acceptor().accept(tcp);
    let stream = match tokio::time::timeout(HANDSHAKE_TIMEOUT, handshake).await {
        Ok(Ok(stream)) => stream,
        Ok(Err(error)) => {
            warn!(%peer, listener = %listener.name, %error, "TLS handshake failed: closing connection");
            return None;
        }
        Err(_) => {
            warn!(%peer, listener = %listener.name, "no TLS handshake within {HANDSHAKE_TIMEOUT:?}: closing connection");
            return None;
        }
    };
    let client_certificate = stream
        .get_ref()
        .1
        .peer_certificates()
        .and_then(|chain| chain.first())
        .map(|cert| cert.clone().into_owned());
    debug!(%peer, listener = %listener.name, mutual = client_certificate.is_some(), "TLS established");
    let info = ConnectionInfo { peer, listener, client_certificate };
    Some((Stream::Tls(Box::new(stream)), info))
}
