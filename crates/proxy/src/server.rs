//! Listeners: the bootstrap port, one port per upstream broker, accept loops and shutdown.

use std::future::Future;
use std::sync::Arc;

use tokio::net::TcpListener;
use tokio::sync::{mpsc, watch, Semaphore};
use tokio::task::JoinSet;
use tracing::{info, warn};

use crate::client::ClientConnection;
use crate::error::ProxyError;
use crate::pool::UpstreamPool;
use crate::topology::{NewListener, Target, Topology};
use crate::{Context, ProduceHook, ProxyConfig};

/// Bound listeners, ready to [`serve`].
pub struct Listeners {
    context: Arc<Context>,
    bootstrap: std::net::TcpListener,
    routes: mpsc::UnboundedReceiver<NewListener>,
}

impl Listeners {
    /// The bootstrap address actually bound (useful with port 0).
    pub fn local_addr(&self) -> Result<std::net::SocketAddr, ProxyError> {
        self.bootstrap.local_addr().map_err(|source| ProxyError::Bind {
            address: self.context.config.listen.to_string(),
            purpose: "the bootstrap port".to_owned(),
            hint: "change --listen",
            source,
        })
    }
}

/// Binds the bootstrap port and the ports of the configured upstream brokers (in `--upstream`
/// order, so with `--broker-ports` or `--broker-port-base` their proxy ports are the same on
/// every start). Upstream brokers are not contacted: the proxy starts while they are down.
pub fn bind(config: ProxyConfig, hook: Arc<dyn ProduceHook>) -> Result<Listeners, ProxyError> {
    if config.upstreams.is_empty() {
        return Err(ProxyError::Config("at least one --upstream is needed".to_owned()));
    }
    config.broker_ports.validate()?;
    let (routes_tx, routes) = mpsc::unbounded_channel();
    let topology = Topology::new(
        config.listen,
        config.advertised_host.clone(),
        config.broker_ports.clone(),
        config.max_upstream_brokers.max(1),
        routes_tx,
    );
    let bootstrap = topology.bind_bootstrap()?;
    for upstream in &config.upstreams {
        topology.route(upstream)?;
    }
    let pool = UpstreamPool::new(
        config.upstreams.iter().map(|address| Arc::from(address.as_str())).collect(),
        config.shared_connections,
        config.connect_timeout,
        config.request_timeout,
    );
    let context = Arc::new(Context { config, topology, pool, hook });
    Ok(Listeners { context, bootstrap, routes })
}

/// Serves clients until `shutdown` completes, then stops accepting, lets in-flight requests
/// finish and returns.
pub async fn serve(
    listeners: Listeners,
    shutdown: impl Future<Output = ()>,
) -> Result<(), ProxyError> {
    let Listeners { context, bootstrap, mut routes } = listeners;
    let limit = Arc::new(Semaphore::new(context.config.max_connections.max(1)));
    let (stop_tx, stop_rx) = watch::channel(false);
    let mut accept_loops = JoinSet::new();
    let start =
        |accept_loops: &mut JoinSet<()>, listener: std::net::TcpListener, target: Target| {
            let address = listener.local_addr().map(|a| a.to_string()).unwrap_or_default();
            match TcpListener::from_std(listener) {
                Ok(listener) => {
                    info!(%address, ?target, "listening");
                    accept_loops.spawn(accept_loop(
                        context.clone(),
                        listener,
                        target,
                        limit.clone(),
                        stop_rx.clone(),
                    ));
                }
                Err(error) => warn!(%address, %error, "cannot serve listener"),
            }
        };
    start(&mut accept_loops, bootstrap, Target::Bootstrap);
    tokio::pin!(shutdown);
    loop {
        tokio::select! {
            _ = &mut shutdown => break,
            Some(route) = routes.recv() => start(&mut accept_loops, route.listener, route.target),
        }
    }
    info!("shutting down: finishing in-flight requests");
    let _ = stop_tx.send(true);
    while accept_loops.join_next().await.is_some() {}
    info!("stopped");
    Ok(())
}

async fn accept_loop(
    context: Arc<Context>,
    listener: TcpListener,
    target: Target,
    limit: Arc<Semaphore>,
    mut stop: watch::Receiver<bool>,
) {
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
            accepted = listener.accept() => accepted,
        };
        let (stream, peer) = match accepted {
            Ok(accepted) => accepted,
            Err(error) => {
                // Out of file descriptors or similar: log, pause briefly, carry on.
                warn!(%error, "accept failed");
                tokio::time::sleep(std::time::Duration::from_millis(50)).await;
                continue;
            }
        };
        let _ = stream.set_nodelay(true);
        let connection =
            ClientConnection::new(context.clone(), stream, peer, target.clone(), stop.clone());
        connections.spawn(async move {
            connection.run().await;
            drop(permit);
        });
        while connections.try_join_next().is_some() {}
    }
    while connections.join_next().await.is_some() {}
}
