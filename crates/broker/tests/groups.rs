//! Consumer-group APIs at the protocol level, over the memory engine: every version of each
//! API encodes and decodes (the codec refuses fields a version does not have), a group formed
//! through one broker is synced and heartbeated through another on the same storage, and the
//! offset APIs' per-partition rules.

mod common;

use bytes::{BufMut, Bytes, BytesMut};
use kafka_protocol::messages::create_topics_request::CreatableTopic;
use kafka_protocol::messages::join_group_request::JoinGroupRequestProtocol;
use kafka_protocol::messages::leave_group_request::MemberIdentity;
use kafka_protocol::messages::offset_commit_request::{
    OffsetCommitRequestPartition, OffsetCommitRequestTopic,
};
use kafka_protocol::messages::offset_delete_request::{
    OffsetDeleteRequestPartition, OffsetDeleteRequestTopic,
};
use kafka_protocol::messages::offset_fetch_request::{
    OffsetFetchRequestGroup, OffsetFetchRequestTopic, OffsetFetchRequestTopics,
};
use kafka_protocol::messages::sync_group_request::SyncGroupRequestAssignment;
use kafka_protocol::messages::*;
use kafka_protocol::protocol::{Decodable, Encodable, HeaderVersion, Message, Request, StrBytes};
use skiff_broker::{Broker, BrokerConfig};
use skiff_storage::Storage;
use std::sync::Arc;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

const NONE: i16 = 0;
const UNKNOWN_TOPIC_OR_PARTITION: i16 = 3;
const OFFSET_METADATA_TOO_LARGE: i16 = 12;
const ILLEGAL_GENERATION: i16 = 22;
const UNKNOWN_MEMBER_ID: i16 = 25;
const REBALANCE_IN_PROGRESS: i16 = 27;
const INVALID_REQUEST: i16 = 42;
const NON_EMPTY_GROUP: i16 = 68;
const MEMBER_ID_REQUIRED: i16 = 79;
const FENCED_INSTANCE_ID: i16 = 82;
const GROUP_SUBSCRIBED_TO_TOPIC: i16 = 86;

/// What the brokers here tell clients to connect to (they are reached by their real address).
const ADVERTISED_HOST: &str = "coordinator.test";
const ADVERTISED_PORT: i32 = 19092;

async fn start_on(storage: Storage) -> std::net::SocketAddr {
    start_measured(storage, Arc::new(skiff_metrics::Metrics::new())).await
}

/// A broker on `storage` recording into `metrics`, for tests that wait on its gauges.
async fn start_measured(
    storage: Storage,
    metrics: Arc<skiff_metrics::Metrics>,
) -> std::net::SocketAddr {
    let mut config = BrokerConfig::for_address("127.0.0.1:0".parse().expect("address"));
    config.group_initial_rebalance_delay_ms = 0;
    config.listeners[0].advertised_host = ADVERTISED_HOST.to_owned();
    config.listeners[0].advertised_port = ADVERTISED_PORT;
    let broker = Broker::with_metrics(storage, config, Some(metrics));
    common::serve(broker).await
}

async fn connect(address: std::net::SocketAddr) -> TcpStream {
    TcpStream::connect(address).await.expect("connect")
}

async fn call<R: Request>(stream: &mut TcpStream, request: &R, version: i16) -> R::Response {
    let header = RequestHeader::default()
        .with_request_api_key(R::KEY)
        .with_request_api_version(version)
        .with_correlation_id(1)
        .with_client_id(Some(StrBytes::from_static_str("test")));
    let mut body = BytesMut::new();
    header.encode(&mut body, R::header_version(version)).expect("header");
    request.encode(&mut body, version).expect("body");
    let mut framed = BytesMut::new();
    framed.put_i32(body.len() as i32);
    framed.extend_from_slice(&body);
    stream.write_all(&framed).await.expect("write");
    let length = stream.read_i32().await.expect("length");
    let mut bytes = vec![0; length as usize];
    stream.read_exact(&mut bytes).await.expect("body");
    let mut bytes = Bytes::from(bytes);
    ResponseHeader::decode(&mut bytes, R::Response::header_version(version)).expect("header");
    R::Response::decode(&mut bytes, version).expect("response")
}

fn text(value: &str) -> StrBytes {
    StrBytes::from_string(value.to_owned())
}

fn group(id: &str) -> GroupId {
    GroupId(text(id))
}

async fn create_topic(stream: &mut TcpStream, name: &str, partitions: i32) {
    let request = CreateTopicsRequest::default().with_topics(vec![CreatableTopic::default()
        .with_name(TopicName(text(name)))
        .with_num_partitions(partitions)
        .with_replication_factor(1)]);
    assert_eq!(call(stream, &request, 7).await.topics[0].error_code, NONE);
}

/// Consumer-protocol metadata subscribing to `topics` (version 0 of the subscription).
fn subscription(topics: &[&str]) -> Bytes {
    let mut metadata = BytesMut::new();
    metadata.put_i16(0);
    ConsumerProtocolSubscription::default()
        .with_topics(topics.iter().map(|topic| text(topic)).collect())
        .encode(&mut metadata, 0)
        .expect("subscription");
    metadata.freeze()
}

fn join_request(group_id: &str, member_id: &str, instance: Option<&str>) -> JoinGroupRequest {
    JoinGroupRequest::default()
        .with_group_id(group(group_id))
        .with_session_timeout_ms(10_000)
        .with_rebalance_timeout_ms(10_000)
        .with_member_id(text(member_id))
        .with_group_instance_id(instance.map(text))
        .with_protocol_type(text("consumer"))
        .with_protocols(vec![JoinGroupRequestProtocol::default()
            .with_name(text("range"))
            .with_metadata(subscription(&["orders"]))])
}

/// Joins a one-member group with JoinGroup `version`, going through MEMBER_ID_REQUIRED where
/// the version has it; returns (member id, generation).
async fn join_alone(stream: &mut TcpStream, version: i16, group_id: &str) -> (String, i32) {
    let instance = (version >= 5).then_some("instance-1");
    let mut response = call(stream, &join_request(group_id, "", instance), version).await;
    if response.error_code == MEMBER_ID_REQUIRED {
        assert!(version >= 4 && instance.is_none());
        let member_id = response.member_id.to_string();
        response = call(stream, &join_request(group_id, &member_id, instance), version).await;
    }
    assert_eq!(response.error_code, NONE, "JoinGroup v{version}");
    assert_eq!(response.leader, response.member_id, "a lone member leads");
    assert_eq!(response.members.len(), 1);
    if version >= 7 {
        assert_eq!(response.protocol_type.as_deref(), Some("consumer"));
    }
    assert_eq!(response.protocol_name.as_deref(), Some("range"));
    (response.member_id.to_string(), response.generation_id)
}

fn sync_request(
    group_id: &str,
    member_id: &str,
    generation: i32,
    assignment: &'static [u8],
) -> SyncGroupRequest {
    SyncGroupRequest::default()
        .with_group_id(group(group_id))
        .with_generation_id(generation)
        .with_member_id(text(member_id))
        .with_assignments(vec![SyncGroupRequestAssignment::default()
            .with_member_id(text(member_id))
            .with_assignment(Bytes::from_static(assignment))])
}

/// A leader's SyncGroup assignments for a two-member group: `L` for itself, `F` for the other.
fn leader_and_follower(leader: &str, follower: &str) -> Vec<SyncGroupRequestAssignment> {
    [(leader, b"L"), (follower, b"F")]
        .into_iter()
        .map(|(member_id, assignment)| {
            SyncGroupRequestAssignment::default()
                .with_member_id(text(member_id))
                .with_assignment(Bytes::from_static(assignment))
        })
        .collect()
}

#[tokio::test]
async fn every_version_of_the_membership_apis_round_trips() {
    let mut stream = connect(start_on(skiff_storage_memory::MemoryEngine::storage()).await).await;
    for version in JoinGroupRequest::VERSIONS.min..=JoinGroupRequest::VERSIONS.max {
        let group_id = format!("join-v{version}");
        let (member_id, generation) = join_alone(&mut stream, version, &group_id).await;
        let sync_version = version.min(SyncGroupRequest::VERSIONS.max);
        let synced = call(
            &mut stream,
            &sync_request(&group_id, &member_id, generation, b"mine"),
            sync_version,
        )
        .await;
        assert_eq!(
            (synced.error_code, &synced.assignment[..]),
            (NONE, &b"mine"[..]),
            "SyncGroup v{sync_version}"
        );
        let heartbeat_version = version.min(HeartbeatRequest::VERSIONS.max);
        let heartbeat = HeartbeatRequest::default()
            .with_group_id(group(&group_id))
            .with_generation_id(generation)
            .with_member_id(text(&member_id));
        assert_eq!(call(&mut stream, &heartbeat, heartbeat_version).await.error_code, NONE);
        let stale = heartbeat.clone().with_generation_id(generation - 1);
        assert_eq!(
            call(&mut stream, &stale, heartbeat_version).await.error_code,
            ILLEGAL_GENERATION
        );
        let leave_version = version.min(LeaveGroupRequest::VERSIONS.max);
        let leave = if leave_version >= 3 {
            LeaveGroupRequest::default()
                .with_group_id(group(&group_id))
                .with_members(vec![MemberIdentity::default().with_member_id(text(&member_id))])
        } else {
            LeaveGroupRequest::default()
                .with_group_id(group(&group_id))
                .with_member_id(text(&member_id))
        };
        let left = call(&mut stream, &leave, leave_version).await;
        assert_eq!(left.error_code, NONE, "LeaveGroup v{leave_version}");
        if leave_version >= 3 {
            assert_eq!(left.members[0].error_code, NONE);
        }
        let gone = call(&mut stream, &heartbeat, heartbeat_version).await;
        assert_eq!(gone.error_code, UNKNOWN_MEMBER_ID);
    }
}

#[tokio::test]
async fn a_group_joined_on_one_broker_syncs_and_heartbeats_on_another() {
    let storage = skiff_storage_memory::MemoryEngine::storage();
    let metrics = Arc::new(skiff_metrics::Metrics::new());
    let mut first = connect(start_on(storage.clone()).await).await;
    let mut second = connect(start_measured(storage, metrics.clone()).await).await;
    let (leader, generation) = join_alone(&mut first, 5, "shared").await;

    // A second member joins through the other broker; its JoinGroup waits for the leader.
    let joining = tokio::spawn(async move {
        let response = call(&mut second, &join_request("shared", "", Some("instance-2")), 5).await;
        (second, response)
    });
    common::until_waiting(&metrics, "JoinGroup", 1).await;
    let heartbeat = HeartbeatRequest::default()
        .with_group_id(group("shared"))
        .with_generation_id(generation)
        .with_member_id(text(&leader))
        .with_group_instance_id(Some(text("instance-1")));
    assert_eq!(call(&mut first, &heartbeat, 4).await.error_code, REBALANCE_IN_PROGRESS);
    let rejoined = call(&mut first, &join_request("shared", &leader, Some("instance-1")), 5).await;
    assert_eq!((rejoined.error_code, rejoined.members.len()), (NONE, 2));
    let (mut second, follower) = joining.await.expect("join task");
    assert_eq!((follower.error_code, follower.generation_id), (NONE, rejoined.generation_id));
    assert!(follower.members.is_empty());

    // The follower's SyncGroup on the second broker waits for the leader's on the first.
    let follower_id = follower.member_id.to_string();
    let generation = rejoined.generation_id;
    let sync = sync_request("shared", &follower_id, generation, b"");
    let waiting = tokio::spawn(async move { (call(&mut second, &sync, 3).await, second) });
    common::until_waiting(&metrics, "SyncGroup", 1).await;
    let assignments = leader_and_follower(&leader, &follower_id);
    let leader_sync =
        sync_request("shared", &leader, generation, b"").with_assignments(assignments);
    assert_eq!(&call(&mut first, &leader_sync, 3).await.assignment[..], b"L");
    let (synced, mut second) = waiting.await.expect("sync task");
    assert_eq!((synced.error_code, &synced.assignment[..]), (NONE, &b"F"[..]));
    let follower_heartbeat = HeartbeatRequest::default()
        .with_group_id(group("shared"))
        .with_generation_id(generation)
        .with_member_id(text(&follower_id));
    assert_eq!(call(&mut second, &follower_heartbeat, 4).await.error_code, NONE);

    // The first static member restarts through the second broker: no rebalance, old id fenced.
    let restarted = call(&mut second, &join_request("shared", "", Some("instance-1")), 5).await;
    assert_eq!((restarted.error_code, restarted.generation_id), (NONE, generation));
    assert_eq!(
        call(&mut first, &heartbeat.with_generation_id(generation), 4).await.error_code,
        FENCED_INSTANCE_ID
    );
    assert_eq!(call(&mut second, &follower_heartbeat, 4).await.error_code, NONE);
}

/// A follower's SyncGroup for a generation whose assignment the leader stored must get it even
/// when the storage is so slow that the leader has already rejoined for its next (incremental)
/// round before that SyncGroup reads the group. The slow moment is made exact with a gate on
/// the follower's broker's state reads.
#[tokio::test]
async fn a_slow_follower_sync_gets_its_assignment_after_the_leader_rejoined() {
    let storage = skiff_storage_memory::MemoryEngine::storage();
    let gate = skiff_storage::testsuite::Gate::default();
    let fast = start_on(storage.clone()).await;
    let mut first = connect(fast).await;
    let mut watcher = connect(fast).await;
    let mut second =
        connect(start_on(skiff_storage::testsuite::gated(storage, gate.clone())).await).await;
    let (leader, generation) = join_alone(&mut first, 5, "slow").await;
    let joining = tokio::spawn(async move {
        let response = call(&mut second, &join_request("slow", "", Some("instance-2")), 5).await;
        (second, response)
    });
    let heartbeat = HeartbeatRequest::default()
        .with_group_id(group("slow"))
        .with_generation_id(generation)
        .with_member_id(text(&leader))
        .with_group_instance_id(Some(text("instance-1")));
    while call(&mut first, &heartbeat, 4).await.error_code != REBALANCE_IN_PROGRESS {
        tokio::time::sleep(std::time::Duration::from_millis(10)).await;
    }
    let leader_join = join_request("slow", &leader, Some("instance-1"));
    let rejoined = call(&mut first, &leader_join, 5).await;
    let (mut second, follower) = joining.await.expect("join task");
    let generation = rejoined.generation_id;
    assert_eq!((follower.error_code, follower.generation_id), (NONE, generation));
    let follower_id = follower.member_id.to_string();

    // The follower's SyncGroup is held at its first read of the group.
    gate.close();
    let sync = sync_request("slow", &follower_id, generation, b"");
    let waiting = tokio::spawn(async move { call(&mut second, &sync, 3).await });
    gate.wait_held(1).await;

    // Meanwhile the leader stores the assignment and at once rejoins for a second round.
    let assignments = leader_and_follower(&leader, &follower_id);
    let leader_sync = sync_request("slow", &leader, generation, b"").with_assignments(assignments);
    assert_eq!(&call(&mut first, &leader_sync, 3).await.assignment[..], b"L");
    let _second_round = tokio::spawn(async move { call(&mut first, &leader_join, 5).await });
    let describe = DescribeGroupsRequest::default().with_groups(vec![group("slow")]);
    while call(&mut watcher, &describe, 5).await.groups[0].group_state.as_str()
        != "PreparingRebalance"
    {
        tokio::time::sleep(std::time::Duration::from_millis(10)).await;
    }

    gate.open();
    let synced = waiting.await.expect("sync task");
    assert_eq!((synced.error_code, &synced.assignment[..]), (NONE, &b"F"[..]));
}

#[tokio::test]
async fn find_coordinator_names_this_broker_for_groups_and_transactions() {
    let mut stream = connect(start_on(skiff_storage_memory::MemoryEngine::storage()).await).await;
    for version in 0..=3 {
        let request = FindCoordinatorRequest::default().with_key(text("g"));
        let response = call(&mut stream, &request, version).await;
        assert_eq!((response.error_code, response.port), (NONE, ADVERTISED_PORT));
        assert_eq!(response.host.as_str(), ADVERTISED_HOST);
    }
    for version in 4..=FindCoordinatorRequest::VERSIONS.max {
        let request =
            FindCoordinatorRequest::default().with_coordinator_keys(vec![text("a"), text("b")]);
        let groups = call(&mut stream, &request, version).await;
        assert_eq!(groups.coordinators.len(), 2);
        assert!(groups
            .coordinators
            .iter()
            .all(|c| c.error_code == NONE && c.port == ADVERTISED_PORT));
        assert_eq!(groups.coordinators[1].key.as_str(), "b");
        let transactions = call(&mut stream, &request.clone().with_key_type(1), version).await;
        assert!(transactions.coordinators.iter().all(|c| c.error_code == NONE));
        let unknown = call(&mut stream, &request.with_key_type(7), version).await;
        assert!(unknown.coordinators.iter().all(|c| c.error_code == INVALID_REQUEST));
    }
}

fn commit_request(
    group_id: &str,
    topic: &str,
    partition: i32,
    offset: i64,
    metadata: &str,
) -> OffsetCommitRequest {
    OffsetCommitRequest::default()
        .with_group_id(group(group_id))
        .with_generation_id_or_member_epoch(-1)
        .with_topics(vec![OffsetCommitRequestTopic::default()
            .with_name(TopicName(text(topic)))
            .with_partitions(vec![OffsetCommitRequestPartition::default()
                .with_partition_index(partition)
                .with_committed_offset(offset)
                .with_committed_metadata(Some(text(metadata)))])])
}

#[tokio::test]
async fn offsets_commit_and_fetch_in_every_version() {
    let mut stream = connect(start_on(skiff_storage_memory::MemoryEngine::storage()).await).await;
    create_topic(&mut stream, "orders", 2).await;
    for version in OffsetCommitRequest::VERSIONS.min..=OffsetCommitRequest::VERSIONS.max {
        let group_id = format!("commit-v{version}");
        let response =
            call(&mut stream, &commit_request(&group_id, "orders", 1, 42, "meta"), version).await;
        assert_eq!(response.topics[0].partitions[0].error_code, NONE, "OffsetCommit v{version}");
        let unknown =
            call(&mut stream, &commit_request(&group_id, "orders", 9, 1, ""), version).await;
        assert_eq!(unknown.topics[0].partitions[0].error_code, UNKNOWN_TOPIC_OR_PARTITION);
        let large = call(
            &mut stream,
            &commit_request(&group_id, "orders", 0, 1, &"m".repeat(4097)),
            version,
        )
        .await;
        assert_eq!(large.topics[0].partitions[0].error_code, OFFSET_METADATA_TOO_LARGE);
    }
    for version in OffsetFetchRequest::VERSIONS.min..=OffsetFetchRequest::VERSIONS.max {
        let groups = ["commit-v2", "commit-v9"];
        let found: Vec<Vec<(i32, i64, String)>> = if version >= 8 {
            let request = OffsetFetchRequest::default().with_groups(
                groups
                    .iter()
                    .map(|id| {
                        OffsetFetchRequestGroup::default().with_group_id(group(id)).with_topics(
                            Some(vec![OffsetFetchRequestTopics::default()
                                .with_name(TopicName(text("orders")))
                                .with_partition_indexes(vec![0, 1])]),
                        )
                    })
                    .collect(),
            );
            let response = call(&mut stream, &request, version).await;
            response
                .groups
                .iter()
                .map(|answer| {
                    assert_eq!(answer.error_code, NONE);
                    answer.topics[0]
                        .partitions
                        .iter()
                        .map(|p| {
                            (
                                p.partition_index,
                                p.committed_offset,
                                p.metadata.as_deref().unwrap_or("").to_owned(),
                            )
                        })
                        .collect()
                })
                .collect()
        } else {
            let mut found = Vec::new();
            for id in groups {
                let request =
                    OffsetFetchRequest::default().with_group_id(group(id)).with_topics(Some(vec![
                        OffsetFetchRequestTopic::default()
                            .with_name(TopicName(text("orders")))
                            .with_partition_indexes(vec![0, 1]),
                    ]));
                let response = call(&mut stream, &request, version).await;
                found.push(
                    response.topics[0]
                        .partitions
                        .iter()
                        .map(|p| {
                            (
                                p.partition_index,
                                p.committed_offset,
                                p.metadata.as_deref().unwrap_or("").to_owned(),
                            )
                        })
                        .collect(),
                );
            }
            found
        };
        let expected = vec![(0, -1, String::new()), (1, 42, "meta".to_owned())];
        assert_eq!(found, vec![expected.clone(), expected], "OffsetFetch v{version}");
    }
    // Null topics: every committed partition.
    let all = OffsetFetchRequest::default().with_group_id(group("commit-v3")).with_topics(None);
    let response = call(&mut stream, &all, 7).await;
    assert_eq!(response.topics.len(), 1);
    assert_eq!(response.topics[0].partitions.len(), 1);
}

#[tokio::test]
async fn offsets_of_a_subscribed_topic_cannot_be_deleted_and_active_groups_stay() {
    let mut stream = connect(start_on(skiff_storage_memory::MemoryEngine::storage()).await).await;
    create_topic(&mut stream, "orders", 1).await;
    create_topic(&mut stream, "other", 1).await;
    for topic in ["orders", "other"] {
        let response = call(&mut stream, &commit_request("active", topic, 0, 5, ""), 8).await;
        assert_eq!(response.topics[0].partitions[0].error_code, NONE);
    }
    let (member_id, generation) = join_alone(&mut stream, 9, "active").await;
    let synced = call(&mut stream, &sync_request("active", &member_id, generation, b""), 5).await;
    assert_eq!(synced.error_code, NONE);

    let delete = OffsetDeleteRequest::default().with_group_id(group("active")).with_topics(
        ["orders", "other"]
            .iter()
            .map(|topic| {
                OffsetDeleteRequestTopic::default()
                    .with_name(TopicName(text(topic)))
                    .with_partitions(vec![
                        OffsetDeleteRequestPartition::default().with_partition_index(0)
                    ])
            })
            .collect(),
    );
    let response = call(&mut stream, &delete, 0).await;
    assert_eq!(response.error_code, NONE);
    let codes: Vec<i16> = response.topics.iter().map(|t| t.partitions[0].error_code).collect();
    assert_eq!(codes, [GROUP_SUBSCRIBED_TO_TOPIC, NONE]);

    let deleting = DeleteGroupsRequest::default().with_groups_names(vec![group("active")]);
    assert_eq!(call(&mut stream, &deleting, 2).await.results[0].error_code, NON_EMPTY_GROUP);

    for version in DescribeGroupsRequest::VERSIONS.min..=DescribeGroupsRequest::VERSIONS.max {
        let request = DescribeGroupsRequest::default().with_groups(vec![group("active")]);
        let described = &call(&mut stream, &request, version).await.groups[0];
        assert_eq!((described.error_code, described.group_state.as_str()), (NONE, "Stable"));
        assert_eq!(described.members.len(), 1);
        assert_eq!(described.members[0].client_id.as_str(), "test");
    }
    for version in ListGroupsRequest::VERSIONS.min..=ListGroupsRequest::VERSIONS.max {
        let listed = call(&mut stream, &ListGroupsRequest::default(), version).await;
        assert_eq!(listed.groups.len(), 1, "ListGroups v{version}");
        assert_eq!(listed.groups[0].protocol_type.as_str(), "consumer");
    }
    let empty_only = ListGroupsRequest::default().with_states_filter(vec![text("Empty")]);
    assert!(call(&mut stream, &empty_only, 4).await.groups.is_empty());
}

#[tokio::test]
async fn a_waiting_join_is_handed_to_another_broker_when_this_one_stops() {
    const NOT_COORDINATOR: i16 = 16;
    let storage = skiff_storage_memory::MemoryEngine::storage();
    let mut config = BrokerConfig::for_address("127.0.0.1:0".parse().expect("address"));
    config.group_initial_rebalance_delay_ms = 0;
    let metrics = Arc::new(skiff_metrics::Metrics::new());
    let broker = Broker::with_metrics(storage.clone(), config, Some(metrics.clone()));
    let listeners = skiff_broker::server::bind(&broker).await.expect("bind");
    let address = listeners[0].local_addr().expect("address");
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let server = tokio::spawn(skiff_broker::serve(broker, listeners, async {
        let _ = stopped.await;
    }));
    let mut first = connect(address).await;
    let (leader, _) = join_alone(&mut first, 5, "handover").await;
    let mut second = connect(address).await;
    let joining = tokio::spawn(async move {
        call(&mut second, &join_request("handover", "", Some("instance-2")), 5).await
    });
    common::until_waiting(&metrics, "JoinGroup", 1).await;
    let _ = stop.send(());
    let answer = tokio::time::timeout(std::time::Duration::from_secs(5), joining)
        .await
        .expect("the waiting join ends with the broker")
        .expect("join task");
    assert_eq!(answer.error_code, NOT_COORDINATOR);
    tokio::time::timeout(std::time::Duration::from_secs(5), server)
        .await
        .expect("shutdown is not held up")
        .expect("server task")
        .expect("serve");

    // Its membership is in storage: the member carries on through another broker.
    let mut other = connect(start_on(storage).await).await;
    let rejoined =
        call(&mut other, &join_request("handover", &leader, Some("instance-1")), 5).await;
    assert_eq!((rejoined.error_code, rejoined.members.len()), (NONE, 2));
}

#[tokio::test]
async fn transactional_offset_commits_are_checked_against_the_group() {
    use kafka_protocol::messages::txn_offset_commit_request::{
        TxnOffsetCommitRequestPartition, TxnOffsetCommitRequestTopic,
    };
    let mut stream = connect(start_on(skiff_storage_memory::MemoryEngine::storage()).await).await;
    create_topic(&mut stream, "orders", 1).await;
    let (member_id, generation) = join_alone(&mut stream, 5, "txn-group").await;
    let commit = |member: &str, generation: i32| {
        TxnOffsetCommitRequest::default()
            .with_transactional_id(TransactionalId(text("txn")))
            .with_group_id(group("txn-group"))
            .with_producer_id(ProducerId(1))
            .with_producer_epoch(0)
            .with_generation_id(generation)
            .with_member_id(text(member))
            .with_topics(vec![TxnOffsetCommitRequestTopic::default()
                .with_name(TopicName(text("orders")))
                .with_partitions(vec![TxnOffsetCommitRequestPartition::default()
                    .with_partition_index(0)
                    .with_committed_offset(1)])])
    };
    let code = |response: TxnOffsetCommitResponse| response.topics[0].partitions[0].error_code;
    assert_eq!(code(call(&mut stream, &commit("ghost", generation), 3).await), UNKNOWN_MEMBER_ID);
    assert_eq!(
        code(call(&mut stream, &commit(&member_id, generation + 1), 3).await),
        ILLEGAL_GENERATION
    );
    // Past the group checks, the transaction's own checks answer (no such transaction here).
    let unchecked = code(call(&mut stream, &commit(&member_id, generation), 3).await);
    assert!(![NONE, UNKNOWN_MEMBER_ID, ILLEGAL_GENERATION].contains(&unchecked), "{unchecked}");
    // Before v3 nothing names the member: only the transaction is checked.
    assert_eq!(code(call(&mut stream, &commit("", -1), 2).await), unchecked);
}

#[tokio::test]
async fn offsets_an_open_transaction_holds_are_unstable_for_read_committed_consumers() {
    use kafka_protocol::messages::txn_offset_commit_request::{
        TxnOffsetCommitRequestPartition, TxnOffsetCommitRequestTopic,
    };
    const UNSTABLE_OFFSET_COMMIT: i16 = 88;
    let mut stream = connect(start_on(skiff_storage_memory::MemoryEngine::storage()).await).await;
    create_topic(&mut stream, "orders", 1).await;
    let txn = TransactionalId(text("stable-txn"));
    let init = InitProducerIdRequest::default()
        .with_transactional_id(Some(txn.clone()))
        .with_transaction_timeout_ms(60_000);
    let init = call(&mut stream, &init, 4).await;
    assert_eq!(init.error_code, NONE);
    let (producer_id, epoch) = (init.producer_id, init.producer_epoch);
    let add = AddOffsetsToTxnRequest::default()
        .with_transactional_id(txn.clone())
        .with_producer_id(producer_id)
        .with_producer_epoch(epoch)
        .with_group_id(group("stable"));
    assert_eq!(call(&mut stream, &add, 3).await.error_code, NONE);
    let commit = TxnOffsetCommitRequest::default()
        .with_transactional_id(txn.clone())
        .with_group_id(group("stable"))
        .with_producer_id(producer_id)
        .with_producer_epoch(epoch)
        .with_topics(vec![TxnOffsetCommitRequestTopic::default()
            .with_name(TopicName(text("orders")))
            .with_partitions(vec![TxnOffsetCommitRequestPartition::default()
                .with_partition_index(0)
                .with_committed_offset(7)])]);
    let committed = call(&mut stream, &commit, 3).await;
    assert_eq!(committed.topics[0].partitions[0].error_code, NONE);

    let fetch = |require_stable: bool| {
        OffsetFetchRequest::default()
            .with_group_id(group("stable"))
            .with_topics(Some(vec![OffsetFetchRequestTopic::default()
                .with_name(TopicName(text("orders")))
                .with_partition_indexes(vec![0])]))
            .with_require_stable(require_stable)
    };
    let answer = |response: OffsetFetchResponse| {
        let partition = &response.topics[0].partitions[0];
        (partition.error_code, partition.committed_offset)
    };
    assert_eq!(answer(call(&mut stream, &fetch(true), 7).await), (UNSTABLE_OFFSET_COMMIT, -1));
    assert_eq!(answer(call(&mut stream, &fetch(false), 7).await), (NONE, -1));

    let end = EndTxnRequest::default()
        .with_transactional_id(txn)
        .with_producer_id(producer_id)
        .with_producer_epoch(epoch)
        .with_committed(true);
    assert_eq!(call(&mut stream, &end, 3).await.error_code, NONE);
    assert_eq!(answer(call(&mut stream, &fetch(true), 7).await), (NONE, 7));
}

const INCONSISTENT_GROUP_PROTOCOL: i16 = 23;
const UNSUPPORTED_VERSION: i16 = 35;
const GROUP_ID_NOT_FOUND: i16 = 69;
const FENCED_MEMBER_EPOCH: i16 = 110;
const STALE_MEMBER_EPOCH: i16 = 113;

/// A ConsumerGroupHeartbeat that joins `group_id` subscribed to `topics`.
fn consumer_join(
    group_id: &str,
    member_id: &str,
    topics: &[&str],
) -> ConsumerGroupHeartbeatRequest {
    ConsumerGroupHeartbeatRequest::default()
        .with_group_id(group(group_id))
        .with_member_id(text(member_id))
        .with_member_epoch(0)
        .with_rebalance_timeout_ms(10_000)
        .with_subscribed_topic_names(Some(
            topics.iter().map(|topic| TopicName(text(topic))).collect(),
        ))
        .with_topic_partitions(Some(Vec::new()))
}

/// The partitions an answer assigns, over all topics, sorted.
fn assigned(response: &ConsumerGroupHeartbeatResponse) -> Vec<i32> {
    let mut partitions: Vec<i32> = response
        .assignment
        .iter()
        .flat_map(|assignment| &assignment.topic_partitions)
        .flat_map(|topic| topic.partitions.iter().copied())
        .collect();
    partitions.sort();
    partitions
}

#[tokio::test]
async fn consumer_group_heartbeats_assign_partitions_and_fence_old_epochs() {
    let mut stream = connect(start_on(skiff_storage_memory::MemoryEngine::storage()).await).await;
    create_topic(&mut stream, "orders", 2).await;
    for version in ConsumerGroupHeartbeatRequest::VERSIONS.min..=1 {
        let group_id = format!("kip848-v{version}");
        // v0 clients join without an id and are given one; v1 clients choose theirs.
        let chosen = if version == 0 { "" } else { "chosen-id" };
        let joined =
            call(&mut stream, &consumer_join(&group_id, chosen, &["orders"]), version).await;
        assert_eq!(joined.error_code, NONE, "v{version}: {:?}", joined.error_message);
        let member_id = joined.member_id.clone().expect("a member id").to_string();
        assert!(!member_id.is_empty());
        if version == 1 {
            assert_eq!(member_id, "chosen-id");
        }
        assert_eq!(joined.member_epoch, 1);
        assert_eq!(assigned(&joined), vec![0, 1], "a lone member gets every partition");
        assert_eq!(joined.heartbeat_interval_ms, 5000, "Kafka's default interval");

        let heartbeat = ConsumerGroupHeartbeatRequest::default()
            .with_group_id(group(&group_id))
            .with_member_id(text(&member_id))
            .with_rebalance_timeout_ms(-1);
        let steady = call(&mut stream, &heartbeat.clone().with_member_epoch(1), version).await;
        assert_eq!((steady.error_code, steady.member_epoch), (NONE, 1));
        assert!(steady.assignment.is_none(), "an unchanged assignment is not resent");
        let ahead = call(&mut stream, &heartbeat.clone().with_member_epoch(7), version).await;
        assert_eq!(ahead.error_code, FENCED_MEMBER_EPOCH);

        let left = call(&mut stream, &heartbeat.with_member_epoch(-1), version).await;
        assert_eq!((left.error_code, left.member_epoch), (NONE, -1));
    }
}

#[tokio::test]
async fn consumer_protocol_groups_check_member_epochs_on_offsets_and_show_their_type() {
    let mut stream = connect(start_on(skiff_storage_memory::MemoryEngine::storage()).await).await;
    create_topic(&mut stream, "orders", 2).await;
    let joined = call(&mut stream, &consumer_join("modern", "m1", &["orders"]), 1).await;
    assert_eq!((joined.error_code, joined.member_epoch), (NONE, 1));

    // OffsetCommit v9 carries the member epoch: older is stale, newer fenced.
    let commit = |epoch: i32| {
        commit_request("modern", "orders", 0, 5, "")
            .with_member_id(text("m1"))
            .with_generation_id_or_member_epoch(epoch)
    };
    let code = |response: OffsetCommitResponse| response.topics[0].partitions[0].error_code;
    assert_eq!(code(call(&mut stream, &commit(1), 9).await), NONE);
    assert_eq!(code(call(&mut stream, &commit(0), 9).await), STALE_MEMBER_EPOCH);
    assert_eq!(code(call(&mut stream, &commit(2), 9).await), FENCED_MEMBER_EPOCH);
    let old_version = call(&mut stream, &commit(1), 8).await;
    assert_eq!(code(old_version), UNSUPPORTED_VERSION, "a member epoch needs OffsetCommit v9");
    let outsider = commit_request("modern", "orders", 0, 6, "");
    assert_eq!(
        code(call(&mut stream, &outsider, 9).await),
        UNKNOWN_MEMBER_ID,
        "not while it has members"
    );

    let fetch = |epoch: i32| {
        OffsetFetchRequest::default().with_groups(vec![OffsetFetchRequestGroup::default()
            .with_group_id(group("modern"))
            .with_member_id(Some(text("m1")))
            .with_member_epoch(epoch)
            .with_topics(None)])
    };
    let fetched = call(&mut stream, &fetch(1), 9).await;
    assert_eq!(fetched.groups[0].error_code, NONE);
    let offset = fetched.groups[0].topics[0].partitions[0].committed_offset;
    assert_eq!(offset, 5);
    assert_eq!(call(&mut stream, &fetch(0), 9).await.groups[0].error_code, STALE_MEMBER_EPOCH);

    // A classic member may join it (as during a migration; see below), by the same KIP-394
    // first step; DescribeGroups sees a group of the other protocol.
    let classic = call(&mut stream, &join_request("modern", "", None), 9).await;
    assert_eq!(classic.error_code, MEMBER_ID_REQUIRED);
    let other_type = join_request("modern", "", None).with_protocol_type(text("connect"));
    let refused = call(&mut stream, &other_type, 9).await;
    assert_eq!(refused.error_code, INCONSISTENT_GROUP_PROTOCOL);
    let described = call(
        &mut stream,
        &DescribeGroupsRequest::default().with_groups(vec![group("modern")]),
        DescribeGroupsRequest::VERSIONS.max,
    )
    .await;
    assert_eq!(described.groups[0].error_code, GROUP_ID_NOT_FOUND);
    let listed = call(&mut stream, &ListGroupsRequest::default(), 5).await;
    let modern = listed.groups.iter().find(|listed| listed.group_id.as_str() == "modern");
    let shown = modern.map(|group| (group.group_type.as_str(), group.group_state.as_str()));
    assert_eq!(shown, Some(("consumer", "Stable")));

    let request = ConsumerGroupDescribeRequest::default().with_group_ids(vec![group("modern")]);
    let described = call(&mut stream, &request, 1).await;
    let modern = &described.groups[0];
    assert_eq!(modern.error_code, NONE);
    assert_eq!((modern.group_epoch, modern.assignment_epoch), (1, 1));
    assert_eq!(modern.assignor_name.as_str(), "uniform");
    let member = &modern.members[0];
    assert_eq!((member.member_id.as_str(), member.member_epoch), ("m1", 1));
    let topics = &member.assignment.topic_partitions;
    assert_eq!(topics[0].topic_name.as_str(), "orders");
    assert_eq!(topics[0].partitions, vec![0, 1]);

    // A group with members is not deleted; once the member left, it is.
    let delete = DeleteGroupsRequest::default().with_groups_names(vec![group("modern")]);
    assert_eq!(call(&mut stream, &delete, 2).await.results[0].error_code, NON_EMPTY_GROUP);
    let leave = ConsumerGroupHeartbeatRequest::default()
        .with_group_id(group("modern"))
        .with_member_id(text("m1"))
        .with_member_epoch(-1);
    assert_eq!(call(&mut stream, &leave, 1).await.error_code, NONE);
    assert_eq!(call(&mut stream, &delete, 2).await.results[0].error_code, NONE);
}

/// Consumer-protocol metadata (version 1) subscribing to `topic` and owning `owned` of it.
fn subscription_owning(topic: &str, owned: &[i32]) -> Bytes {
    use kafka_protocol::messages::consumer_protocol_subscription::TopicPartition;
    let mut metadata = BytesMut::new();
    metadata.put_i16(1);
    ConsumerProtocolSubscription::default()
        .with_topics(vec![text(topic)])
        .with_owned_partitions(vec![TopicPartition::default()
            .with_topic(TopicName(text(topic)))
            .with_partitions(owned.to_vec())])
        .encode(&mut metadata, 1)
        .expect("subscription");
    metadata.freeze()
}

/// A ConsumerProtocolAssignment of `partitions` of `topic`.
fn assignment_of(topic: &str, partitions: &[i32]) -> Bytes {
    use kafka_protocol::messages::consumer_protocol_assignment::TopicPartition;
    let mut bytes = BytesMut::new();
    bytes.put_i16(0);
    ConsumerProtocolAssignment::default()
        .with_assigned_partitions(vec![TopicPartition::default()
            .with_topic(TopicName(text(topic)))
            .with_partitions(partitions.to_vec())])
        .encode(&mut bytes, 0)
        .expect("assignment");
    bytes.freeze()
}

/// The partitions a SyncGroup answer assigns, sorted.
fn synced(response: &SyncGroupResponse) -> Vec<i32> {
    let mut bytes = response.assignment.clone();
    let version = bytes::Buf::get_i16(&mut bytes);
    let decoded = ConsumerProtocolAssignment::decode(&mut bytes, version).expect("assignment");
    let mut partitions: Vec<i32> =
        decoded.assigned_partitions.iter().flat_map(|topic| topic.partitions.clone()).collect();
    partitions.sort();
    partitions
}

async fn group_type(stream: &mut TcpStream, group_id: &str) -> Option<(String, String)> {
    let listed = call(stream, &ListGroupsRequest::default(), 5).await;
    listed
        .groups
        .iter()
        .find(|listed| listed.group_id.as_str() == group_id)
        .map(|listed| (listed.group_type.to_string(), listed.group_state.to_string()))
}

#[tokio::test]
async fn a_classic_group_is_upgraded_by_a_consumer_member_and_downgraded_when_it_leaves() {
    let mut stream = connect(start_on(skiff_storage_memory::MemoryEngine::storage()).await).await;
    create_topic(&mut stream, "orders", 2).await;
    // A running classic group: one member owning both partitions.
    let (classic, generation) = join_alone(&mut stream, 9, "migrate").await;
    let sync = SyncGroupRequest::default()
        .with_group_id(group("migrate"))
        .with_generation_id(generation)
        .with_member_id(text(&classic))
        .with_group_instance_id(Some(text("instance-1")))
        .with_assignments(vec![SyncGroupRequestAssignment::default()
            .with_member_id(text(&classic))
            .with_assignment(assignment_of("orders", &[0, 1]))]);
    assert_eq!(call(&mut stream, &sync, 5).await.error_code, NONE);

    // A consumer-protocol member joins: the group is upgraded, the newcomer waits for its
    // share, which the classic member still owns.
    let joined = call(&mut stream, &consumer_join("migrate", "m1", &["orders"]), 1).await;
    assert_eq!(joined.error_code, NONE, "{:?}", joined.error_message);
    assert_eq!(assigned(&joined), Vec::<i32>::new());
    assert_eq!(joined.member_epoch, generation + 1);
    let kind = group_type(&mut stream, "migrate").await;
    assert_eq!(kind.map(|(kind, _)| kind).as_deref(), Some("consumer"));

    // The classic member is told to rejoin, gives one partition up, rejoins, and keeps one.
    let heartbeat = |generation: i32| {
        HeartbeatRequest::default()
            .with_group_id(group("migrate"))
            .with_member_id(text(&classic))
            .with_group_instance_id(Some(text("instance-1")))
            .with_generation_id(generation)
    };
    let told = call(&mut stream, &heartbeat(generation), 4).await;
    assert_eq!(told.error_code, REBALANCE_IN_PROGRESS);
    let rejoin = |owned: &[i32]| {
        join_request("migrate", &classic, Some("instance-1")).with_protocols(vec![
            JoinGroupRequestProtocol::default()
                .with_name(text("range"))
                .with_metadata(subscription_owning("orders", owned)),
        ])
    };
    let first = call(&mut stream, &rejoin(&[0, 1]), 9).await;
    assert_eq!(first.error_code, NONE);
    assert_eq!(first.generation_id, generation, "it keeps its epoch while it revokes");
    assert!(first.leader.is_empty() && first.members.is_empty(), "the broker assigns");
    assert_eq!(first.protocol_name.as_deref(), Some("range"));
    let sync_at = |generation: i32| {
        SyncGroupRequest::default()
            .with_group_id(group("migrate"))
            .with_generation_id(generation)
            .with_member_id(text(&classic))
            .with_group_instance_id(Some(text("instance-1")))
            .with_protocol_type(Some(text("consumer")))
            .with_protocol_name(Some(text("range")))
    };
    let kept = call(&mut stream, &sync_at(first.generation_id), 5).await;
    assert_eq!(kept.error_code, NONE);
    assert_eq!(kept.protocol_name.as_deref(), Some("range"));
    let kept = synced(&kept);
    assert_eq!(kept.len(), 1);
    let second = call(&mut stream, &rejoin(&kept), 9).await;
    assert_eq!((second.error_code, second.generation_id), (NONE, generation + 1));
    let synced_again = call(&mut stream, &sync_at(second.generation_id), 5).await;
    assert_eq!(synced(&synced_again), kept);
    assert_eq!(call(&mut stream, &heartbeat(generation + 1), 4).await.error_code, NONE);

    // The consumer member now gets the other partition.
    let beat = ConsumerGroupHeartbeatRequest::default()
        .with_group_id(group("migrate"))
        .with_member_id(text("m1"))
        .with_member_epoch(joined.member_epoch)
        .with_rebalance_timeout_ms(-1);
    let got = call(&mut stream, &beat, 1).await;
    assert_eq!(got.error_code, NONE);
    let released: Vec<i32> = (0..2).filter(|partition| !kept.contains(partition)).collect();
    assert_eq!(assigned(&got), released);
    let kind = group_type(&mut stream, "migrate").await;
    assert_eq!(kind, Some(("consumer".to_owned(), "Stable".to_owned())));

    // It leaves: the group is classic again, rebalancing, and the member rejoins as usual.
    let leave = ConsumerGroupHeartbeatRequest::default()
        .with_group_id(group("migrate"))
        .with_member_id(text("m1"))
        .with_member_epoch(-1);
    assert_eq!(call(&mut stream, &leave, 1).await.error_code, NONE);
    let kind = group_type(&mut stream, "migrate").await;
    assert_eq!(kind, Some(("classic".to_owned(), "PreparingRebalance".to_owned())));
    let told = call(&mut stream, &heartbeat(generation + 1), 4).await;
    assert_eq!(told.error_code, REBALANCE_IN_PROGRESS);
    let back = call(&mut stream, &rejoin(&kept), 9).await;
    assert_eq!(back.error_code, NONE);
    assert_eq!(back.leader.as_str(), classic, "a classic leader again");
    assert_eq!(back.generation_id, generation + 2);
}

#[tokio::test]
async fn a_group_of_another_protocol_type_is_not_upgraded() {
    let mut stream = connect(start_on(skiff_storage_memory::MemoryEngine::storage()).await).await;
    create_topic(&mut stream, "orders", 2).await;
    let connect_join = join_request("workers", "", Some("w1")).with_protocol_type(text("connect"));
    assert_eq!(call(&mut stream, &connect_join, 9).await.error_code, NONE);
    let refused = call(&mut stream, &consumer_join("workers", "m1", &["orders"]), 1).await;
    assert_eq!(refused.error_code, GROUP_ID_NOT_FOUND, "Kafka's 'not a consumer group'");
}

#[tokio::test]
async fn a_topic_created_after_the_subscription_is_assigned_at_the_next_heartbeat() {
    let mut stream = connect(start_on(skiff_storage_memory::MemoryEngine::storage()).await).await;
    create_topic(&mut stream, "early", 1).await;
    let joined = call(&mut stream, &consumer_join("waiting", "m1", &["early", "later"]), 1).await;
    assert_eq!((joined.error_code, assigned(&joined)), (NONE, vec![0]));
    // The broker's topic list is a second-old copy; a subscribed name missing from it is
    // looked up again at once, so the new topic does not wait for the copy to age.
    create_topic(&mut stream, "later", 2).await;
    let heartbeat = ConsumerGroupHeartbeatRequest::default()
        .with_group_id(group("waiting"))
        .with_member_id(text("m1"))
        .with_member_epoch(joined.member_epoch)
        .with_rebalance_timeout_ms(-1);
    let answer = call(&mut stream, &heartbeat, 1).await;
    assert_eq!(answer.error_code, NONE);
    assert_eq!(answer.member_epoch, joined.member_epoch + 1, "a new group epoch");
    assert_eq!(assigned(&answer), vec![0, 0, 1], "early-0, later-0 and later-1");
}
