//! The listener: accept, bound, spawn, and stop gracefully.

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
    loop {
        let permit = tokio::select! {
            _ = &mut shutdown => break,
            permit = limit.clone().acquire_owned() => permit.context("connection limit closed")?,
        };
        let accepted = tokio::select! {
            _ = &mut shutdown => break,
            accepted = listener.accept() => accepted,
        };
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
        let connection = Connection::new(broker.clone(), stream, peer, stop_rx.clone());
        connections.spawn(async move {
            connection.run().await;
            drop(permit);
        });
        // Reap finished connection tasks so the set does not grow without bound.
        while connections.try_join_next().is_some() {}
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
