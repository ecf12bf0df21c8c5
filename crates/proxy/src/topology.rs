//! Which proxy address stands for which upstream broker.
//!
//! Clients must reach the broker that leads a partition, so the proxy gives every upstream
//! broker address its own proxy listener ("route"): the n-th upstream address known (the
//! `--upstream` list first, in order, then brokers discovered in Metadata and coordinator
//! answers) is route n. Its port comes from [`BrokerPorts`] (any free port by default) and it is
//! advertised as the advertised host with the port actually bound. The listen port itself is the
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
use crate::ports::BrokerPorts;

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

/// One upstream broker and the proxy port that stands for it.
struct Route {
    upstream: Arc<str>,
    port: u16,
}

/// The mapping from upstream broker addresses to proxy listeners.
pub(crate) struct Topology {
    listen: SocketAddr,
    advertised_host: String,
    ports: BrokerPorts,
    max_routes: usize,
    routes: Mutex<Vec<Route>>,
    listeners: mpsc::UnboundedSender<NewListener>,
}

impl Topology {
    pub(crate) fn new(
        listen: SocketAddr,
        advertised_host: String,
        ports: BrokerPorts,
        max_routes: usize,
        listeners: mpsc::UnboundedSender<NewListener>,
    ) -> Self {
        Self {
            listen,
            advertised_host,
            ports,
            max_routes,
            routes: Mutex::new(Vec::new()),
            listeners,
        }
    }

    /// Binds the bootstrap listener.
    pub(crate) fn bind_bootstrap(&self) -> Result<std::net::TcpListener, ProxyError> {
        skiff_net::listener::bind(self.listen).map_err(|source| ProxyError::Bind {
            address: self.listen.to_string(),
            purpose: "the bootstrap port".to_owned(),
            hint: "change --listen",
            source,
        })
    }

    /// The advertised (host, port) for the upstream broker at `host:port`, binding its proxy
    /// listener the first time the broker is seen.
    pub(crate) fn advertise(&self, host: &str, port: i32) -> Result<(String, i32), ProxyError> {
        let address = if host.contains(':') && !host.starts_with('[') {
            format!("[{host}]:{port}") // a bare IPv6 address
        } else {
            format!("{host}:{port}")
        };
        let proxy_port = self.route(&address)?;
        Ok((self.advertised_host.clone(), i32::from(proxy_port)))
    }

    /// The proxy port standing for `address`, creating (and binding) the route if it is new.
    pub(crate) fn route(&self, address: &str) -> Result<u16, ProxyError> {
        let mut routes = self.routes.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        if let Some(route) = routes.iter().find(|route| &*route.upstream == address) {
            return Ok(route.port);
        }
        let number = routes.len();
        if number >= self.max_routes {
            return Err(ProxyError::Config(format!(
                "upstream broker {address} would be route {} but --max-upstream-brokers is {}",
                number + 1,
                self.max_routes
            )));
        }
        let choice = self.ports.choose(number)?;
        let wanted = SocketAddr::new(self.listen.ip(), choice.port());
        let failed = |source| ProxyError::Bind {
            address: wanted.to_string(),
            purpose: format!("upstream broker {address}"),
            hint: choice.hint(),
            source,
        };
        let listener = skiff_net::listener::bind(wanted).map_err(failed)?;
        let bound = listener.local_addr().map_err(failed)?;
        let upstream: Arc<str> = address.into();
        info!(
            upstream = %upstream,
            listen = %bound,
            advertised = %format!("{}:{}", self.advertised_host, bound.port()),
            "serving upstream broker"
        );
        routes.push(Route { upstream: upstream.clone(), port: bound.port() });
        let _ = self.listeners.send(NewListener { listener, target: Target::Broker(upstream) });
        Ok(bound.port())
    }

    /// The proxy port of a known route, without creating one.
    #[cfg(test)]
    pub(crate) fn port_of(&self, address: &str) -> Option<u16> {
        let routes = self.routes.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        routes.iter().find(|route| &*route.upstream == address).map(|route| route.port)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const LOCALHOST: std::net::Ipv4Addr = std::net::Ipv4Addr::LOCALHOST;

    fn topology(
        ports: BrokerPorts,
        max_routes: usize,
    ) -> (Topology, mpsc::UnboundedReceiver<NewListener>) {
        let (sender, receiver) = mpsc::unbounded_channel();
        let listen = SocketAddr::from((LOCALHOST, 0));
        (Topology::new(listen, "proxy.example".to_owned(), ports, max_routes, sender), receiver)
    }

    /// The listeners the server was asked to start: (target, bound port).
    fn started(receiver: &mut mpsc::UnboundedReceiver<NewListener>) -> Vec<(Target, u16)> {
        std::iter::from_fn(|| receiver.try_recv().ok())
            .map(|new| {
                let port = new.listener.local_addr().map(|address| address.port());
                (new.target, port.unwrap_or_default())
            })
            .collect()
    }

    /// A port nobody listens on right now.
    fn free_port() -> u16 {
        let listener = std::net::TcpListener::bind((LOCALHOST, 0)).expect("a free port");
        listener.local_addr().expect("bound").port()
    }

    #[test]
    fn each_upstream_address_gets_its_own_port_advertised_as_bound() {
        let (topology, mut receiver) = topology(BrokerPorts::default(), 2);
        let first = topology.advertise("10.0.0.1", 9092).map_err(|e| e.to_string());
        let again = topology.advertise("10.0.0.1", 9092).map_err(|e| e.to_string());
        assert_eq!(again, first);
        let second = topology.advertise("::1", 9092).map_err(|e| e.to_string());
        assert!(matches!(topology.advertise("10.0.0.3", 9092), Err(ProxyError::Config(_))));
        let listeners = started(&mut receiver);
        let [(first_target, first_port), (second_target, second_port)] = &listeners[..] else {
            panic!("expected two listeners, got {}", listeners.len());
        };
        assert_eq!(*first_target, Target::Broker("10.0.0.1:9092".into()));
        assert_eq!(*second_target, Target::Broker("[::1]:9092".into()));
        assert!(*first_port != 0 && first_port != second_port, "{listeners:?}");
        assert_eq!(first, Ok(("proxy.example".to_owned(), i32::from(*first_port))));
        assert_eq!(second, Ok(("proxy.example".to_owned(), i32::from(*second_port))));
    }

    #[test]
    fn listed_ports_are_used_in_route_order_and_the_rest_take_any_port() {
        let (one, two) = (free_port(), free_port());
        let ports = BrokerPorts { list: vec![one, 0, two], base: 0 };
        let (topology, mut receiver) = topology(ports, 8);
        let routes: Vec<_> = ["a:1", "b:1", "c:1", "d:1"]
            .iter()
            .map(|address| topology.route(address).map_err(|e| e.to_string()))
            .collect();
        assert_eq!(routes[0], Ok(one));
        assert_eq!(routes[2], Ok(two));
        let bound: Vec<u16> = started(&mut receiver).into_iter().map(|(_, port)| port).collect();
        assert_eq!(bound.len(), 4);
        assert_eq!(routes, bound.iter().map(|port| Ok(*port)).collect::<Vec<_>>());
        assert!(bound[1] != 0 && bound[3] != 0, "{bound:?}");
    }

    #[test]
    fn a_taken_listed_port_names_the_flag_and_the_route_is_retried_later() {
        let holder = std::net::TcpListener::bind((LOCALHOST, 0)).expect("a free port");
        let taken = holder.local_addr().expect("bound").port();
        let (topology, mut receiver) = topology(BrokerPorts { list: vec![taken], base: 0 }, 4);
        let error = topology
            .route("kafka-1:9092")
            .map_err(|e| format!("{e}: {:?}", std::error::Error::source(&e)));
        let Err(message) = error else { panic!("bound a taken port") };
        assert!(message.contains(&format!("127.0.0.1:{taken}")), "{message}");
        assert!(message.contains("upstream broker kafka-1:9092"), "{message}");
        assert!(message.contains("--broker-ports"), "{message}");
        assert!(message.contains("AddrInUse"), "{message}");
        assert!(started(&mut receiver).is_empty());
        drop(holder);
        assert_eq!(topology.route("kafka-1:9092").ok(), Some(taken));
        assert_eq!(started(&mut receiver).len(), 1);
    }

    #[test]
    fn a_taken_base_port_names_the_base_flag() {
        let holder = std::net::TcpListener::bind((LOCALHOST, 0)).expect("a free port");
        let taken = holder.local_addr().expect("bound").port();
        let (topology, _receiver) = topology(BrokerPorts { list: vec![], base: taken }, 4);
        let error = topology.route("kafka-1:9092").map_err(|e| e.to_string());
        assert!(
            matches!(&error, Err(message) if message.contains("--broker-port-base")),
            "{error:?}"
        );
    }

    #[test]
    fn a_taken_bootstrap_port_names_listen() {
        let holder = std::net::TcpListener::bind((LOCALHOST, 0)).expect("a free port");
        let (sender, _receiver) = mpsc::unbounded_channel();
        let listen = holder.local_addr().expect("bound");
        let topology = Topology::new(listen, "p".to_owned(), BrokerPorts::default(), 1, sender);
        let error = topology.bind_bootstrap().map(|_| ()).map_err(|e| e.to_string());
        assert!(matches!(&error, Err(message) if message.contains("--listen")), "{error:?}");
    }
}
