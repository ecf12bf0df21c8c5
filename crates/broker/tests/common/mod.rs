//! Wire helpers shared by the broker's protocol-level tests: start a broker on a loopback
//! port, send one request, read its response.

#![allow(dead_code)] // each test binary uses some of these

use bytes::{BufMut, Bytes, BytesMut};
use kafka_protocol::messages::{RequestHeader, ResponseHeader};
use kafka_protocol::protocol::{Decodable, Encodable, HeaderVersion, Request, StrBytes};
use skiff_broker::{Broker, BrokerConfig};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// Serves `broker` on its first listener; returns that listener's address.
pub(crate) async fn serve(broker: Broker) -> std::net::SocketAddr {
    let listeners = skiff_broker::server::bind(&broker).await.expect("bind");
    let address = listeners[0].local_addr().expect("address");
    tokio::spawn(skiff_broker::serve(broker, listeners, std::future::pending()));
    address
}

/// Waits until `count` requests of `api` (its Kafka name, e.g. `Fetch`) are parked in the
/// broker that records into `metrics` (`skiff_requests_waiting`): the positive signal a test
/// waits for before acting on a waiting request, instead of sleeping and hoping it got there.
pub(crate) async fn until_waiting(metrics: &skiff_metrics::Metrics, api: &str, count: u32) {
    let series = format!("skiff_requests_waiting{{api=\"{api}\"}} {count}");
    let deadline = tokio::time::Instant::now() + std::time::Duration::from_secs(20);
    loop {
        let text = metrics.encode().expect("metrics encode");
        if text.lines().any(|line| line == series) {
            return;
        }
        assert!(tokio::time::Instant::now() < deadline, "never {count} waiting {api}:\n{text}");
        tokio::time::sleep(std::time::Duration::from_millis(5)).await;
    }
}

/// A plaintext broker over the memory engine with the default config.
pub(crate) async fn start() -> std::net::SocketAddr {
    let config = BrokerConfig::for_address("127.0.0.1:0".parse().expect("address"));
    serve(Broker::new(skiff_storage_memory::MemoryEngine::storage(), config)).await
}

pub(crate) fn text(value: &str) -> StrBytes {
    StrBytes::from_string(value.to_owned())
}

/// One request frame, with correlation id 7.
pub(crate) fn frame<R: Request>(request: &R, version: i16, client_id: &str) -> BytesMut {
    let header = RequestHeader::default()
        .with_request_api_key(R::KEY)
        .with_request_api_version(version)
        .with_correlation_id(7)
        .with_client_id(Some(text(client_id)));
    let mut body = BytesMut::new();
    header.encode(&mut body, R::header_version(version)).expect("header");
    request.encode(&mut body, version).expect("body");
    let mut framed = BytesMut::with_capacity(body.len() + 4);
    framed.put_i32(body.len() as i32);
    framed.extend_from_slice(&body);
    framed
}

/// Sends one request as `client_id` and decodes its response.
pub(crate) async fn call_as<R: Request>(
    stream: &mut TcpStream,
    request: &R,
    version: i16,
    client_id: &str,
) -> R::Response {
    stream.write_all(&frame(request, version, client_id)).await.expect("write");
    let length = stream.read_i32().await.expect("length");
    let mut body = vec![0; length as usize];
    stream.read_exact(&mut body).await.expect("body");
    let mut bytes = Bytes::from(body);
    let header =
        ResponseHeader::decode(&mut bytes, R::Response::header_version(version)).expect("header");
    assert_eq!(header.correlation_id, 7);
    R::Response::decode(&mut bytes, version).expect("response")
}

/// Sends one request as client `test` and decodes its response.
pub(crate) async fn call<R: Request>(
    stream: &mut TcpStream,
    request: &R,
    version: i16,
) -> R::Response {
    call_as(stream, request, version, "test").await
}
