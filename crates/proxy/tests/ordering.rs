//! The whole proxy against a fake upstream broker: answers reach each client in its request
//! order even when its requests travel on different upstream connections, and a client whose
//! upstream dies is disconnected promptly.

use std::sync::Arc;
use std::time::Duration;

use skiff_proxy::{NoProduceChecks, ProxyConfig};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

const FETCH: i16 = 1;
const LIST_OFFSETS: i16 = 2;

/// A fake broker: answers each request on its connection in order, with the request's
/// correlation id and its api key as the body; Fetch answers after 300 ms (a long poll). A
/// request with api key 99 makes it drop the connection instead.
async fn fake_broker() -> String {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap_or_else(|e| panic!("{e}"));
    let address = listener.local_addr().map(|a| a.to_string()).unwrap_or_default();
    tokio::spawn(async move {
        while let Ok((mut stream, _)) = listener.accept().await {
            tokio::spawn(async move {
                loop {
                    let Ok(length) = stream.read_i32().await else { return };
                    let mut frame = vec![0u8; length as usize];
                    if stream.read_exact(&mut frame).await.is_err() {
                        return;
                    }
                    let api_key = i16::from_be_bytes([frame[0], frame[1]]);
                    if api_key == 99 {
                        return;
                    }
                    if api_key == FETCH {
                        tokio::time::sleep(Duration::from_millis(300)).await;
                    }
                    let mut response = 6i32.to_be_bytes().to_vec();
                    response.extend_from_slice(&frame[4..8]);
                    response.extend_from_slice(&api_key.to_be_bytes());
                    if stream.write_all(&response).await.is_err() {
                        return;
                    }
                }
            });
        }
    });
    address
}

async fn start_proxy(upstream: String) -> std::net::SocketAddr {
    let config = ProxyConfig {
        listen: "127.0.0.1:0".parse().unwrap_or_else(|e| panic!("{e}")),
        advertised_host: "127.0.0.1".to_owned(),
        advertised_port: 1,
        upstreams: vec![upstream],
        max_request_bytes: 1024 * 1024,
        max_connections: 100,
        shared_connections: 2,
        connect_timeout: Duration::from_secs(2),
        max_upstream_brokers: 4,
    };
    let listeners =
        skiff_proxy::bind(config, Arc::new(NoProduceChecks)).unwrap_or_else(|e| panic!("{e}"));
    let address = listeners.local_addr().unwrap_or_else(|e| panic!("{e}"));
    tokio::spawn(skiff_proxy::serve(listeners, std::future::pending()));
    address
}

fn request(api_key: i16, correlation_id: i32) -> Vec<u8> {
    let mut frame = 10i32.to_be_bytes().to_vec();
    frame.extend_from_slice(&api_key.to_be_bytes());
    frame.extend_from_slice(&0i16.to_be_bytes());
    frame.extend_from_slice(&correlation_id.to_be_bytes());
    frame.extend_from_slice(&(-1i16).to_be_bytes()); // null client id
    frame
}

async fn read_response(stream: &mut TcpStream) -> (i32, i16) {
    let read = async {
        let length = stream.read_i32().await?;
        assert_eq!(length, 6);
        let correlation_id = stream.read_i32().await?;
        let api_key = stream.read_i16().await?;
        Ok::<_, std::io::Error>((correlation_id, api_key))
    };
    match tokio::time::timeout(Duration::from_secs(5), read).await {
        Ok(Ok(answer)) => answer,
        other => panic!("no response: {other:?}"),
    }
}

#[tokio::test]
async fn answers_come_back_in_request_order_across_upstream_connections() {
    let proxy = start_proxy(fake_broker().await).await;
    let mut clients = Vec::new();
    for _ in 0..3 {
        clients.push(TcpStream::connect(proxy).await.unwrap_or_else(|e| panic!("{e}")));
    }
    // Every client pipelines a slow Fetch (dedicated connection) and two quick ListOffsets
    // (shared connection); the quick ones are answered upstream first.
    for (index, client) in clients.iter_mut().enumerate() {
        let base = 100 * index as i32;
        let mut batch = request(FETCH, base);
        batch.extend(request(LIST_OFFSETS, base + 1));
        batch.extend(request(LIST_OFFSETS, base + 2));
        client.write_all(&batch).await.unwrap_or_else(|e| panic!("{e}"));
    }
    for (index, client) in clients.iter_mut().enumerate() {
        let base = 100 * index as i32;
        assert_eq!(read_response(client).await, (base, FETCH));
        assert_eq!(read_response(client).await, (base + 1, LIST_OFFSETS));
        assert_eq!(read_response(client).await, (base + 2, LIST_OFFSETS));
    }
}

#[tokio::test]
async fn a_client_whose_upstream_dies_is_disconnected_promptly() {
    let proxy = start_proxy(fake_broker().await).await;
    let mut client = TcpStream::connect(proxy).await.unwrap_or_else(|e| panic!("{e}"));
    client.write_all(&request(LIST_OFFSETS, 1)).await.unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(read_response(&mut client).await, (1, LIST_OFFSETS));
    // The upstream drops the shared connection while this request waits for its answer.
    client.write_all(&request(99, 2)).await.unwrap_or_else(|e| panic!("{e}"));
    let mut byte = [0u8; 1];
    let closed = tokio::time::timeout(Duration::from_secs(2), client.read(&mut byte)).await;
    assert!(matches!(closed, Ok(Ok(0)) | Ok(Err(_))), "connection not closed: {closed:?}");
    // A new client gets through: the proxy reconnected by itself.
    let mut again = TcpStream::connect(proxy).await.unwrap_or_else(|e| panic!("{e}"));
    again.write_all(&request(LIST_OFFSETS, 3)).await.unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(read_response(&mut again).await, (3, LIST_OFFSETS));
}
