//! Producer ids and transactions: WRITE on the transactional id for every step of a
//! transaction, WRITE (or cluster IDEMPOTENT_WRITE) for an idempotent producer's id, WRITE on
//! the topics added, READ on the group and topics whose offsets are committed, DESCRIBE to see
//! a transaction. Nothing here produces: the transaction APIs alone show each rule.

use kafka_protocol::messages::add_partitions_to_txn_request::AddPartitionsToTxnTopic;
use kafka_protocol::messages::describe_producers_request::TopicRequest;
use kafka_protocol::messages::offset_fetch_request::OffsetFetchRequestTopic;
use kafka_protocol::messages::txn_offset_commit_request::{
    TxnOffsetCommitRequestPartition, TxnOffsetCommitRequestTopic,
};
use kafka_protocol::messages::*;
use skiff_auth::acl::{Operation, PatternType, Permission, ResourceType};
use tokio::net::TcpStream;

use crate::code::*;
use crate::{call, text, Cluster};

const OPERATION_NOT_ATTEMPTED: i16 = 55;

/// A transactional producer's id and epoch.
type Producer = (ProducerId, i16);

fn tid(name: &str) -> TransactionalId {
    TransactionalId(text(name))
}

async fn init(stream: &mut TcpStream, id: Option<&str>) -> InitProducerIdResponse {
    let request = InitProducerIdRequest::default()
        .with_transactional_id(id.map(tid))
        .with_transaction_timeout_ms(60_000);
    call(stream, &request, 4).await
}

/// InitProducerId that must succeed.
async fn producer(stream: &mut TcpStream, id: &str) -> Producer {
    let init = init(stream, Some(id)).await;
    assert_eq!(init.error_code, 0, "init {id}");
    (init.producer_id, init.producer_epoch)
}

/// AddPartitionsToTxn of partition 0 of each topic: each topic's code.
async fn add_partitions(
    stream: &mut TcpStream,
    id: &str,
    (producer_id, epoch): Producer,
    topics: &[&str],
) -> Vec<(String, i16)> {
    let topics = topics
        .iter()
        .map(|name| {
            AddPartitionsToTxnTopic::default()
                .with_name(TopicName(text(name)))
                .with_partitions(vec![0])
        })
        .collect();
    let request = AddPartitionsToTxnRequest::default()
        .with_v3_and_below_transactional_id(tid(id))
        .with_v3_and_below_producer_id(producer_id)
        .with_v3_and_below_producer_epoch(epoch)
        .with_v3_and_below_topics(topics);
    let response = call(stream, &request, 3).await;
    response
        .results_by_topic_v3_and_below
        .iter()
        .map(|topic| (topic.name.to_string(), topic.results_by_partition[0].partition_error_code))
        .collect()
}

async fn end_txn(stream: &mut TcpStream, id: &str, (producer_id, epoch): Producer) -> i16 {
    let request = EndTxnRequest::default()
        .with_transactional_id(tid(id))
        .with_producer_id(producer_id)
        .with_producer_epoch(epoch)
        .with_committed(true);
    call(stream, &request, 3).await.error_code
}

/// DescribeTransactions of one id: its code, state and partitions.
async fn describe(stream: &mut TcpStream, id: &str) -> (i16, String, usize) {
    let request = DescribeTransactionsRequest::default().with_transactional_ids(vec![tid(id)]);
    let response = call(stream, &request, 0).await;
    let state = &response.transaction_states[0];
    (state.error_code, state.transaction_state.to_string(), state.topics.len())
}

/// The transactional ids ListTransactions shows, sorted.
async fn listed(stream: &mut TcpStream) -> Vec<String> {
    let response = call(stream, &ListTransactionsRequest::default(), 0).await;
    assert_eq!(response.error_code, 0);
    let mut ids: Vec<String> = response
        .transaction_states
        .iter()
        .map(|state| state.transactional_id.to_string())
        .collect();
    ids.sort();
    ids
}

#[tokio::test]
async fn transactional_init_producer_id_needs_write_on_the_transactional_id() {
    let cluster = Cluster::start().await;
    let mut alice = cluster.login("alice").await;
    let denied = init(&mut alice, Some("tx")).await;
    assert_eq!(denied.error_code, TRANSACTIONAL_ID_AUTHORIZATION_FAILED);
    assert_eq!(denied.producer_id, ProducerId(-1));
    let mut admin = cluster.login("admin").await;
    assert!(listed(&mut admin).await.is_empty(), "a denied producer is not registered");

    cluster.allow("alice", ResourceType::TransactionalId, "tx", Operation::Write).await;
    assert_eq!(init(&mut alice, Some("tx")).await.error_code, 0);
    assert_eq!(listed(&mut admin).await, ["tx"]);
}

#[tokio::test]
async fn idempotent_init_producer_id_needs_idempotent_write_or_write_on_some_topic() {
    let cluster = Cluster::start().await;
    let mut alice = cluster.login("alice").await;
    let mut bob = cluster.login("bob").await;
    assert_eq!(init(&mut alice, None).await.error_code, CLUSTER_AUTHORIZATION_FAILED);
    assert_eq!(init(&mut bob, None).await.error_code, CLUSTER_AUTHORIZATION_FAILED);
    // READ on a topic is not enough: only a producer gets a producer id.
    cluster.allow("alice", ResourceType::Topic, "a", Operation::Read).await;
    assert_eq!(init(&mut alice, None).await.error_code, CLUSTER_AUTHORIZATION_FAILED);

    cluster.allow("alice", ResourceType::Topic, "a", Operation::Write).await;
    cluster.allow("bob", ResourceType::Cluster, "kafka-cluster", Operation::IdempotentWrite).await;
    let granted = init(&mut alice, None).await;
    assert_eq!(granted.error_code, 0);
    assert!(granted.producer_id.0 >= 0);
    assert_eq!(init(&mut bob, None).await.error_code, 0);
}

#[tokio::test]
async fn add_partitions_to_txn_adds_nothing_when_one_topic_is_not_writable() {
    let cluster = Cluster::start().await;
    cluster.create_topic("a").await;
    cluster.create_topic("b").await;
    cluster.allow("alice", ResourceType::TransactionalId, "tx", Operation::Write).await;
    cluster.allow("alice", ResourceType::Topic, "a", Operation::Write).await;
    let mut alice = cluster.login("alice").await;
    let tx = producer(&mut alice, "tx").await;

    let refused = add_partitions(&mut alice, "tx", tx, &["a", "b"]).await;
    let expected =
        [("a".into(), OPERATION_NOT_ATTEMPTED), ("b".into(), TOPIC_AUTHORIZATION_FAILED)];
    assert_eq!(refused, expected);
    assert_eq!(describe(&mut alice, "tx").await, (0, "Empty".into(), 0), "nothing added");
    // Bob may write both topics but not alice's transactional id.
    cluster.allow("bob", ResourceType::Topic, "*", Operation::Write).await;
    let mut bob = cluster.login("bob").await;
    let codes = add_partitions(&mut bob, "tx", tx, &["a", "b"]).await;
    assert!(codes.iter().all(|(_, code)| *code == TRANSACTIONAL_ID_AUTHORIZATION_FAILED));

    cluster.allow("alice", ResourceType::Topic, "b", Operation::Write).await;
    let added = add_partitions(&mut alice, "tx", tx, &["a", "b"]).await;
    assert_eq!(added, [("a".into(), 0), ("b".into(), 0)]);
    assert_eq!(describe(&mut alice, "tx").await, (0, "Ongoing".into(), 2));
}

#[tokio::test]
async fn transactional_offsets_need_read_on_the_group_and_are_kept_for_readable_topics() {
    let cluster = Cluster::start().await;
    cluster.allow("alice", ResourceType::TransactionalId, "tx", Operation::Write).await;
    cluster.allow("alice", ResourceType::Topic, "a", Operation::Read).await;
    let mut alice = cluster.login("alice").await;
    let tx = producer(&mut alice, "tx").await;
    let add_offsets = AddOffsetsToTxnRequest::default()
        .with_transactional_id(tid("tx"))
        .with_producer_id(tx.0)
        .with_producer_epoch(tx.1)
        .with_group_id(GroupId(text("g")));
    let commit = TxnOffsetCommitRequest::default()
        .with_transactional_id(tid("tx"))
        .with_group_id(GroupId(text("g")))
        .with_producer_id(tx.0)
        .with_producer_epoch(tx.1)
        .with_topics(["a", "b"].map(offset_of(5)).to_vec());
    let codes = |response: TxnOffsetCommitResponse| -> Vec<i16> {
        response.topics.iter().map(|topic| topic.partitions[0].error_code).collect()
    };

    assert_eq!(call(&mut alice, &add_offsets, 1).await.error_code, GROUP_AUTHORIZATION_FAILED);
    assert_eq!(describe(&mut alice, "tx").await.1, "Empty", "no transaction was started");
    let refused = codes(call(&mut alice, &commit, 2).await);
    assert_eq!(refused, [GROUP_AUTHORIZATION_FAILED; 2]);

    cluster.allow("alice", ResourceType::Group, "g", Operation::Read).await;
    assert_eq!(call(&mut alice, &add_offsets, 1).await.error_code, 0);
    // Bob may read the group and topics but not write to alice's transaction.
    cluster.allow("bob", ResourceType::Group, "g", Operation::Read).await;
    cluster.allow("bob", ResourceType::Topic, "*", Operation::Read).await;
    let mut bob = cluster.login("bob").await;
    let code = call(&mut bob, &add_offsets, 1).await.error_code;
    assert_eq!(code, TRANSACTIONAL_ID_AUTHORIZATION_FAILED);
    let refused = codes(call(&mut bob, &commit, 2).await);
    assert_eq!(refused, [TRANSACTIONAL_ID_AUTHORIZATION_FAILED; 2]);
    let committed = codes(call(&mut alice, &commit, 2).await);
    assert_eq!(committed, [0, TOPIC_AUTHORIZATION_FAILED]);
    assert_eq!(end_txn(&mut alice, "tx", tx).await, 0);
    let mut admin = cluster.login("admin").await;
    let fetch = OffsetFetchRequest::default().with_group_id(GroupId(text("g"))).with_topics(Some(
        ["a", "b"]
            .map(|name| {
                OffsetFetchRequestTopic::default()
                    .with_name(TopicName(text(name)))
                    .with_partition_indexes(vec![0])
            })
            .to_vec(),
    ));
    let fetched = call(&mut admin, &fetch, 5).await;
    let offsets: Vec<i64> =
        fetched.topics.iter().map(|topic| topic.partitions[0].committed_offset).collect();
    assert_eq!(offsets, [5, -1], "only the readable topic's offset is committed");
}

/// Partition 0 of `topic` at `offset`, for TxnOffsetCommit.
fn offset_of(offset: i64) -> impl Fn(&str) -> TxnOffsetCommitRequestTopic {
    move |topic| {
        TxnOffsetCommitRequestTopic::default().with_name(TopicName(text(topic))).with_partitions(
            vec![TxnOffsetCommitRequestPartition::default()
                .with_partition_index(0)
                .with_committed_offset(offset)],
        )
    }
}

#[tokio::test]
async fn only_the_owner_of_a_transactional_id_ends_or_describes_its_transaction() {
    let cluster = Cluster::start().await;
    cluster.create_topic("a").await;
    cluster.allow("alice", ResourceType::TransactionalId, "tx", Operation::Write).await;
    cluster.allow("alice", ResourceType::Topic, "a", Operation::Write).await;
    let mut alice = cluster.login("alice").await;
    let tx = producer(&mut alice, "tx").await;
    assert_eq!(add_partitions(&mut alice, "tx", tx, &["a"]).await, [("a".into(), 0)]);

    let mut bob = cluster.login("bob").await;
    assert_eq!(end_txn(&mut bob, "tx", tx).await, TRANSACTIONAL_ID_AUTHORIZATION_FAILED);
    let hidden = describe(&mut bob, "tx").await;
    assert_eq!(hidden, (TRANSACTIONAL_ID_AUTHORIZATION_FAILED, String::new(), 0));
    assert_eq!(describe(&mut alice, "tx").await, (0, "Ongoing".into(), 1), "still open");

    assert_eq!(end_txn(&mut alice, "tx", tx).await, 0);
    assert_eq!(describe(&mut alice, "tx").await.1, "CompleteCommit");
}

#[tokio::test]
async fn list_transactions_shows_the_ids_the_principal_may_describe() {
    let cluster = Cluster::start().await;
    let transactional_id = ResourceType::TransactionalId;
    let prefixed = PatternType::Prefixed;
    cluster
        .add("alice", transactional_id, "alice-", prefixed, Operation::Write, Permission::Allow)
        .await;
    // WRITE implies DESCRIBE.
    cluster.allow("bob", transactional_id, "bob-1", Operation::Write).await;
    let mut alice = cluster.login("alice").await;
    let mut bob = cluster.login("bob").await;
    producer(&mut alice, "alice-1").await;
    producer(&mut alice, "alice-2").await;
    producer(&mut bob, "bob-1").await;
    let outside = init(&mut alice, Some("bob-1")).await;
    assert_eq!(outside.error_code, TRANSACTIONAL_ID_AUTHORIZATION_FAILED, "not under the prefix");

    assert_eq!(listed(&mut alice).await, ["alice-1", "alice-2"]);
    assert_eq!(listed(&mut bob).await, ["bob-1"]);
    let mut admin = cluster.login("admin").await;
    assert_eq!(listed(&mut admin).await, ["alice-1", "alice-2", "bob-1"]);
}

#[tokio::test]
async fn describe_producers_needs_read_on_the_topic() {
    let cluster = Cluster::start().await;
    cluster.create_topic("a").await;
    let request = DescribeProducersRequest::default().with_topics(vec![TopicRequest::default()
        .with_name(TopicName(text("a")))
        .with_partition_indexes(vec![0])]);
    let mut alice = cluster.login("alice").await;
    let denied = call(&mut alice, &request, 0).await;
    assert_eq!(denied.topics[0].partitions[0].error_code, TOPIC_AUTHORIZATION_FAILED);

    cluster.allow("alice", ResourceType::Topic, "a", Operation::Read).await;
    let described = call(&mut alice, &request, 0).await;
    assert_eq!(described.topics[0].partitions[0].error_code, 0);
}
