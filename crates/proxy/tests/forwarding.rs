//! The whole proxy against a fake upstream broker: answers reach each client in its request
//! order even when its requests travel on different upstream connections, acks=0 produce
//! requests are owed no answer, the produce hook sees (and may refuse) produce requests, and a
//! client whose upstream dies is disconnected promptly.

use std::sync::Arc;
use std::time::Duration;

use std::sync::atomic::{AtomicUsize, Ordering};

use skiff_proxy::{NoProduceChecks, ProduceHook, ProduceVerdict, ProduceView, ProxyConfig};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

const PRODUCE: i16 = 0;
const FETCH: i16 = 1;
const LIST_OFFSETS: i16 = 2;

/// A fake broker: answers each request on its connection in order, with the request's
/// correlation id and its api key as the body; Fetch answers after 300 ms (a long poll). A
/// request with api key 99 makes it drop the connection instead, one with 98 makes it hang.
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
                    if api_key == 98 {
                        // Hang: keep the connection open and never answer again.
                        std::future::pending::<()>().await;
                    }
                    if api_key == PRODUCE && produce_acks(&frame) == Some(0) {
                        continue; // like Kafka: no answer at all
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

/// The acks of a Produce v3 request with header v1 (what `produce_request` sends).
fn produce_acks(frame: &[u8]) -> Option<i16> {
    let field = |at: usize| Some(i16::from_be_bytes(frame.get(at..at + 2)?.try_into().ok()?));
    let client_id = usize::try_from(field(8)?).unwrap_or(0);
    let transactional_at = 10 + client_id;
    let transactional_id = usize::try_from(field(transactional_at)?).unwrap_or(0);
    field(transactional_at + 2 + transactional_id)
}

async fn start_proxy(upstream: String) -> std::net::SocketAddr {
    start_proxy_with(upstream, Arc::new(NoProduceChecks)).await
}

async fn start_proxy_with(upstream: String, hook: Arc<dyn ProduceHook>) -> std::net::SocketAddr {
    start_proxy_configured(proxy_config(upstream), hook).await
}

fn proxy_config(upstream: String) -> ProxyConfig {
    ProxyConfig {
        listen: "127.0.0.1:0".parse().unwrap_or_else(|e| panic!("{e}")),
        advertised_host: "127.0.0.1".to_owned(),
        broker_ports: Default::default(),
        upstreams: vec![upstream],
        max_request_bytes: 1024 * 1024,
        max_connections: 100,
        shared_connections: 2,
        connect_timeout: Duration::from_secs(2),
        request_timeout: Duration::from_millis(500),
        max_upstream_brokers: 4,
        tls: None,
        sasl: None,
        upstream_sasl: None,
    }
}

async fn start_proxy_configured(
    config: ProxyConfig,
    hook: Arc<dyn ProduceHook>,
) -> std::net::SocketAddr {
    let listeners = skiff_proxy::bind(config, hook).unwrap_or_else(|e| panic!("{e}"));
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

/// A produce hook that counts what it sees and rejects requests with acks = 1.
#[derive(Default)]
struct RejectAcksOne {
    seen: AtomicUsize,
}

#[async_trait::async_trait]
impl ProduceHook for RejectAcksOne {
    fn enabled(&self) -> bool {
        true
    }

    async fn check(&self, request: &ProduceView<'_>) -> ProduceVerdict {
        self.seen.fetch_add(1, Ordering::SeqCst);
        assert_eq!(request.client_id, Some("hook-test"));
        if request.acks == 1 {
            ProduceVerdict::Reject { reason: "acks=1 refused by the test hook".to_owned() }
        } else {
            ProduceVerdict::Forward
        }
    }
}

/// Produce v3 (header v1): client id, null transactional id, acks, timeout, no topics.
fn produce_request(correlation_id: i32, acks: i16) -> Vec<u8> {
    let mut payload = Vec::new();
    payload.extend_from_slice(&0i16.to_be_bytes()); // api key: Produce
    payload.extend_from_slice(&3i16.to_be_bytes());
    payload.extend_from_slice(&correlation_id.to_be_bytes());
    payload.extend_from_slice(&9i16.to_be_bytes());
    payload.extend_from_slice(b"hook-test");
    payload.extend_from_slice(&(-1i16).to_be_bytes()); // transactional id: null
    payload.extend_from_slice(&acks.to_be_bytes());
    payload.extend_from_slice(&1000i32.to_be_bytes());
    payload.extend_from_slice(&0i32.to_be_bytes()); // no topics
    let mut frame = (payload.len() as i32).to_be_bytes().to_vec();
    frame.extend(payload);
    frame
}

#[tokio::test]
async fn the_produce_hook_sees_produce_requests_and_can_refuse_them() {
    let hook = Arc::new(RejectAcksOne::default());
    let proxy = start_proxy_with(fake_broker().await, hook.clone()).await;
    let mut client = TcpStream::connect(proxy).await.unwrap_or_else(|e| panic!("{e}"));
    // acks = -1 is forwarded and answered; ListOffsets is not shown to the hook.
    client.write_all(&produce_request(1, -1)).await.unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(read_response(&mut client).await, (1, 0));
    client.write_all(&request(LIST_OFFSETS, 2)).await.unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(read_response(&mut client).await, (2, LIST_OFFSETS));
    // acks = 1 is refused: the connection closes.
    client.write_all(&produce_request(3, 1)).await.unwrap_or_else(|e| panic!("{e}"));
    let mut byte = [0u8; 1];
    let closed = tokio::time::timeout(Duration::from_secs(2), client.read(&mut byte)).await;
    assert!(matches!(closed, Ok(Ok(0)) | Ok(Err(_))), "connection not closed: {closed:?}");
    assert_eq!(hook.seen.load(Ordering::SeqCst), 2);
}

#[tokio::test]
async fn acks_zero_produce_gets_no_answer_and_later_answers_stay_in_order() {
    let proxy = start_proxy(fake_broker().await).await;
    let mut client = TcpStream::connect(proxy).await.unwrap_or_else(|e| panic!("{e}"));
    let mut batch = produce_request(1, 0);
    batch.extend(request(LIST_OFFSETS, 2));
    client.write_all(&batch).await.unwrap_or_else(|e| panic!("{e}"));
    // No answer is owed for acks=0, so the first answer the client sees is ListOffsets'.
    assert_eq!(read_response(&mut client).await, (2, LIST_OFFSETS));
}

#[tokio::test]
async fn an_upstream_that_hangs_is_given_up_after_the_request_timeout() {
    let proxy = start_proxy(fake_broker().await).await;
    let mut client = TcpStream::connect(proxy).await.unwrap_or_else(|e| panic!("{e}"));
    client.write_all(&request(98, 1)).await.unwrap_or_else(|e| panic!("{e}"));
    // The request timeout in these tests is 500 ms.
    let mut byte = [0u8; 1];
    let closed = tokio::time::timeout(Duration::from_secs(3), client.read(&mut byte)).await;
    assert!(matches!(closed, Ok(Ok(0)) | Ok(Err(_))), "connection not closed: {closed:?}");
}

/// Users of a SASL-terminating proxy: alice with both SCRAM credentials (PLAIN checks them too).
async fn sasl_users() -> skiff_auth::Users {
    let storage = skiff_storage_memory::MemoryEngine::storage();
    let users = skiff_auth::Users::new(storage.state);
    for mechanism in skiff_auth::ScramMechanism::ALL {
        let credential = skiff_auth::ScramCredential::new(mechanism, "alice-pw", 4096);
        let added = users.upsert("alice", mechanism, credential).await;
        assert!(added.is_ok(), "{added:?}");
    }
    users
}

/// Whether the proxy closed the connection without answering.
async fn closed_without_answer(stream: &mut TcpStream) -> bool {
    let mut byte = [0u8; 1];
    matches!(
        tokio::time::timeout(Duration::from_secs(5), stream.read(&mut byte)).await,
        Ok(Ok(0)) | Ok(Err(_))
    )
}

#[tokio::test]
async fn a_proxy_logs_in_to_a_proxy_that_terminates_sasl() {
    use skiff_auth::Mechanism;
    use skiff_proxy::{ClientSasl, UpstreamSasl};

    let mut config = proxy_config(fake_broker().await);
    config.sasl = Some(ClientSasl {
        users: sasl_users().await,
        mechanisms: Mechanism::ALL.to_vec(),
        max_reauth: None,
    });
    let front = start_proxy_configured(config, Arc::new(NoProduceChecks)).await;

    // A client that does not log in is disconnected at its first request but ApiVersions.
    let mut anonymous = TcpStream::connect(front).await.unwrap_or_else(|e| panic!("{e}"));
    anonymous.write_all(&request(LIST_OFFSETS, 1)).await.unwrap_or_else(|e| panic!("{e}"));
    assert!(closed_without_answer(&mut anonymous).await, "answered before SASL");

    // A second proxy logs in to the first with each mechanism (the whole exchange, SCRAM's
    // server signature checked), then its clients' requests pass both proxies.
    for mechanism in Mechanism::ALL {
        let mut config = proxy_config(front.to_string());
        config.upstream_sasl = Some(UpstreamSasl {
            mechanism,
            username: "alice".to_owned(),
            password: "alice-pw".to_owned(),
        });
        let edge = start_proxy_configured(config, Arc::new(NoProduceChecks)).await;
        let mut client = TcpStream::connect(edge).await.unwrap_or_else(|e| panic!("{e}"));
        client.write_all(&request(LIST_OFFSETS, 7)).await.unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(read_response(&mut client).await, (7, LIST_OFFSETS), "{mechanism}");
    }

    // With a wrong password the login fails: clients are disconnected, not let through.
    for mechanism in Mechanism::ALL {
        let mut config = proxy_config(front.to_string());
        config.upstream_sasl = Some(UpstreamSasl {
            mechanism,
            username: "alice".to_owned(),
            password: "wrong".to_owned(),
        });
        let edge = start_proxy_configured(config, Arc::new(NoProduceChecks)).await;
        let mut client = TcpStream::connect(edge).await.unwrap_or_else(|e| panic!("{e}"));
        client.write_all(&request(LIST_OFFSETS, 8)).await.unwrap_or_else(|e| panic!("{e}"));
        assert!(closed_without_answer(&mut client).await, "{mechanism}: answered without a login");
    }
}
