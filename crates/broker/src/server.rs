//! The broker's listeners: bind them (or take them from a socket activator), serve them with
//! the shared network layer (`skiff-net`), and stop gracefully; or stop by itself when no
//! client has been connected for a while (scale to zero), so the next connection starts a new
//! broker through the activator (systemd's `LISTEN_FDS` protocol).

use std::future::Future;
use std::sync::Arc;

use anyhow::Context;
use skiff_net::tls::ReloadingAcceptor;
use skiff_net::{Listener, ListenerInfo, Server};
use tokio::net::TcpListener;
use tracing::{info, warn};

use crate::connection::Connection;
use crate::Broker;

/// How long a shutdown waits for requests in flight before the broker exits anyway. Waits that
/// are open-ended (JoinGroup, SyncGroup, a long-polling Fetch) end at once on shutdown, so only
/// a storage call that hangs can use it up.
const SHUTDOWN_GRACE: std::time::Duration = std::time::Duration::from_secs(30);

/// Binds every listener of the broker's config; listening sockets passed by a socket activator
/// (`LISTEN_FDS`) take the place of the configured listeners in order.
pub async fn bind(broker: &Broker) -> anyhow::Result<Vec<Listener>> {
    let mut inherited = inherited_listeners()?.into_iter();
    let tls = match &broker.config.tls {
        Some(files) if needs_tls(broker) => Some(Arc::new(
            ReloadingAcceptor::new(files.clone()).context("loading --tls-cert/--tls-key")?,
        )),
        _ => None,
    };
    let mut listeners = Vec::new();
    for config in &broker.config.listeners {
        let tcp = match inherited.next() {
            Some(tcp) => {
                info!(listener = %config.name, "serving the socket passed by the socket activator (LISTEN_FDS)");
                tcp
            }
            None => bind_address(config.bind).await?,
        };
        let info = ListenerInfo { name: config.name.clone(), protocol: config.protocol };
        listeners.push(Listener::new(info, tcp, tls.clone()).map_err(anyhow::Error::msg)?);
    }
    Ok(listeners)
}

fn needs_tls(broker: &Broker) -> bool {
    broker.config.listeners.iter().any(|listener| listener.protocol.uses_tls())
}

/// Binds any listener of the broker process (Kafka, Schema Registry) with SO_REUSEADDR.
pub async fn bind_address(address: std::net::SocketAddr) -> anyhow::Result<TcpListener> {
    skiff_net::listener::bind(address)
        .and_then(TcpListener::from_std)
        .with_context(|| format!("cannot listen on {address}"))
}

/// The listening sockets a socket activator passed (systemd's `LISTEN_FDS` protocol, checked
/// to belong to this process), in order; empty when started without any.
fn inherited_listeners() -> anyhow::Result<Vec<TcpListener>> {
    let mut inherited = listenfd::ListenFd::from_env();
    let mut listeners = Vec::new();
    for index in 0..inherited.len() {
        let Some(listener) = inherited
            .take_tcp_listener(index)
            .context("a socket passed in LISTEN_FDS is not a TCP listener")?
        else {
            continue;
        };
        listener.set_nonblocking(true).context("making the inherited socket non-blocking")?;
        listeners.push(TcpListener::from_std(listener).context("using the inherited socket")?);
    }
    Ok(listeners)
}

/// Serves clients on `listeners` until `shutdown` completes (or, with an idle exit, until no
/// client has been connected for that long), then stops accepting, lets in-flight requests
/// finish and returns.
pub async fn serve(
    broker: Broker,
    listeners: Vec<Listener>,
    shutdown: impl Future<Output = ()>,
) -> anyhow::Result<()> {
    let mut server = Server::new(broker.config.max_connections);
    let sweeper = tokio::spawn(crate::transactions::run_sweeper(
        broker.clone(),
        broker.config.transaction_check_interval,
        server.stopping(),
    ));
    let cleaner = tokio::spawn(crate::cleaner::run_cleaner(
        broker.clone(),
        broker.config.retention_check_interval,
        server.stopping(),
    ));
    let group_counter =
        tokio::spawn(crate::groups::run_group_counter(broker.clone(), server.stopping()));
    let tables = tokio::spawn(crate::tables::run(broker.clone(), server.stopping()));
    for listener in listeners {
        let broker = broker.clone();
        server.serve(listener, move |stream, connection, stopping| {
            let counted = broker.metrics().map(skiff_metrics::Metrics::connection_opened);
            let connection = Connection::new(broker.clone(), stream, connection, stopping);
            async move {
                connection.run().await;
                drop(counted);
            }
        });
    }
    let idle_exit = broker.config.idle_exit;
    let idle = async {
        match idle_exit {
            Some(period) => server.idle_for(period).await,
            None => std::future::pending().await,
        }
    };
    tokio::select! {
        _ = shutdown => {}
        _ = idle => {
            info!(idle_ms = idle_exit.map_or(0, |p| p.as_millis()), "no client connected: exiting");
        }
    }
    info!(open = server.open_connections(), "shutting down: finishing in-flight requests");
    server.stop();
    broker.begin_shutdown();
    let drained = async {
        server.finished().await;
        let _ = sweeper.await;
        let _ = cleaner.await;
        let _ = group_counter.await;
        let _ = tables.await;
    };
    if tokio::time::timeout(SHUTDOWN_GRACE, drained).await.is_err() {
        // Every acknowledged write is in storage already; what is cut short is unanswered.
        warn!(
            grace_s = SHUTDOWN_GRACE.as_secs(),
            "requests still running after the grace period: exiting anyway"
        );
    }
    info!("stopped");
    Ok(())
}
