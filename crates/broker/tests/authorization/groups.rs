//! The group APIs under ACLs, as Kafka checks them: DESCRIBE to find a group's coordinator or
//! fetch its offsets, READ to be a member or commit, DELETE to delete; per topic READ to commit
//! or delete offsets and DESCRIBE to see them. A denied group or topic is never changed.

use kafka_protocol::messages::join_group_request::JoinGroupRequestProtocol;
use kafka_protocol::messages::offset_commit_request::{
    OffsetCommitRequestPartition, OffsetCommitRequestTopic,
};
use kafka_protocol::messages::offset_delete_request::{
    OffsetDeleteRequestPartition, OffsetDeleteRequestTopic,
};
use kafka_protocol::messages::offset_fetch_request::{
    OffsetFetchRequestGroup, OffsetFetchRequestTopic, OffsetFetchRequestTopics,
};
use kafka_protocol::messages::*;
use skiff_auth::acl::{Operation, PatternType, Permission, ResourceType};
use tokio::net::TcpStream;

use super::code::{GROUP_AUTHORIZATION_FAILED, TOPIC_AUTHORIZATION_FAILED};
use super::{call, text, Cluster};

const NONE: i16 = 0;
const TRANSACTIONAL_ID_AUTHORIZATION_FAILED: i16 =
    super::code::TRANSACTIONAL_ID_AUTHORIZATION_FAILED;

fn group(id: &str) -> GroupId {
    GroupId(text(id))
}

/// JoinGroup v3 (no MEMBER_ID_REQUIRED round): a lone member completes the rebalance at once.
async fn join(stream: &mut TcpStream, group_id: &str) -> JoinGroupResponse {
    let request = JoinGroupRequest::default()
        .with_group_id(group(group_id))
        .with_session_timeout_ms(10_000)
        .with_rebalance_timeout_ms(10_000)
        .with_protocol_type(text("consumer"))
        .with_protocols(vec![JoinGroupRequestProtocol::default().with_name(text("range"))]);
    call(stream, &request, 3).await
}

/// Commits offset `offset` of partition 0 of each topic as a simple consumer (generation -1);
/// returns each topic's partition error.
async fn commit(stream: &mut TcpStream, group_id: &str, topics: &[&str], offset: i64) -> Vec<i16> {
    let topics = topics
        .iter()
        .map(|topic| {
            OffsetCommitRequestTopic::default().with_name(TopicName(text(topic))).with_partitions(
                vec![OffsetCommitRequestPartition::default()
                    .with_partition_index(0)
                    .with_committed_offset(offset)],
            )
        })
        .collect();
    let request = OffsetCommitRequest::default()
        .with_group_id(group(group_id))
        .with_generation_id_or_member_epoch(-1)
        .with_topics(topics);
    let response = call(stream, &request, 8).await;
    response.topics.iter().map(|topic| topic.partitions[0].error_code).collect()
}

/// OffsetFetch v7 of partition 0 of each topic (`None`: every topic): (topic, offset, error)
/// and the top-level error.
async fn fetch(
    stream: &mut TcpStream,
    group_id: &str,
    topics: Option<&[&str]>,
) -> (i16, Vec<(String, i64, i16)>) {
    let topics = topics.map(|topics| {
        topics
            .iter()
            .map(|topic| {
                OffsetFetchRequestTopic::default()
                    .with_name(TopicName(text(topic)))
                    .with_partition_indexes(vec![0])
            })
            .collect()
    });
    let request = OffsetFetchRequest::default().with_group_id(group(group_id)).with_topics(topics);
    let response = call(stream, &request, 7).await;
    let mut found: Vec<(String, i64, i16)> = response
        .topics
        .iter()
        .flat_map(|topic| {
            topic.partitions.iter().map(|partition| {
                (topic.name.to_string(), partition.committed_offset, partition.error_code)
            })
        })
        .collect();
    found.sort();
    (response.error_code, found)
}

fn listed(response: &ListGroupsResponse) -> Vec<String> {
    let mut ids: Vec<String> = response.groups.iter().map(|g| g.group_id.to_string()).collect();
    ids.sort();
    ids
}

#[tokio::test]
async fn finding_and_joining_a_group_need_its_acls() {
    let cluster = Cluster::start().await;
    let mut alice = cluster.login("alice").await;
    let find = |key_type: i8, key: &str| {
        FindCoordinatorRequest::default().with_key_type(key_type).with_key(text(key))
    };
    assert_eq!(call(&mut alice, &find(0, "g"), 3).await.error_code, GROUP_AUTHORIZATION_FAILED);
    let answer = call(&mut alice, &find(1, "tx"), 3).await;
    assert_eq!(answer.error_code, TRANSACTIONAL_ID_AUTHORIZATION_FAILED);
    let denied = join(&mut alice, "g").await;
    assert_eq!((denied.error_code, denied.member_id.as_str()), (GROUP_AUTHORIZATION_FAILED, ""));

    cluster.allow("alice", ResourceType::Group, "g", Operation::Read).await;
    cluster.allow("alice", ResourceType::TransactionalId, "tx", Operation::Describe).await;
    // READ implies DESCRIBE; v4 answers per key.
    let batched = FindCoordinatorRequest::default()
        .with_key_type(0)
        .with_coordinator_keys(vec![text("g"), text("other")]);
    let codes: Vec<i16> =
        call(&mut alice, &batched, 4).await.coordinators.iter().map(|c| c.error_code).collect();
    assert_eq!(codes, [NONE, GROUP_AUTHORIZATION_FAILED]);
    assert_eq!(call(&mut alice, &find(1, "tx"), 3).await.error_code, NONE);
    let joined = join(&mut alice, "g").await;
    assert_eq!(joined.error_code, NONE);

    // Bob may not touch alice's membership, even knowing her member id.
    let mut bob = cluster.login("bob").await;
    let member_id = joined.member_id.clone();
    let heartbeat = HeartbeatRequest::default()
        .with_group_id(group("g"))
        .with_generation_id(joined.generation_id)
        .with_member_id(member_id.clone());
    assert_eq!(call(&mut bob, &heartbeat, 3).await.error_code, GROUP_AUTHORIZATION_FAILED);
    let sync = SyncGroupRequest::default()
        .with_group_id(group("g"))
        .with_generation_id(joined.generation_id)
        .with_member_id(member_id.clone());
    assert_eq!(call(&mut bob, &sync, 3).await.error_code, GROUP_AUTHORIZATION_FAILED);
    let leave = LeaveGroupRequest::default().with_group_id(group("g")).with_member_id(member_id);
    assert_eq!(call(&mut bob, &leave, 2).await.error_code, GROUP_AUTHORIZATION_FAILED);
    assert_eq!(call(&mut alice, &heartbeat, 3).await.error_code, NONE, "alice is still in");
}

#[tokio::test]
async fn offsets_are_committed_and_fetched_only_for_allowed_topics() {
    let cluster = Cluster::start().await;
    cluster.create_topic("a").await;
    cluster.create_topic("b").await;
    let mut admin = cluster.login("admin").await;
    let mut alice = cluster.login("alice").await;
    assert_eq!(commit(&mut alice, "g", &["a"], 5).await, [GROUP_AUTHORIZATION_FAILED]);
    assert_eq!(fetch(&mut admin, "g", None).await, (NONE, vec![]), "nothing committed");

    cluster.allow("alice", ResourceType::Group, "g", Operation::Read).await;
    cluster.allow("alice", ResourceType::Topic, "a", Operation::Read).await;
    assert_eq!(commit(&mut alice, "g", &["a", "b"], 5).await, [NONE, TOPIC_AUTHORIZATION_FAILED]);
    let (code, offsets) = fetch(&mut admin, "g", Some(&["a", "b"])).await;
    assert_eq!((code, offsets), (NONE, vec![("a".into(), 5, NONE), ("b".into(), -1, NONE)]));

    assert_eq!(commit(&mut admin, "g", &["b"], 7).await, [NONE]);
    let all = fetch(&mut alice, "g", None).await;
    assert_eq!(all, (NONE, vec![("a".into(), 5, NONE)]), "b is left out");
    let named = fetch(&mut alice, "g", Some(&["a", "b"])).await;
    let expected = vec![("a".into(), 5, NONE), ("b".into(), -1, TOPIC_AUTHORIZATION_FAILED)];
    assert_eq!(named, (NONE, expected));

    let mut bob = cluster.login("bob").await;
    assert_eq!(fetch(&mut bob, "g", Some(&["a"])).await.0, GROUP_AUTHORIZATION_FAILED);
    // v8 answers per group.
    let batched =
        OffsetFetchRequest::default().with_groups(vec![OffsetFetchRequestGroup::default()
            .with_group_id(group("g"))
            .with_topics(Some(vec![OffsetFetchRequestTopics::default()
                .with_name(TopicName(text("a")))
                .with_partition_indexes(vec![0])]))]);
    let response = call(&mut bob, &batched, 8).await;
    assert_eq!(response.groups[0].error_code, GROUP_AUTHORIZATION_FAILED);
    assert!(response.groups[0].topics.is_empty());
}

#[tokio::test]
async fn groups_are_listed_and_described_only_to_who_may_describe_them() {
    let cluster = Cluster::start().await;
    cluster.create_topic("a").await;
    let mut admin = cluster.login("admin").await;
    for id in ["mine", "theirs"] {
        assert_eq!(commit(&mut admin, id, &["a"], 1).await, [NONE]);
    }
    cluster.allow("alice", ResourceType::Group, "mine", Operation::Describe).await;
    let mut alice = cluster.login("alice").await;
    let list = ListGroupsRequest::default();
    assert_eq!(listed(&call(&mut alice, &list, 4).await), ["mine"]);
    assert_eq!(listed(&call(&mut admin, &list, 4).await), ["mine", "theirs"]);
    cluster.allow("bob", ResourceType::Cluster, "kafka-cluster", Operation::Describe).await;
    let mut bob = cluster.login("bob").await;
    assert_eq!(listed(&call(&mut bob, &list, 4).await), ["mine", "theirs"], "cluster DESCRIBE");

    let describe =
        DescribeGroupsRequest::default().with_groups(vec![group("mine"), group("theirs")]);
    let response = call(&mut alice, &describe, 5).await;
    let described: Vec<(&str, i16, &str)> = response
        .groups
        .iter()
        .map(|g| (g.group_id.as_str(), g.error_code, g.group_state.as_str()))
        .collect();
    assert_eq!(described, [("mine", NONE, "Empty"), ("theirs", GROUP_AUTHORIZATION_FAILED, "")]);
}

#[tokio::test]
async fn deleting_groups_and_offsets_needs_delete() {
    let cluster = Cluster::start().await;
    cluster.create_topic("a").await;
    cluster.create_topic("b").await;
    let mut admin = cluster.login("admin").await;
    assert_eq!(commit(&mut admin, "g", &["a", "b"], 3).await, [NONE, NONE]);
    let mut alice = cluster.login("alice").await;
    let delete_group = DeleteGroupsRequest::default().with_groups_names(vec![group("g")]);
    let delete_offsets = OffsetDeleteRequest::default().with_group_id(group("g")).with_topics(
        ["a", "b"]
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
    let refused = call(&mut alice, &delete_group, 2).await;
    assert_eq!(refused.results[0].error_code, GROUP_AUTHORIZATION_FAILED);
    let refused = call(&mut alice, &delete_offsets, 0).await;
    assert_eq!((refused.error_code, refused.topics.len()), (GROUP_AUTHORIZATION_FAILED, 0));
    let kept = vec![("a".into(), 3, NONE), ("b".into(), 3, NONE)];
    assert_eq!(fetch(&mut admin, "g", None).await, (NONE, kept), "nothing deleted");

    cluster.allow("alice", ResourceType::Group, "g", Operation::Delete).await;
    cluster.allow("alice", ResourceType::Topic, "a", Operation::Read).await;
    let response = call(&mut alice, &delete_offsets, 0).await;
    let codes: Vec<i16> = response.topics.iter().map(|t| t.partitions[0].error_code).collect();
    assert_eq!((response.error_code, codes), (NONE, vec![NONE, TOPIC_AUTHORIZATION_FAILED]));
    assert_eq!(fetch(&mut admin, "g", None).await, (NONE, vec![("b".into(), 3, NONE)]));
    assert_eq!(call(&mut alice, &delete_group, 2).await.results[0].error_code, NONE);
    assert_eq!(fetch(&mut admin, "g", None).await, (NONE, vec![]), "group deleted");
}

#[tokio::test]
async fn a_prefixed_acl_admits_a_family_of_groups_and_a_deny_wins() {
    let cluster = Cluster::start().await;
    let (prefixed, allow, deny) = (PatternType::Prefixed, Permission::Allow, Permission::Deny);
    cluster.add("alice", ResourceType::Group, "team-x", prefixed, Operation::Read, allow).await;
    cluster
        .add(
            "alice",
            ResourceType::Group,
            "team-x-secret",
            PatternType::Literal,
            Operation::All,
            deny,
        )
        .await;
    let mut alice = cluster.login("alice").await;
    assert_eq!(join(&mut alice, "team-x-1").await.error_code, NONE);
    assert_eq!(join(&mut alice, "team-y").await.error_code, GROUP_AUTHORIZATION_FAILED);
    assert_eq!(join(&mut alice, "team-x-secret").await.error_code, GROUP_AUTHORIZATION_FAILED);
}

#[tokio::test]
async fn consumer_protocol_members_need_read_on_the_group_and_describe_on_their_topics() {
    let cluster = Cluster::start().await;
    cluster.create_topic("a").await;
    let mut alice = cluster.login("alice").await;
    let heartbeat = ConsumerGroupHeartbeatRequest::default()
        .with_group_id(group("modern"))
        .with_member_id(text("alice-1"))
        .with_member_epoch(0)
        .with_rebalance_timeout_ms(10_000)
        .with_subscribed_topic_names(Some(vec![TopicName(text("a"))]))
        .with_topic_partitions(Some(Vec::new()));
    let describe = ConsumerGroupDescribeRequest::default().with_group_ids(vec![group("modern")]);
    assert_eq!(call(&mut alice, &heartbeat, 1).await.error_code, GROUP_AUTHORIZATION_FAILED);
    let described = call(&mut alice, &describe, 1).await;
    assert_eq!(described.groups[0].error_code, GROUP_AUTHORIZATION_FAILED);

    cluster.allow("alice", ResourceType::Group, "modern", Operation::Read).await;
    assert_eq!(call(&mut alice, &heartbeat, 1).await.error_code, TOPIC_AUTHORIZATION_FAILED);
    cluster.allow("alice", ResourceType::Topic, "a", Operation::Describe).await;
    let joined = call(&mut alice, &heartbeat, 1).await;
    assert_eq!((joined.error_code, joined.member_epoch), (NONE, 1));
    // READ on the group implies DESCRIBE.
    assert_eq!(call(&mut alice, &describe, 1).await.groups[0].error_code, NONE);
}
