//! Protocol-level tests: a real broker on a loopback port over the memory engine, driven with
//! hand-encoded requests. Client-library behaviour is covered by tests/e2e; these pin down the
//! wire rules clients rely on (ordering, silence for acks=0, version fallback, long polls).

mod common;

use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::{Buf, BufMut, Bytes, BytesMut};
use kafka_protocol::messages::fetch_request::{FetchPartition, FetchTopic};
use kafka_protocol::messages::produce_request::{PartitionProduceData, TopicProduceData};
use kafka_protocol::messages::*;
use kafka_protocol::protocol::{Decodable, Encodable, HeaderVersion, Request, StrBytes};
use skiff_broker::{Broker, BrokerConfig};
use skiff_storage::testsuite::{batch, producer_batch, transactional_batch};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

async fn start() -> std::net::SocketAddr {
    let config = BrokerConfig::for_address("127.0.0.1:0".parse().expect("address"));
    let broker = Broker::new(skiff_storage_memory::MemoryEngine::storage(), config);
    let listeners = skiff_broker::server::bind(&broker).await.expect("bind");
    let address = listeners[0].local_addr().expect("address");
    tokio::spawn(skiff_broker::serve(broker, listeners, std::future::pending()));
    address
}

fn frame<R: Request>(request: &R, version: i16, correlation_id: i32) -> BytesMut {
    let header = RequestHeader::default()
        .with_request_api_key(R::KEY)
        .with_request_api_version(version)
        .with_correlation_id(correlation_id)
        .with_client_id(Some(StrBytes::from_static_str("test")));
    let mut body = BytesMut::new();
    header.encode(&mut body, R::header_version(version)).expect("header");
    request.encode(&mut body, version).expect("body");
    let mut framed = BytesMut::with_capacity(body.len() + 4);
    framed.put_i32(body.len() as i32);
    framed.extend_from_slice(&body);
    framed
}

async fn read_response(stream: &mut TcpStream) -> Bytes {
    let length = stream.read_i32().await.expect("length");
    let mut body = vec![0; length as usize];
    stream.read_exact(&mut body).await.expect("body");
    Bytes::from(body)
}

/// Reads one response, checks its correlation id and decodes the body.
async fn receive<R: Request>(
    stream: &mut TcpStream,
    version: i16,
    correlation_id: i32,
) -> R::Response {
    let mut bytes = read_response(stream).await;
    let header =
        ResponseHeader::decode(&mut bytes, R::Response::header_version(version)).expect("header");
    assert_eq!(header.correlation_id, correlation_id);
    R::Response::decode(&mut bytes, version).expect("response")
}

async fn call<R: Request>(stream: &mut TcpStream, request: &R, version: i16) -> R::Response {
    stream.write_all(&frame(request, version, 7)).await.expect("write");
    receive::<R>(stream, version, 7).await
}

async fn create_topic(stream: &mut TcpStream, name: &'static str) {
    let request = CreateTopicsRequest::default().with_topics(vec![
        kafka_protocol::messages::create_topics_request::CreatableTopic::default()
            .with_name(TopicName(StrBytes::from_static_str(name)))
            .with_num_partitions(1)
            .with_replication_factor(1),
    ]);
    let response = call(stream, &request, 7).await;
    assert_eq!(response.topics[0].error_code, 0);
}

fn produce_request(topic: &'static str, acks: i16, records: usize) -> ProduceRequest {
    ProduceRequest::default().with_acks(acks).with_timeout_ms(1000).with_topic_data(vec![
        TopicProduceData::default()
            .with_name(TopicName(StrBytes::from_static_str(topic)))
            .with_partition_data(vec![PartitionProduceData::default()
                .with_index(0)
                .with_records(Some(batch(records).bytes))]),
    ])
}

fn fetch_request(topic: &'static str, offset: i64, max_wait_ms: i32) -> FetchRequest {
    FetchRequest::default()
        .with_max_wait_ms(max_wait_ms)
        .with_min_bytes(1)
        .with_max_bytes(1 << 20)
        .with_topics(vec![FetchTopic::default()
            .with_topic(TopicName(StrBytes::from_static_str(topic)))
            .with_partitions(vec![FetchPartition::default()
                .with_fetch_offset(offset)
                .with_partition_max_bytes(1 << 20)])])
}

#[tokio::test]
async fn api_versions_lists_the_handled_apis() {
    let mut stream = TcpStream::connect(start().await).await.expect("connect");
    let response = call(&mut stream, &ApiVersionsRequest::default(), 3).await;
    assert_eq!(response.error_code, 0);
    let keys: Vec<i16> = response.api_keys.iter().map(|key| key.api_key).collect();
    for key in [
        ApiKey::Produce,
        ApiKey::Fetch,
        ApiKey::Metadata,
        ApiKey::ApiVersions,
        ApiKey::DeleteRecords,
    ] {
        assert!(keys.contains(&(key as i16)), "{key:?} missing from {keys:?}");
    }
    let produce = response.api_keys.iter().find(|key| key.api_key == 0).expect("produce");
    assert_eq!((produce.min_version, produce.max_version), (3, 13));
}

#[tokio::test]
async fn unknown_api_versions_version_gets_error_35_in_a_v0_body() {
    let mut stream = TcpStream::connect(start().await).await.expect("connect");
    // Header v2 by hand (the codec refuses to encode v99): key 18, version 99, correlation 5,
    // client id "test", no tagged fields; then a body we may not understand.
    let mut request = BytesMut::new();
    request.put_slice(&[0, 18, 0, 99, 0, 0, 0, 5, 0, 4, b't', b'e', b's', b't', 0, 1, 2, 3]);
    let mut framed = BytesMut::new();
    framed.put_i32(request.len() as i32);
    framed.extend_from_slice(&request);
    stream.write_all(&framed).await.expect("write");
    let mut bytes = read_response(&mut stream).await;
    assert_eq!(bytes.get_i32(), 5, "correlation id, header v0");
    let response = ApiVersionsResponse::decode(&mut bytes, 0).expect("v0 body");
    assert_eq!(response.error_code, 35);
    assert!(response.api_keys.iter().any(|key| key.api_key == ApiKey::ApiVersions as i16));
}

#[tokio::test]
async fn acks_zero_gets_no_response_and_order_is_kept() {
    let mut stream = TcpStream::connect(start().await).await.expect("connect");
    create_topic(&mut stream, "quiet").await;
    // Pipeline: a silent produce, then ListOffsets-latest and Metadata; the next response must
    // be the ListOffsets one, and it must see the silent produce.
    let mut pipelined = frame(&produce_request("quiet", 0, 3), 9, 1);
    let list = ListOffsetsRequest::default().with_topics(vec![
        kafka_protocol::messages::list_offsets_request::ListOffsetsTopic::default()
            .with_name(TopicName(StrBytes::from_static_str("quiet")))
            .with_partitions(vec![
                kafka_protocol::messages::list_offsets_request::ListOffsetsPartition::default()
                    .with_timestamp(-1),
            ]),
    ]);
    pipelined.extend_from_slice(&frame(&list, 5, 2));
    pipelined.extend_from_slice(&frame(&MetadataRequest::default().with_topics(None), 12, 3));
    stream.write_all(&pipelined).await.expect("write");
    let offsets = receive::<ListOffsetsRequest>(&mut stream, 5, 2).await;
    assert_eq!(offsets.topics[0].partitions[0].offset, 3);
    let metadata = receive::<MetadataRequest>(&mut stream, 12, 3).await;
    assert_eq!(metadata.topics.len(), 1);
}

#[tokio::test]
async fn produce_then_fetch_returns_the_batch_with_its_offset() {
    let mut stream = TcpStream::connect(start().await).await.expect("connect");
    create_topic(&mut stream, "t").await;
    let produced = call(&mut stream, &produce_request("t", -1, 2), 9).await;
    assert_eq!(produced.responses[0].partition_responses[0].base_offset, 0);
    let produced = call(&mut stream, &produce_request("t", 1, 3), 9).await;
    assert_eq!(produced.responses[0].partition_responses[0].base_offset, 2);

    let fetched = call(&mut stream, &fetch_request("t", 2, 0), 12).await;
    let partition = &fetched.responses[0].partitions[0];
    assert_eq!((partition.error_code, partition.high_watermark), (0, 5));
    let records = partition.records.clone().expect("records");
    assert_eq!(skiff_protocol::batch::base_offset(&records), Some(2));

    let out_of_range = call(&mut stream, &fetch_request("t", 6, 0), 12).await;
    assert_eq!(out_of_range.responses[0].partitions[0].error_code, 1);
}

#[tokio::test]
async fn corrupt_batch_is_refused_and_nothing_is_stored() {
    let mut stream = TcpStream::connect(start().await).await.expect("connect");
    create_topic(&mut stream, "t").await;
    let mut request = produce_request("t", -1, 2);
    let records = request.topic_data[0].partition_data[0].records.take().expect("records");
    let mut corrupt = BytesMut::from(&records[..]);
    let last = corrupt.len() - 1;
    corrupt[last] ^= 0x55;
    request.topic_data[0].partition_data[0].records = Some(corrupt.freeze());
    let response = call(&mut stream, &request, 9).await;
    assert_eq!(response.responses[0].partition_responses[0].error_code, 2, "CORRUPT_MESSAGE");
    let fetched = call(&mut stream, &fetch_request("t", 0, 0), 12).await;
    assert_eq!(fetched.responses[0].partitions[0].high_watermark, 0);
}

#[tokio::test]
async fn fetch_long_polls_until_data_or_deadline() {
    let metrics = Arc::new(skiff_metrics::Metrics::new());
    let config = BrokerConfig::for_address("127.0.0.1:0".parse().expect("address"));
    let storage = skiff_storage_memory::MemoryEngine::storage();
    let address = common::serve(Broker::with_metrics(storage, config, Some(metrics.clone()))).await;
    let mut stream = TcpStream::connect(address).await.expect("connect");
    create_topic(&mut stream, "t").await;

    let started = Instant::now();
    let empty = call(&mut stream, &fetch_request("t", 0, 300), 12).await;
    assert!(empty.responses[0].partitions[0].records.as_ref().is_none_or(|r| r.is_empty()));
    assert!(started.elapsed() >= Duration::from_millis(300), "waited for max_wait_ms");

    // A waiting fetch is woken by a produce on another connection.
    stream.write_all(&frame(&fetch_request("t", 0, 30_000), 12, 9)).await.expect("write");
    common::until_waiting(&metrics, "Fetch", 1).await;
    let mut producer = TcpStream::connect(address).await.expect("connect");
    call(&mut producer, &produce_request("t", -1, 1), 9).await;
    let woken =
        tokio::time::timeout(Duration::from_secs(10), receive::<FetchRequest>(&mut stream, 12, 9))
            .await
            .expect("woken before the 30 s deadline");
    assert_eq!(woken.responses[0].partitions[0].high_watermark, 1);
}

#[tokio::test]
async fn bad_frames_close_only_their_connection() {
    let address = start().await;
    let mut healthy = TcpStream::connect(address).await.expect("connect");
    for bad in [
        (-1i32).to_be_bytes().to_vec(),
        (200 * 1024 * 1024i32).to_be_bytes().to_vec(),
        b"GET / HTTP/1.1\r\n\r\n".to_vec(),
        [&12i32.to_be_bytes()[..], &[0x03, 0xe7, 0, 0, 0, 0, 0, 1, 0, 0, 0, 0]].concat(),
        [&12i32.to_be_bytes()[..], &[0, 3, 0, 99, 0, 0, 0, 1, 0, 0, 0, 0]].concat(),
    ] {
        let mut stream = TcpStream::connect(address).await.expect("connect");
        stream.write_all(&bad).await.expect("write");
        let mut buf = [0u8; 16];
        let read = tokio::time::timeout(Duration::from_secs(5), stream.read(&mut buf)).await;
        assert!(matches!(read, Ok(Ok(0)) | Ok(Err(_))), "connection closed after {bad:?}");
    }
    let response = call(&mut healthy, &ApiVersionsRequest::default(), 3).await;
    assert_eq!(response.error_code, 0);
}

fn produce_batch(topic: &'static str, batch: skiff_storage::Batch) -> ProduceRequest {
    let mut request = produce_request(topic, -1, 1);
    request.topic_data[0].partition_data[0].records = Some(batch.bytes);
    request
}

#[tokio::test]
async fn retried_idempotent_batches_are_acknowledged_once() {
    let mut stream = TcpStream::connect(start().await).await.expect("connect");
    create_topic(&mut stream, "idem").await;
    let init =
        call(&mut stream, &InitProducerIdRequest::default().with_transactional_id(None), 4).await;
    assert_eq!(init.error_code, 0);
    let (id, epoch) = (init.producer_id.0, init.producer_epoch);
    assert!(id >= 0);

    let first = call(&mut stream, &produce_batch("idem", producer_batch(id, epoch, 0, 3)), 9).await;
    let retry = call(&mut stream, &produce_batch("idem", producer_batch(id, epoch, 0, 3)), 9).await;
    let first = &first.responses[0].partition_responses[0];
    let retry = &retry.responses[0].partition_responses[0];
    assert_eq!((first.error_code, first.base_offset), (0, 0));
    assert_eq!((retry.error_code, retry.base_offset), (0, 0), "a retry gets the original offset");

    let gap = call(&mut stream, &produce_batch("idem", producer_batch(id, epoch, 7, 1)), 9).await;
    assert_eq!(
        gap.responses[0].partition_responses[0].error_code, 45,
        "OUT_OF_ORDER_SEQUENCE_NUMBER"
    );

    let bumped = call(
        &mut stream,
        &InitProducerIdRequest::default()
            .with_transactional_id(None)
            .with_producer_id(ProducerId(id))
            .with_producer_epoch(epoch),
        4,
    )
    .await;
    assert_eq!((bumped.producer_id.0, bumped.producer_epoch), (id, epoch + 1));
    let next =
        call(&mut stream, &produce_batch("idem", producer_batch(id, epoch + 1, 0, 1)), 9).await;
    assert_eq!(next.responses[0].partition_responses[0].base_offset, 3);
    let zombie =
        call(&mut stream, &produce_batch("idem", producer_batch(id, epoch, 3, 1)), 9).await;
    assert_eq!(zombie.responses[0].partition_responses[0].error_code, 47, "INVALID_PRODUCER_EPOCH");

    let fetched = call(&mut stream, &fetch_request("idem", 0, 0), 12).await;
    assert_eq!(fetched.responses[0].partitions[0].high_watermark, 4, "nothing stored twice");
}

/// Markers are the coordinator's to write: a client's control batch could end or abort another
/// producer's transaction, so Produce refuses it (INVALID_RECORD) and stores nothing.
#[tokio::test]
async fn clients_cannot_produce_transaction_markers() {
    let mut stream = TcpStream::connect(start().await).await.expect("connect");
    create_topic(&mut stream, "forged").await;
    let data = produce_batch("forged", transactional_batch(9, 0, 0, 2));
    assert_eq!(call(&mut stream, &data, 9).await.responses[0].partition_responses[0].error_code, 0);
    let forged = produce_batch("forged", skiff_storage::testsuite::marker(9, 0, false));
    let refused = call(&mut stream, &forged, 9).await;
    let refused = &refused.responses[0].partition_responses[0];
    assert_eq!(refused.error_code, 87, "INVALID_RECORD");
    let fetched = call(&mut stream, &fetch_request("forged", 0, 0), 12).await;
    let partition = &fetched.responses[0].partitions[0];
    assert_eq!((partition.high_watermark, partition.last_stable_offset), (2, 0), "still open");
}

#[tokio::test]
async fn transaction_admin_apis_show_an_ongoing_transaction() {
    let mut stream = TcpStream::connect(start().await).await.expect("connect");
    create_topic(&mut stream, "txn").await;
    let tid = TransactionalId(StrBytes::from_static_str("app-1"));
    let init = call(
        &mut stream,
        &InitProducerIdRequest::default()
            .with_transactional_id(Some(tid.clone()))
            .with_transaction_timeout_ms(60_000),
        4,
    )
    .await;
    assert_eq!(init.error_code, 0);
    let (id, epoch) = (init.producer_id, init.producer_epoch);

    let add = AddPartitionsToTxnRequest::default()
        .with_v3_and_below_transactional_id(tid.clone())
        .with_v3_and_below_producer_id(id)
        .with_v3_and_below_producer_epoch(epoch)
        .with_v3_and_below_topics(vec![
            kafka_protocol::messages::add_partitions_to_txn_request::AddPartitionsToTxnTopic::default()
                .with_name(TopicName(StrBytes::from_static_str("txn")))
                .with_partitions(vec![0]),
        ]);
    let added = call(&mut stream, &add, 3).await;
    let result = &added.results_by_topic_v3_and_below[0].results_by_partition[0];
    assert_eq!(result.partition_error_code, 0);
    call(&mut stream, &produce_batch("txn", batch(2)), 9).await;
    let produced =
        call(&mut stream, &produce_batch("txn", transactional_batch(id.0, epoch, 0, 3)), 9).await;
    assert_eq!(produced.responses[0].partition_responses[0].base_offset, 2);

    let described = call(
        &mut stream,
        &DescribeTransactionsRequest::default().with_transactional_ids(vec![tid.clone()]),
        0,
    )
    .await;
    let state = &described.transaction_states[0];
    assert_eq!((state.error_code, state.transaction_state.as_str()), (0, "Ongoing"));
    assert_eq!(state.topics[0].partitions, vec![0]);
    let listed = call(&mut stream, &ListTransactionsRequest::default(), 1).await;
    assert_eq!(listed.transaction_states.len(), 1);
    assert_eq!(listed.transaction_states[0].transactional_id, tid);

    let producers = DescribeProducersRequest::default().with_topics(vec![
        kafka_protocol::messages::describe_producers_request::TopicRequest::default()
            .with_name(TopicName(StrBytes::from_static_str("txn")))
            .with_partition_indexes(vec![0]),
    ]);
    let active = call(&mut stream, &producers, 0).await;
    let producer = &active.topics[0].partitions[0].active_producers[0];
    assert_eq!((producer.producer_id, producer.current_txn_start_offset), (id, 2));
    assert_eq!(producer.last_sequence, 2);

    let end = EndTxnRequest::default()
        .with_transactional_id(tid.clone())
        .with_producer_id(id)
        .with_producer_epoch(epoch)
        .with_committed(true);
    assert_eq!(call(&mut stream, &end, 3).await.error_code, 0);
    let fetched = call(&mut stream, &fetch_request("txn", 0, 0), 12).await;
    let partition = &fetched.responses[0].partitions[0];
    assert_eq!((partition.high_watermark, partition.last_stable_offset), (6, 6), "marker at 5");
    let described = call(
        &mut stream,
        &DescribeTransactionsRequest::default().with_transactional_ids(vec![tid]),
        0,
    )
    .await;
    assert_eq!(described.transaction_states[0].transaction_state.as_str(), "CompleteCommit");
}

/// A producer-less v2 batch of (key, value) records (a None key: keyless), compressed as asked.
fn encoded_batch(
    records: &[(Option<&str>, Bytes)],
    compression: kafka_protocol::records::Compression,
) -> Bytes {
    skiff_storage::testsuite::keyed_batch(records, compression).bytes
}

/// A producer-less, uncompressed batch whose records have these keys (None: keyless).
fn batch_with_keys(keys: &[Option<&str>]) -> Bytes {
    let records: Vec<_> = keys.iter().map(|key| (*key, Bytes::from_static(b"value"))).collect();
    encoded_batch(&records, kafka_protocol::records::Compression::None)
}

/// Creates a one-partition topic with `cleanup.policy=compact`.
async fn create_compacted_topic(stream: &mut TcpStream, name: &'static str) {
    use kafka_protocol::messages::create_topics_request::{CreatableTopic, CreatableTopicConfig};
    let request = CreateTopicsRequest::default().with_topics(vec![CreatableTopic::default()
        .with_name(TopicName(StrBytes::from_static_str(name)))
        .with_num_partitions(1)
        .with_replication_factor(1)
        .with_configs(vec![CreatableTopicConfig::default()
            .with_name(StrBytes::from_static_str("cleanup.policy"))
            .with_value(Some(StrBytes::from_static_str("compact")))])]);
    assert_eq!(call(stream, &request, 7).await.topics[0].error_code, 0);
}

#[tokio::test]
async fn keyless_records_on_a_compacted_topic_are_named_in_record_errors() {
    let mut stream = TcpStream::connect(start().await).await.expect("connect");
    create_compacted_topic(&mut stream, "compacted").await;

    let mut produce = produce_request("compacted", -1, 1);
    produce.topic_data[0].partition_data[0].records =
        Some(batch_with_keys(&[Some("a"), None, Some("c"), None]));
    let response = call(&mut stream, &produce, 9).await;
    let partition = &response.responses[0].partition_responses[0];
    assert_eq!(partition.error_code, 87, "INVALID_RECORD");
    let indexes: Vec<i32> = partition.record_errors.iter().map(|e| e.batch_index).collect();
    assert_eq!(indexes, [1, 3], "exactly the keyless records");
    let message = partition.record_errors[0].batch_index_error_message.as_deref();
    assert!(message.is_some_and(|m| m.contains("without a key")), "{message:?}");
    assert!(partition.error_message.as_deref().is_some_and(|m| m.contains("2 record(s)")));

    let fetched = call(&mut stream, &fetch_request("compacted", 0, 0), 12).await;
    assert_eq!(fetched.responses[0].partitions[0].high_watermark, 0, "nothing stored");
    let mut keyed = produce_request("compacted", -1, 1);
    keyed.topic_data[0].partition_data[0].records = Some(batch_with_keys(&[Some("a")]));
    let response = call(&mut stream, &keyed, 9).await;
    assert_eq!(response.responses[0].partition_responses[0].error_code, 0);
}

#[tokio::test]
async fn an_idle_broker_exits_by_itself_only_once_no_client_is_connected() {
    let mut config = BrokerConfig::for_address("127.0.0.1:0".parse().expect("address"));
    config.idle_exit = Some(Duration::from_millis(300));
    let broker = Broker::new(skiff_storage_memory::MemoryEngine::storage(), config);
    let listeners = skiff_broker::server::bind(&broker).await.expect("bind");
    let address = listeners[0].local_addr().expect("address");
    let served = tokio::spawn(skiff_broker::serve(broker, listeners, std::future::pending()));
    let mut stream = TcpStream::connect(address).await.expect("connect");
    tokio::time::sleep(Duration::from_millis(1000)).await;
    assert!(!served.is_finished(), "a connected client keeps the broker running");
    let versions = call(&mut stream, &ApiVersionsRequest::default(), 3).await;
    assert_eq!(versions.error_code, 0);
    drop(stream);
    let outcome = tokio::time::timeout(Duration::from_secs(10), served).await;
    assert!(matches!(outcome, Ok(Ok(Ok(())))), "exits cleanly once idle: {outcome:?}");
}

#[tokio::test]
async fn a_compression_bomb_is_refused_before_it_is_inflated_whole() {
    let mut stream = TcpStream::connect(start().await).await.expect("connect");
    create_compacted_topic(&mut stream, "bombed").await;
    // 24 keyed records of 1 MiB of zeros: a few tens of KiB compressed, 24 MiB inflated.
    let zeros = Bytes::from(vec![0u8; 1024 * 1024]);
    let keys: Vec<String> = (0..24).map(|index| format!("key-{index}")).collect();
    let records: Vec<_> = keys.iter().map(|key| (Some(key.as_str()), zeros.clone())).collect();
    let bomb = encoded_batch(&records, kafka_protocol::records::Compression::Gzip);
    assert!(bomb.len() < 1024 * 1024, "under max.message.bytes: {} bytes", bomb.len());
    let mut produce = produce_request("bombed", -1, 1);
    produce.topic_data[0].partition_data[0].records = Some(bomb);
    let response = call(&mut stream, &produce, 9).await;
    let partition = &response.responses[0].partition_responses[0];
    assert_eq!(partition.error_code, 18, "RECORD_LIST_TOO_LARGE: {:?}", partition.error_message);
    let fetched = call(&mut stream, &fetch_request("bombed", 0, 0), 12).await;
    assert_eq!(fetched.responses[0].partitions[0].high_watermark, 0, "nothing stored");
}

#[tokio::test]
async fn a_shutdown_answers_a_long_polling_fetch_instead_of_waiting_it_out() {
    let metrics = Arc::new(skiff_metrics::Metrics::new());
    let config = BrokerConfig::for_address("127.0.0.1:0".parse().expect("address"));
    let storage = skiff_storage_memory::MemoryEngine::storage();
    let broker = Broker::with_metrics(storage, config, Some(metrics.clone()));
    let listeners = skiff_broker::server::bind(&broker).await.expect("bind");
    let address = listeners[0].local_addr().expect("address");
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let served = tokio::spawn(skiff_broker::serve(broker, listeners, async {
        let _ = stopped.await;
    }));
    let mut stream = TcpStream::connect(address).await.expect("connect");
    create_topic(&mut stream, "t").await;
    // A fetch that would wait ten minutes for data that never comes.
    stream.write_all(&frame(&fetch_request("t", 0, 600_000), 12, 5)).await.expect("write");
    common::until_waiting(&metrics, "Fetch", 1).await;
    let _ = stop.send(());
    let answered =
        tokio::time::timeout(Duration::from_secs(20), receive::<FetchRequest>(&mut stream, 12, 5))
            .await
            .expect("the waiting fetch is answered by the shutdown");
    assert_eq!(answered.responses[0].partitions[0].high_watermark, 0);
    let outcome = tokio::time::timeout(Duration::from_secs(20), served).await;
    assert!(matches!(outcome, Ok(Ok(Ok(())))), "the broker stops cleanly: {outcome:?}");
}

/// A request frame whose body is `body` as is: any bytes, with a valid header.
fn raw_frame(api_key: ApiKey, version: i16, correlation_id: i32, body: &[u8]) -> BytesMut {
    let header = RequestHeader::default()
        .with_request_api_key(api_key as i16)
        .with_request_api_version(version)
        .with_correlation_id(correlation_id)
        .with_client_id(Some(StrBytes::from_static_str("liar")));
    let mut payload = BytesMut::new();
    header.encode(&mut payload, MetadataRequest::header_version(version)).expect("header");
    payload.extend_from_slice(body);
    let mut framed = BytesMut::with_capacity(payload.len() + 4);
    framed.put_i32(payload.len() as i32);
    framed.extend_from_slice(&payload);
    framed
}

#[tokio::test]
async fn array_counts_beyond_the_frame_are_refused_without_reserving_memory() {
    let address = start().await;
    // Metadata v1: topics is an array with a 4-byte count; v9: a compact array (varint count).
    let lying = [
        raw_frame(ApiKey::Metadata, 1, 1, &i32::MAX.to_be_bytes()),
        raw_frame(ApiKey::Metadata, 9, 2, &[0xff, 0xff, 0xff, 0xff, 0x0f, 0, 0, 0, 0]),
    ];
    for frame in lying {
        let mut stream = TcpStream::connect(address).await.expect("connect");
        stream.write_all(&frame).await.expect("write");
        // The request cannot decode: the connection is closed, the broker lives on.
        let mut rest = Vec::new();
        let read = tokio::time::timeout(Duration::from_secs(10), stream.read_to_end(&mut rest))
            .await
            .expect("closed, not left hanging");
        assert!(matches!(read, Ok(0) | Err(_)), "no answer to a lying request: {read:?}");
    }
    let mut stream = TcpStream::connect(address).await.expect("connect");
    let versions = call(&mut stream, &ApiVersionsRequest::default(), 3).await;
    assert_eq!(versions.error_code, 0, "the broker still serves");
}
