//! The listener: accept, bound, spawn, and stop gracefully; or stop by itself when no client
//! has been connected for a while (scale to zero), taking its listening socket from a socket
//! activator (systemd's `LISTEN_FDS` protocol) so the next connection starts a new broker.

use std::future::Future;
use std::sync::Arc;

use anyhow::Context;
use tokio::net::{TcpListener, TcpSocket};
use tokio::sync::{watch, Semaphore};
use tokio::task::JoinSet;
use tracing::{info, warn};

use crate::connection::Connection;
use crate::Broker;

/// Binds the broker's listen address with SO_REUSEADDR, so a restarted broker gets its port
/// back at once instead of failing while old sockets sit in TIME_WAIT.
pub async fn bind(broker: &Broker) -> anyhow::Result<TcpListener> {
    bind_address(broker.config.listen).await
}

/// Binds any listener of the broker process (Kafka, Schema Registry) with SO_REUSEADDR.
pub async fn bind_address(address: std::net::SocketAddr) -> anyhow::Result<TcpListener> {
    let socket = if address.is_ipv4() { TcpSocket::new_v4() } else { TcpSocket::new_v6() }
        .context("creating the listening socket")?;
    socket.set_reuseaddr(true).context("setting SO_REUSEADDR")?;
    socket.set_nodelay(true).context("setting TCP_NODELAY")?;
    socket.bind(address).with_context(|| format!("cannot listen on {address}"))?;
    socket.listen(1024).with_context(|| format!("cannot listen on {address}"))
}

/// The listening socket a socket activator passed (systemd's `LISTEN_FDS` protocol: the first
/// inherited descriptor, checked to belong to this process), or `None` when started without one.
pub fn inherited_listener() -> anyhow::Result<Option<TcpListener>> {
    let mut inherited = listenfd::ListenFd::from_env();
    if inherited.len() == 0 {
        return Ok(None);
    }
    let Some(listener) = inherited
        .take_tcp_listener(0)
        .context("the socket passed in LISTEN_FDS is not a TCP listener")?
    else {
        return Ok(None);
    };
    listener.set_nonblocking(true).context("making the inherited socket non-blocking")?;
    Ok(Some(TcpListener::from_std(listener).context("using the inherited socket")?))
}

/// Serves clients on `listener` until `shutdown` completes, then stops accepting, lets
/// in-flight requests finish and returns.
pub async fn serve(
    broker: Broker,
    listener: TcpListener,
    shutdown: impl Future<Output = ()>,
) -> anyhow::Result<()> {
    let limit = Arc::new(Semaphore::new(broker.config.max_connections));
    let (stop_tx, stop_rx) = watch::channel(false);
    let mut connections = JoinSet::new();
    let sweeper = tokio::spawn(crate::transactions::run_sweeper(
        broker.clone(),
        broker.config.transaction_check_interval,
        stop_rx.clone(),
    ));
    let cleaner = tokio::spawn(crate::cleaner::run_cleaner(
        broker.clone(),
        broker.config.retention_check_interval,
        stop_rx.clone(),
    ));
    tokio::pin!(shutdown);
    info!(address = %listener.local_addr()?, "listening");
    let idle_exit = broker.config.idle_exit;
    loop {
        // Re-armed on every accept and every closed connection: it fires only after a whole
        // idle period with no client connected.
        let idle_for = idle_exit.filter(|_| connections.is_empty());
        let idle = async {
            match idle_for {
                Some(period) => tokio::time::sleep(period).await,
                None => std::future::pending().await,
            }
        };
        let next = async {
            let permit = limit.clone().acquire_owned().await;
            (permit, listener.accept().await)
        };
        let (permit, accepted) = tokio::select! {
            _ = &mut shutdown => break,
            _ = idle => {
                info!(idle_ms = idle_exit.map_or(0, |p| p.as_millis()), "no client connected: exiting");
                break;
            }
            Some(_) = connections.join_next(), if !connections.is_empty() => continue,
            next = next => next,
        };
        let permit = permit.context("connection limit closed")?;
        let (stream, peer) = match accepted {
            Ok(accepted) => accepted,
            Err(error) => {
                // Running out of file descriptors or similar: log, pause briefly, carry on.
                warn!(%error, "accept failed");
                tokio::time::sleep(std::time::Duration::from_millis(50)).await;
                continue;
            }
        };
        let _ = stream.set_nodelay(true);
        let counted = broker.metrics().map(skiff_metrics::Metrics::connection_opened);
        let connection = Connection::new(broker.clone(), stream, peer, stop_rx.clone());
        connections.spawn(async move {
            connection.run().await;
            drop((permit, counted));
        });
    }
    info!(open = connections.len(), "shutting down: finishing in-flight requests");
    let _ = stop_tx.send(true);
    broker.begin_shutdown();
    while connections.join_next().await.is_some() {}
    let _ = sweeper.await;
    let _ = cleaner.await;
    info!("stopped");
    Ok(())
}
