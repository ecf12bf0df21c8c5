//! Which proxy address stands for which upstream broker.
//!
//! Clients must reach the broker that leads a partition, so the proxy gives every upstream
//! broker address its own proxy port: the n-th upstream address known (the `--upstream` list
//! first, in order, then brokers discovered in Metadata and coordinator answers) is served on
//! listen port + 1 + n and advertised as advertised port + 1 + n. The listen port itself is the
//! bootstrap port, which forwards to any upstream that is up. Routes are keyed by the address the
//! upstream advertises, not by node id: Skiff brokers may all share one node id, and a real Kafka
//! broker's node id and address go together anyway.
//!
//! A route's listener is bound *before* the rewritten response that names it reaches the client,
//! so the client's connection is accepted (into the backlog) even if the accept loop starts a
//! moment later.

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};

use tokio::sync::mpsc;
use tracing::info;

use crate::error::ProxyError;

/// What a listener forwards to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Target {
    /// The bootstrap port: any upstream in the `--upstream` list that answers.
    Bootstrap,
    /// One upstream broker, by its advertised HOST:PORT.
    Broker(Arc<str>),
}

/// A listener the server must start serving (bound already; a std listener, so binding needs
/// no runtime and works from any thread).
pub(crate) struct NewListener {
    pub(crate) listener: std::net::TcpListener,
    pub(crate) target: Target,
}

/// The mapping from upstream broker addresses to proxy listeners.
pub(crate) struct Topology {
    listen: SocketAddr,
    advertised_host: String,
    advertised_port: u16,
    max_routes: usize,
    routes: Mutex<Vec<Arc<str>>>,
    listeners: mpsc::UnboundedSender<NewListener>,
}

impl Topology {
    pub(crate) fn new(
        listen: SocketAddr,
        advertised_host: String,
        advertised_port: u16,
        max_routes: usize,
        listeners: mpsc::UnboundedSender<NewListener>,
    ) -> Self {
        Self {
            listen,
            advertised_host,
            advertised_port,
            max_routes,
            routes: Mutex::new(Vec::new()),
            listeners,
        }
    }

    /// Binds the bootstrap listener.
    pub(crate) fn bind_bootstrap(&self) -> Result<std::net::TcpListener, ProxyError> {
        bind(self.listen)
    }

    /// The advertised (host, port) for the upstream broker at `host:port`, binding its proxy
    /// listener the first time the broker is seen.
    pub(crate) fn advertise(&self, host: &str, port: i32) -> Result<(String, i32), ProxyError> {
        let address = if host.contains(':') && !host.starts_with('[') {
            format!("[{host}]:{port}") // a bare IPv6 address
        } else {
            format!("{host}:{port}")
        };
        let index = self.route_index(&address)?;
        let offset = 1 + index as i32;
        Ok((self.advertised_host.clone(), i32::from(self.advertised_port) + offset))
    }

    /// The route index of `address`, creating (and binding) the route if it is new.
    pub(crate) fn route_index(&self, address: &str) -> Result<usize, ProxyError> {
        let mut routes = self.routes.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        if let Some(index) = routes.iter().position(|known| &**known == address) {
            return Ok(index);
        }
        let index = routes.len();
        if index >= self.max_routes {
            return Err(ProxyError::Config(format!(
                "upstream broker {address} would be route {} but --max-upstream-brokers is {}",
                index + 1,
                self.max_routes
            )));
        }
        let offset = 1 + index as u32;
        // Listen port 0 (tests) gives every route an ephemeral port too.
        let listen_port =
            if self.listen.port() == 0 { 0 } else { u32::from(self.listen.port()) + offset };
        let advertised_port = u32::from(self.advertised_port) + offset;
        let (Ok(listen_port), Ok(_)) = (u16::try_from(listen_port), u16::try_from(advertised_port))
        else {
            return Err(ProxyError::Config(format!(
                "no proxy port left for upstream broker {address}"
            )));
        };
        let listener = bind(SocketAddr::new(self.listen.ip(), listen_port))?;
        let target: Arc<str> = address.into();
        info!(
            upstream = %target,
            listen = listen_port,
            advertised = %format!("{}:{advertised_port}", self.advertised_host),
            "serving upstream broker"
        );
        routes.push(target.clone());
        let _ = self.listeners.send(NewListener { listener, target: Target::Broker(target) });
        Ok(index)
    }
}

/// Binds a listener. Rust's std sets SO_REUSEADDR on Unix, so a restarted proxy gets its ports
/// back at once instead of failing while old sockets sit in TIME_WAIT.
fn bind(address: SocketAddr) -> Result<std::net::TcpListener, ProxyError> {
    let failed = |source| ProxyError::Bind { address: address.to_string(), source };
    let listener = std::net::TcpListener::bind(address).map_err(failed)?;
    listener.set_nonblocking(true).map_err(failed)?;
    Ok(listener)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_upstream_address_gets_its_own_port() {
        let (sender, mut receiver) = mpsc::unbounded_channel();
        let listen = SocketAddr::from(([127, 0, 0, 1], 0));
        let topology = Topology::new(listen, "proxy.example".to_owned(), 9000, 2, sender);
        let first = topology.advertise("10.0.0.1", 9092).map_err(|e| e.to_string());
        assert_eq!(first, Ok(("proxy.example".to_owned(), 9001)));
        let again = topology.advertise("10.0.0.1", 9092).map_err(|e| e.to_string());
        assert_eq!(again, first);
        let second = topology.advertise("::1", 9092).map_err(|e| e.to_string());
        assert_eq!(second, Ok(("proxy.example".to_owned(), 9002)));
        assert!(matches!(topology.advertise("10.0.0.3", 9092), Err(ProxyError::Config(_))));
        let targets: Vec<Target> =
            std::iter::from_fn(|| receiver.try_recv().ok()).map(|new| new.target).collect();
        assert_eq!(
            targets,
            vec![Target::Broker("10.0.0.1:9092".into()), Target::Broker("[::1]:9092".into())]
        );
    }
}
