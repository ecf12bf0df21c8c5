//! Host name resolution for every connection `skiff` opens (Postgres, S3, a Schema Registry, a
//! proxy's upstream Kafka brokers, the CLI's bootstrap address).
//!
//! Why this crate exists: glibc's `getaddrinfo` answers through NSS modules (`libnss_files`,
//! `libnss_dns`, ...) that it loads with `dlopen`. A statically linked glibc program cannot load
//! them safely (they must come from the exact glibc it was linked with) and in an empty root file
//! system there are none, so host names stop resolving. The static build
//! (`scripts/build-static.sh`, `+crt-static`) therefore resolves names itself with
//! `hickory-resolver`, which reads `/etc/resolv.conf` and `/etc/hosts` as glibc does. Every other
//! build keeps the system resolver, so nothing changes where NSS works (mDNS, LDAP, ...).
//!
//! Either way IP literals never reach a resolver, and `localhost` resolves to the loopback
//! addresses even without an `/etc/hosts` (RFC 6761; hickory answers it itself).
//!
//! - [`lookup`] and [`connect`]: for TCP connections (Kafka, and tokio-postgres via `hostaddr`).
//! - [`http::client_builder`] (feature `reqwest`): a reqwest client builder that resolves the same
//!   way, for object_store and the registry clients.

use std::io;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::sync::OnceLock;

use hickory_resolver::config::{
    LookupIpStrategy, NameServerConfigGroup, ResolveHosts, ResolverConfig, ResolverOpts,
};
use hickory_resolver::name_server::TokioConnectionProvider;
use hickory_resolver::proto::op::Query;
use hickory_resolver::proto::rr::RecordType;
use hickory_resolver::{Hosts, IntoName, TokioResolver};
use tokio::net::TcpStream;

#[cfg(feature = "reqwest")]
pub mod http;

/// True in a binary linked with `+crt-static`, where glibc's resolver cannot be relied on and
/// names are resolved by [`BuiltinResolver`] instead.
pub const BUILTIN: bool = cfg!(target_feature = "crt-static");

/// Where glibc looks for name servers, and what it assumes when that file is absent.
const RESOLV_CONF: &str = "/etc/resolv.conf";
const DNS_PORT: u16 = 53;

/// The addresses of `host` (a name or an IP literal, IPv6 with or without brackets), with `port`.
pub async fn lookup(host: &str, port: u16) -> io::Result<Vec<SocketAddr>> {
    if let Some(ip) = ip_literal(host) {
        return Ok(vec![SocketAddr::new(ip, port)]);
    }
    if BUILTIN {
        return BuiltinResolver::shared().lookup(host, port).await;
    }
    Ok(tokio::net::lookup_host((host, port)).await?.collect())
}

/// Connects to `address` (`HOST:PORT`, `[IPv6]:PORT`), trying each of its addresses in turn as
/// `TcpStream::connect` does; outside the static build it is exactly `TcpStream::connect`.
pub async fn connect(address: &str) -> io::Result<TcpStream> {
    if !BUILTIN {
        return TcpStream::connect(address).await;
    }
    let (host, port) = split_host_port(address)?;
    let mut last_error = None;
    for socket_address in lookup(host, port).await? {
        match TcpStream::connect(socket_address).await {
            Ok(stream) => return Ok(stream),
            Err(error) => last_error = Some(error),
        }
    }
    Err(last_error.unwrap_or_else(|| no_addresses(host)))
}

/// `host` as an IP address if it is one (`[::1]` too, as URLs write IPv6).
pub fn ip_literal(host: &str) -> Option<IpAddr> {
    let bare = host.strip_prefix('[').and_then(|rest| rest.strip_suffix(']')).unwrap_or(host);
    bare.parse().ok()
}

/// Splits `HOST:PORT` (or `[IPv6]:PORT`) at its last colon.
pub fn split_host_port(address: &str) -> io::Result<(&str, u16)> {
    let invalid =
        || io::Error::new(io::ErrorKind::InvalidInput, format!("{address:?} is not HOST:PORT"));
    let (host, port) = address.rsplit_once(':').ok_or_else(invalid)?;
    let port = port.parse().map_err(|_| invalid())?;
    let host = host.strip_prefix('[').and_then(|rest| rest.strip_suffix(']')).unwrap_or(host);
    if host.is_empty() {
        return Err(invalid());
    }
    Ok((host, port))
}

fn no_addresses(host: &str) -> io::Error {
    io::Error::new(io::ErrorKind::NotFound, format!("{host} has no addresses"))
}

/// Resolves names the way glibc's `files dns` NSS configuration does: a name in `/etc/hosts` is
/// answered from there alone; others go to the name servers, with the search domains and options
/// of `/etc/resolv.conf`.
pub struct BuiltinResolver {
    resolver: TokioResolver,
    /// Parsed by hickory, consulted here: hickory's own use of it asks DNS for the address family a
    /// hosts entry lacks (an IPv4-only entry waits for an AAAA query), which glibc never does.
    hosts: Hosts,
}

impl BuiltinResolver {
    /// The one resolver of this process, built on first use from the system's files (so a binary
    /// that never resolves a name never reads them; startup stays in the milliseconds).
    pub fn shared() -> &'static Self {
        static SHARED: OnceLock<BuiltinResolver> = OnceLock::new();
        SHARED.get_or_init(Self::from_system)
    }

    /// From `/etc/resolv.conf` and `/etc/hosts`. Without a usable `resolv.conf` (an empty root,
    /// a container without one) it asks a name server on this host, as glibc does; without
    /// `/etc/hosts` only `localhost` and DNS answer.
    pub fn from_system() -> Self {
        let (config, options) = resolver_config(std::fs::read(RESOLV_CONF));
        Self::new(config, options, Hosts::from_system().unwrap_or_default())
    }

    /// A resolver that answers from `hosts` (text in `/etc/hosts` format), `localhost` and IP
    /// literals, and asks a name server on 127.0.0.1 for anything else: for tests that must not
    /// depend on the machine's files.
    pub fn from_hosts(hosts: &str) -> io::Result<Self> {
        let mut table = Hosts::default();
        table.read_hosts_conf(hosts.as_bytes())?;
        let (config, options) = resolver_config(Err(io::ErrorKind::NotFound.into()));
        Ok(Self::new(config, options, table))
    }

    /// A resolver asking `config`'s name servers, with `hosts` as its `/etc/hosts`.
    pub fn new(config: ResolverConfig, mut options: ResolverOpts, hosts: Hosts) -> Self {
        // getaddrinfo answers both families and lets the caller try each; so do we, IPv4 first.
        options.ip_strategy = LookupIpStrategy::Ipv4AndIpv6;
        options.use_hosts_file = ResolveHosts::Never;
        let mut builder =
            TokioResolver::builder_with_config(config, TokioConnectionProvider::default());
        *builder.options_mut() = options;
        Self { resolver: builder.build(), hosts }
    }

    /// `host`'s addresses in the hosts file (IPv4 first), if it is there.
    fn in_hosts_file(&self, host: &str) -> Option<Vec<IpAddr>> {
        let name = host.into_name().ok()?;
        let addresses: Vec<IpAddr> = [RecordType::A, RecordType::AAAA]
            .into_iter()
            .filter_map(|kind| self.hosts.lookup_static_host(&Query::query(name.clone(), kind)))
            .flat_map(|lookup| lookup.iter().filter_map(|data| data.ip_addr()).collect::<Vec<_>>())
            .collect();
        (!addresses.is_empty()).then_some(addresses)
    }

    /// The addresses of `host` with `port`; an error when it has none.
    pub async fn lookup(&self, host: &str, port: u16) -> io::Result<Vec<SocketAddr>> {
        if let Some(ip) = ip_literal(host) {
            return Ok(vec![SocketAddr::new(ip, port)]);
        }
        if let Some(addresses) = self.in_hosts_file(host) {
            return Ok(addresses.into_iter().map(|ip| SocketAddr::new(ip, port)).collect());
        }
        let answer = self.resolver.lookup_ip(host).await.map_err(|error| {
            let kind = if error.is_no_records_found() {
                io::ErrorKind::NotFound
            } else {
                io::ErrorKind::Other
            };
            io::Error::new(kind, format!("cannot resolve {host}: {error}"))
        })?;
        let mut addresses: Vec<SocketAddr> =
            answer.iter().map(|ip| SocketAddr::new(ip, port)).collect();
        // hickory appends whichever family answered second; callers try addresses in order, and
        // IPv4 first is what works in containers without an IPv6 route.
        addresses.sort_by_key(SocketAddr::is_ipv6);
        if addresses.is_empty() {
            return Err(no_addresses(host));
        }
        tracing::debug!(host, ?addresses, "resolved");
        Ok(addresses)
    }
}

/// The resolver configuration from the contents of `resolv.conf` (or the error reading it).
/// glibc's rule when the file is missing or names no server: ask 127.0.0.1 port 53.
fn resolver_config(resolv_conf: io::Result<Vec<u8>>) -> (ResolverConfig, ResolverOpts) {
    let parsed = match resolv_conf {
        Ok(contents) => hickory_resolver::system_conf::parse_resolv_conf(contents)
            .map_err(|error| error.to_string()),
        Err(error) => Err(error.to_string()),
    };
    match parsed {
        Ok(config) => config,
        Err(reason) => {
            tracing::debug!(%reason, "no usable {RESOLV_CONF}: asking a name server on 127.0.0.1");
            let local = NameServerConfigGroup::from_ips_clear(
                &[IpAddr::V4(Ipv4Addr::LOCALHOST)],
                DNS_PORT,
                true,
            );
            (ResolverConfig::from_parts(None, Vec::new(), local), ResolverOpts::default())
        }
    }
}

#[cfg(test)]
mod tests;
