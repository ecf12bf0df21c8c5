//! Listeners as Kafka spells them: `--listeners PLAINTEXT://0.0.0.0:9092,SSL://:9093`, each
//! named, each with a security protocol (the name itself when it is one, or from a protocol
//! map such as `CLIENT:SSL,INTERNAL:PLAINTEXT`).
//!
//! The name matters beyond the socket: a client is told the advertised addresses of the
//! listener it came in on, so clients inside and outside a network each get addresses they can
//! reach.

use std::collections::HashMap;
use std::fmt;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::str::FromStr;
use std::sync::Arc;

use tokio::net::TcpListener;

use crate::tls::ReloadingAcceptor;

/// The security protocols a listener may speak.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum SecurityProtocol {
    /// Kafka frames over plain TCP.
    Plaintext,
    /// Kafka frames over TLS.
    Ssl,
    /// Kafka frames over plain TCP, each connection authenticated with SASL first.
    SaslPlaintext,
    /// Kafka frames over TLS, each connection authenticated with SASL first.
    SaslSsl,
}

impl SecurityProtocol {
    /// Kafka's name: `PLAINTEXT`, `SSL`, `SASL_PLAINTEXT` or `SASL_SSL`.
    pub fn as_str(self) -> &'static str {
        match self {
            SecurityProtocol::Plaintext => "PLAINTEXT",
            SecurityProtocol::Ssl => "SSL",
            SecurityProtocol::SaslPlaintext => "SASL_PLAINTEXT",
            SecurityProtocol::SaslSsl => "SASL_SSL",
        }
    }

    /// Whether connections are TLS (and the listener needs a certificate).
    pub fn uses_tls(self) -> bool {
        matches!(self, SecurityProtocol::Ssl | SecurityProtocol::SaslSsl)
    }

    /// Whether a connection must authenticate with SASL before anything else.
    pub fn uses_sasl(self) -> bool {
        matches!(self, SecurityProtocol::SaslPlaintext | SecurityProtocol::SaslSsl)
    }
}

impl fmt::Display for SecurityProtocol {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for SecurityProtocol {
    type Err = String;

    fn from_str(name: &str) -> Result<Self, Self::Err> {
        match name.to_ascii_uppercase().as_str() {
            "PLAINTEXT" => Ok(SecurityProtocol::Plaintext),
            "SSL" => Ok(SecurityProtocol::Ssl),
            "SASL_PLAINTEXT" => Ok(SecurityProtocol::SaslPlaintext),
            "SASL_SSL" => Ok(SecurityProtocol::SaslSsl),
            _ => Err(format!(
                "unknown security protocol {name}: expected PLAINTEXT, SSL, SASL_PLAINTEXT or \
                 SASL_SSL (or name the listener in the listener security protocol map)"
            )),
        }
    }
}

/// One entry of a listener list: `NAME://host:port`. An empty host means every interface
/// (when binding) and is refused where an address must be advertised.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ListenerSpec {
    pub name: String,
    pub host: String,
    pub port: u16,
}

impl fmt::Display for ListenerSpec {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.host.contains(':') {
            write!(f, "{}://[{}]:{}", self.name, self.host, self.port)
        } else {
            write!(f, "{}://{}:{}", self.name, self.host, self.port)
        }
    }
}

impl ListenerSpec {
    /// Parses a comma-separated listener list. Names are upper-cased (Kafka's are case
    /// insensitive) and must be unique.
    pub fn parse_list(list: &str) -> Result<Vec<ListenerSpec>, String> {
        let mut specs: Vec<ListenerSpec> = Vec::new();
        for entry in list.split(',').map(str::trim).filter(|entry| !entry.is_empty()) {
            let spec = ListenerSpec::parse(entry)?;
            if specs.iter().any(|known| known.name == spec.name) {
                return Err(format!("listener {} is named twice", spec.name));
            }
            specs.push(spec);
        }
        if specs.is_empty() {
            return Err("no listener given".to_owned());
        }
        Ok(specs)
    }

    /// Parses one `NAME://host:port`.
    pub fn parse(entry: &str) -> Result<ListenerSpec, String> {
        let invalid = |why: &str| format!("listener {entry:?}: {why} (expected NAME://host:port)");
        let (name, address) = entry.split_once("://").ok_or_else(|| invalid("no NAME://"))?;
        let name = name.to_ascii_uppercase();
        if name.is_empty() || !name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_') {
            return Err(invalid("a name is letters, digits and _"));
        }
        let (host, port) = address.rsplit_once(':').ok_or_else(|| invalid("no port"))?;
        let port = port.parse::<u16>().map_err(|_| invalid("the port is not a number"))?;
        let host = host.strip_prefix('[').and_then(|h| h.strip_suffix(']')).unwrap_or(host);
        Ok(ListenerSpec { name, host: host.to_owned(), port })
    }

    /// The address to bind: the host as an IP (`localhost` as the loopback address, empty as
    /// every interface). Host names are refused: a listener binds an interface's address.
    pub fn bind_address(&self) -> Result<SocketAddr, String> {
        let ip = match self.host.as_str() {
            "" => IpAddr::V4(Ipv4Addr::UNSPECIFIED),
            "localhost" => IpAddr::V4(Ipv4Addr::LOCALHOST),
            host => host.parse::<IpAddr>().map_err(|_| {
                format!("listener {self}: bind to an IP address (or leave the host empty)")
            })?,
        };
        Ok(SocketAddr::new(ip, self.port))
    }
}

/// Parses Kafka's `listener.security.protocol.map`: `NAME:PROTOCOL,...`.
pub fn parse_protocol_map(map: &str) -> Result<HashMap<String, SecurityProtocol>, String> {
    map.split(',')
        .map(str::trim)
        .filter(|entry| !entry.is_empty())
        .map(|entry| {
            let (name, protocol) = entry
                .split_once(':')
                .ok_or_else(|| format!("{entry:?}: expected NAME:PROTOCOL"))?;
            Ok((name.trim().to_ascii_uppercase(), protocol.trim().parse()?))
        })
        .collect()
}

/// A listener's protocol: from the map, else its name when the name is a protocol.
pub fn protocol_of(
    name: &str,
    map: &HashMap<String, SecurityProtocol>,
) -> Result<SecurityProtocol, String> {
    match map.get(name) {
        Some(protocol) => Ok(*protocol),
        None => name.parse(),
    }
}

/// What a connection knows about the listener it came in on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ListenerInfo {
    /// The listener's name (`PLAINTEXT`, `SSL`, `CLIENT`, ...).
    pub name: String,
    pub protocol: SecurityProtocol,
}

/// A bound listener, ready for [`crate::Server::serve`].
pub struct Listener {
    pub(crate) info: Arc<ListenerInfo>,
    pub(crate) tcp: TcpListener,
    pub(crate) tls: Option<Arc<ReloadingAcceptor>>,
}

impl fmt::Debug for Listener {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Listener")
            .field("info", &self.info)
            .field("local", &self.tcp.local_addr().ok())
            .finish_non_exhaustive()
    }
}

impl Listener {
    /// A listener over a bound socket. An SSL or SASL_SSL listener needs its TLS acceptor.
    pub fn new(
        info: ListenerInfo,
        tcp: TcpListener,
        tls: Option<Arc<ReloadingAcceptor>>,
    ) -> Result<Listener, String> {
        if !info.protocol.uses_tls() {
            return Ok(Listener { info: Arc::new(info), tcp, tls: None });
        }
        if tls.is_none() {
            return Err(format!(
                "listener {} speaks {}: give it a certificate and key (--tls-cert, --tls-key)",
                info.name, info.protocol
            ));
        }
        Ok(Listener { info: Arc::new(info), tcp, tls })
    }

    /// The address actually bound (useful with port 0).
    pub fn local_addr(&self) -> std::io::Result<SocketAddr> {
        self.tcp.local_addr()
    }

    pub fn info(&self) -> &ListenerInfo {
        &self.info
    }
}

/// Binds a non-blocking listener with SO_REUSEADDR, so a restarted broker or proxy gets its
/// port back at once instead of failing while old sockets sit in TIME_WAIT. A std listener:
/// binding needs no runtime and works from any thread (`TcpListener::from_std` serves it).
pub fn bind(address: SocketAddr) -> std::io::Result<std::net::TcpListener> {
    use socket2::{Domain, Protocol, Socket, Type};
    let socket = Socket::new(Domain::for_address(address), Type::STREAM, Some(Protocol::TCP))?;
    // On Windows SO_REUSEADDR would let two processes share a port; Rust's std skips it there too.
    if cfg!(unix) {
        socket.set_reuse_address(true)?;
    }
    socket.bind(&address.into())?;
    socket.listen(1024)?;
    socket.set_nonblocking(true)?;
    Ok(socket.into())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn listener_lists_parse_as_kafka_spells_them() {
        let specs =
            ListenerSpec::parse_list("PLAINTEXT://0.0.0.0:9092, ssl://:9093,IN://[::1]:9094")
                .expect("valid list");
        let shown: Vec<String> = specs.iter().map(ToString::to_string).collect();
        assert_eq!(shown, ["PLAINTEXT://0.0.0.0:9092", "SSL://:9093", "IN://[::1]:9094"]);
        assert_eq!(specs[1].bind_address().ok(), "0.0.0.0:9093".parse().ok());
        assert_eq!(specs[2].bind_address().ok(), "[::1]:9094".parse().ok());
        for bad in
            ["9092", "PLAINTEXT://host", "PLAIN TEXT://:1", "A://:1,A://:2", "", "X://:99999"]
        {
            assert!(ListenerSpec::parse_list(bad).is_err(), "{bad:?}");
        }
        let named = ListenerSpec::parse("X://kafka.example:9092").expect("a host name parses");
        assert!(named.bind_address().is_err(), "a host name is advertised, not bound");
    }

    #[test]
    fn listeners_set_reuse_address() {
        let listener = bind(SocketAddr::from(([127, 0, 0, 1], 0)));
        let reuse = listener.and_then(|listener| socket2::SockRef::from(&listener).reuse_address());
        assert_eq!(reuse.ok(), Some(cfg!(unix)));
    }

    #[test]
    fn a_port_taken_by_a_listener_or_an_outgoing_connection_is_an_error() {
        let taken = std::net::TcpListener::bind("127.0.0.1:0").expect("a free port");
        let listening = taken.local_addr().expect("bound");
        let error = bind(listening).map(|_| ()).map_err(|error| error.kind());
        assert_eq!(error, Err(std::io::ErrorKind::AddrInUse));
        // A fixed port that an outgoing connection holds as its ephemeral source port:
        // SO_REUSEADDR does not (and must not) take that port over.
        let outgoing = std::net::TcpStream::connect(listening).expect("connected");
        let source = outgoing.local_addr().expect("bound");
        let error = bind(source).map(|_| ()).map_err(|error| error.kind());
        assert_eq!(error, Err(std::io::ErrorKind::AddrInUse));
    }

    #[test]
    fn protocols_come_from_the_map_or_the_name() {
        let map = parse_protocol_map("CLIENT:SSL, internal:PLAINTEXT").expect("valid map");
        assert_eq!(protocol_of("CLIENT", &map), Ok(SecurityProtocol::Ssl));
        assert_eq!(protocol_of("INTERNAL", &map), Ok(SecurityProtocol::Plaintext));
        assert_eq!(protocol_of("SSL", &map), Ok(SecurityProtocol::Ssl));
        assert!(protocol_of("OTHER", &map).is_err());
        assert_eq!(protocol_of("SASL_SSL", &map), Ok(SecurityProtocol::SaslSsl));
        assert_eq!(protocol_of("sasl_plaintext", &map), Ok(SecurityProtocol::SaslPlaintext));
        assert!(SecurityProtocol::SaslSsl.uses_tls() && SecurityProtocol::SaslSsl.uses_sasl());
        assert!(!SecurityProtocol::SaslPlaintext.uses_tls());
        assert!(!SecurityProtocol::Ssl.uses_sasl());
        assert!(parse_protocol_map("CLIENT=SSL").is_err());
    }
}
