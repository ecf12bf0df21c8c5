//! Listeners: the bootstrap port and one port per upstream broker, served by the shared
//! network layer (`skiff-net`: accept loops, connection limit, graceful shutdown).

use std::future::Future;
use std::sync::Arc;

use skiff_net::tls::ReloadingAcceptor;
use skiff_net::{Listener, ListenerInfo, SecurityProtocol, Server};
use tokio::net::TcpListener;
use tokio::sync::mpsc;
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
    /// The TLS acceptor every port shares, with `--tls-cert`.
    tls: Option<Arc<ReloadingAcceptor>>,
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
    // Loaded before anything is bound, so a bad certificate stops the start with its reason.
    let tls = match &config.tls {
        Some(files) => Some(Arc::new(
            ReloadingAcceptor::new(files.clone())
                .map_err(|error| ProxyError::Config(format!("--tls-cert/--tls-key: {error}")))?,
        )),
        None => None,
    };
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
        config.upstream_sasl.clone().map(Arc::new),
    );
    let context = Arc::new(Context { config, topology, pool, hook });
    Ok(Listeners { context, bootstrap, routes, tls })
}

/// Serves clients until `shutdown` completes, then stops accepting, lets in-flight requests
/// finish and returns. Upstream brokers learned later get their proxy ports served as they
/// come.
pub async fn serve(
    listeners: Listeners,
    shutdown: impl Future<Output = ()>,
) -> Result<(), ProxyError> {
    let Listeners { context, bootstrap, mut routes, tls } = listeners;
    let mut server = Server::new(context.config.max_connections);
    let start = |server: &mut Server, listener: std::net::TcpListener, target: Target| {
        let address = listener.local_addr().map(|a| a.to_string()).unwrap_or_default();
        let serving = TcpListener::from_std(listener)
            .map_err(|error| error.to_string())
            .and_then(|tcp| Listener::new(client_listener(tls.is_some()), tcp, tls.clone()));
        match serving {
            Ok(listener) => {
                info!(%address, ?target, "listening");
                let context = context.clone();
                server.serve(listener, move |stream, connection, stopping| {
                    ClientConnection::new(
                        context.clone(),
                        stream,
                        connection.peer,
                        target.clone(),
                        stopping,
                    )
                    .run()
                });
            }
            Err(error) => warn!(%address, %error, "cannot serve listener"),
        }
    };
    start(&mut server, bootstrap, Target::Bootstrap);
    tokio::pin!(shutdown);
    loop {
        tokio::select! {
            _ = &mut shutdown => break,
            Some(route) = routes.recv() => start(&mut server, route.listener, route.target),
        }
    }
    info!("shutting down: finishing in-flight requests");
    server.stop();
    server.finished().await;
    info!("stopped");
    Ok(())
}

/// What the proxy's ports speak to clients: TLS with a certificate, else plaintext. The
/// upstream side is independent of it.
fn client_listener(tls: bool) -> ListenerInfo {
    if tls {
        ListenerInfo { name: "SSL".to_owned(), protocol: SecurityProtocol::Ssl }
    } else {
        ListenerInfo { name: "PLAINTEXT".to_owned(), protocol: SecurityProtocol::Plaintext }
    }
}
