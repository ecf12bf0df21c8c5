use std::net::{Ipv6Addr, SocketAddr};

use hickory_resolver::proto::xfer::Protocol;

use super::*;

/// A resolver that knows `hosts` and whose name server is never needed by these tests: names in
/// `hosts`, `localhost` and `.invalid` are answered without a query.
fn resolver_with_hosts(hosts: &str) -> BuiltinResolver {
    BuiltinResolver::from_hosts(hosts).expect("hosts text")
}

#[test]
fn ip_literals_are_recognised_with_and_without_brackets() {
    assert_eq!(ip_literal("10.0.0.1"), Some(IpAddr::V4(Ipv4Addr::new(10, 0, 0, 1))));
    assert_eq!(ip_literal("::1"), Some(IpAddr::V6(Ipv6Addr::LOCALHOST)));
    assert_eq!(ip_literal("[::1]"), Some(IpAddr::V6(Ipv6Addr::LOCALHOST)));
    assert_eq!(ip_literal("localhost"), None);
    assert_eq!(ip_literal("db.example"), None);
    assert_eq!(ip_literal("[db.example]"), None);
}

#[test]
fn host_and_port_split_at_the_last_colon() {
    assert_eq!(split_host_port("kafka-1:9092").expect("valid"), ("kafka-1", 9092));
    assert_eq!(split_host_port("[::1]:9092").expect("valid"), ("::1", 9092));
    assert_eq!(split_host_port("10.0.0.1:1").expect("valid"), ("10.0.0.1", 1));
    for invalid in ["kafka-1", "kafka-1:", "kafka-1:port", ":9092", "[]:9092", "kafka-1:70000"] {
        let error = split_host_port(invalid).expect_err(invalid);
        assert_eq!(error.kind(), io::ErrorKind::InvalidInput, "{invalid}");
    }
}

#[test]
fn resolv_conf_gives_name_servers_search_domains_and_options() {
    let text = "# written by hand\nnameserver 10.1.2.3\nsearch corp.example\noptions ndots:3\n";
    let (config, options) = resolver_config(Ok(text.as_bytes().to_vec()));
    let servers: Vec<_> = config.name_servers().iter().map(|server| server.socket_addr).collect();
    assert!(servers.iter().all(|server| *server == "10.1.2.3:53".parse().expect("addr")));
    assert!(!servers.is_empty());
    let search: Vec<String> = config.search().iter().map(ToString::to_string).collect();
    assert_eq!(search, ["corp.example"]);
    assert_eq!(options.ndots, 3);
}

/// glibc's rule: no resolv.conf, or one naming no server, means a name server on 127.0.0.1.
#[test]
fn without_a_usable_resolv_conf_the_local_name_server_is_asked() {
    let local: SocketAddr = "127.0.0.1:53".parse().expect("addr");
    for resolv_conf in [Err(io::ErrorKind::NotFound.into()), Ok(b"# empty\n".to_vec())] {
        let (config, _) = resolver_config(resolv_conf);
        let servers: Vec<_> = config
            .name_servers()
            .iter()
            .map(|server| (server.socket_addr, server.protocol))
            .collect();
        assert_eq!(servers, [(local, Protocol::Udp), (local, Protocol::Tcp)]);
        assert!(config.search().is_empty());
    }
}

#[tokio::test]
async fn names_in_the_hosts_file_resolve_to_every_address_with_the_port() {
    let resolver =
        resolver_with_hosts("# a comment\n10.9.8.7 db.skiff.test db\nfd00::7 db.skiff.test\n");
    let mut addresses = resolver.lookup("db.skiff.test", 5432).await.expect("in hosts");
    addresses.sort();
    let want: Vec<SocketAddr> =
        vec!["10.9.8.7:5432".parse().expect("addr"), "[fd00::7]:5432".parse().expect("addr")];
    assert_eq!(addresses, want);
    let alias = resolver.lookup("db", 1).await.expect("alias in hosts");
    assert_eq!(alias, ["10.9.8.7:1".parse::<SocketAddr>().expect("addr")]);
}

#[tokio::test]
async fn localhost_is_loopback_without_a_hosts_file() {
    let resolver = resolver_with_hosts("");
    let addresses = resolver.lookup("localhost", 9092).await.expect("localhost");
    assert!(!addresses.is_empty());
    assert!(addresses.iter().all(|address| address.ip().is_loopback() && address.port() == 9092));
}

#[tokio::test]
async fn ip_literals_are_answered_without_a_lookup() {
    let resolver = resolver_with_hosts("");
    let answer = resolver.lookup("[::1]", 8081).await.expect("literal");
    assert_eq!(answer, ["[::1]:8081".parse::<SocketAddr>().expect("addr")]);
    let answer = lookup("192.0.2.1", 80).await.expect("literal");
    assert_eq!(answer, ["192.0.2.1:80".parse::<SocketAddr>().expect("addr")]);
}

#[tokio::test]
async fn an_unknown_name_is_not_found() {
    let resolver = resolver_with_hosts("10.9.8.7 db.skiff.test\n");
    let error = resolver.lookup("nothing.invalid", 80).await.expect_err("no such name");
    assert_eq!(error.kind(), io::ErrorKind::NotFound, "{error}");
    assert!(error.to_string().contains("nothing.invalid"), "{error}");
}

#[tokio::test]
async fn connect_reaches_a_listener_by_name() {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let port = listener.local_addr().expect("addr").port();
    let stream = connect(&format!("localhost:{port}")).await.expect("connect");
    let (_accepted, peer) = listener.accept().await.expect("accept");
    assert_eq!(stream.local_addr().expect("local"), peer);
}
