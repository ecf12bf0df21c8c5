//! Topic ACLs: WRITE to produce, READ to fetch, DESCRIBE to see a topic in Metadata, CREATE
//! on the cluster or topic to create one, DELETE, ALTER and the config operations.

use kafka_protocol::messages::fetch_request::{FetchPartition, FetchTopic};
use kafka_protocol::messages::produce_request::{PartitionProduceData, TopicProduceData};
use kafka_protocol::messages::*;
use skiff_auth::acl::{Operation, PatternType, Permission, ResourceType};
use skiff_storage::testsuite::batch;

use crate::{call, code, text, Cluster};

fn produce(topics: &[&str]) -> ProduceRequest {
    let data = topics
        .iter()
        .map(|topic| {
            TopicProduceData::default().with_name(TopicName(text(topic))).with_partition_data(vec![
                PartitionProduceData::default().with_index(0).with_records(Some(batch(2).bytes)),
            ])
        })
        .collect();
    ProduceRequest::default().with_acks(-1).with_timeout_ms(1000).with_topic_data(data)
}

fn produced_codes(response: &ProduceResponse) -> Vec<(String, i16)> {
    response
        .responses
        .iter()
        .map(|topic| (topic.name.to_string(), topic.partition_responses[0].error_code))
        .collect()
}

fn fetch(topic: &str) -> FetchRequest {
    FetchRequest::default().with_max_wait_ms(0).with_max_bytes(1 << 20).with_topics(vec![
        FetchTopic::default().with_topic(TopicName(text(topic))).with_partitions(vec![
            FetchPartition::default().with_fetch_offset(0).with_partition_max_bytes(1 << 20),
        ]),
    ])
}

/// The high watermark of partition 0, as the super user sees it.
async fn high_watermark(cluster: &Cluster, topic: &str) -> i64 {
    let mut admin = cluster.login("admin").await;
    let response = call(&mut admin, &fetch(topic), 12).await;
    let partition = &response.responses[0].partitions[0];
    assert_eq!(partition.error_code, 0);
    partition.high_watermark
}

#[tokio::test]
async fn produce_needs_write_per_topic_and_a_denied_topic_stores_nothing() {
    let cluster = Cluster::start().await;
    cluster.create_topic("granted").await;
    cluster.create_topic("withheld").await;
    cluster.allow("alice", ResourceType::Topic, "granted", Operation::Write).await;
    let mut alice = cluster.login("alice").await;

    let response = call(&mut alice, &produce(&["granted", "withheld"]), 9).await;
    assert_eq!(
        produced_codes(&response),
        vec![("granted".into(), 0), ("withheld".into(), code::TOPIC_AUTHORIZATION_FAILED)]
    );
    assert_eq!(high_watermark(&cluster, "granted").await, 2);
    assert_eq!(high_watermark(&cluster, "withheld").await, 0, "nothing stored");

    // A topic that does not exist is not revealed either.
    let response = call(&mut alice, &produce(&["no-such-topic"]), 9).await;
    assert_eq!(produced_codes(&response)[0].1, code::TOPIC_AUTHORIZATION_FAILED);
}

#[tokio::test]
async fn a_transactional_produce_needs_write_on_its_transactional_id() {
    let cluster = Cluster::start().await;
    cluster.create_topic("orders").await;
    cluster.allow("alice", ResourceType::Topic, "orders", Operation::Write).await;
    let mut alice = cluster.login("alice").await;
    let request = produce(&["orders"]).with_transactional_id(Some(TransactionalId(text("tx"))));
    let response = call(&mut alice, &request, 9).await;
    assert_eq!(produced_codes(&response)[0].1, code::TRANSACTIONAL_ID_AUTHORIZATION_FAILED);
    assert_eq!(high_watermark(&cluster, "orders").await, 0);
}

#[tokio::test]
async fn fetch_needs_read_and_a_deny_wins_over_an_allow() {
    let cluster = Cluster::start().await;
    cluster.create_topic("logs").await;
    cluster.allow("alice", ResourceType::Topic, "*", Operation::Read).await;
    cluster.allow("bob", ResourceType::Topic, "*", Operation::Read).await;
    let deny = Permission::Deny;
    cluster
        .add("bob", ResourceType::Topic, "logs", PatternType::Literal, Operation::All, deny)
        .await;

    let mut alice = cluster.login("alice").await;
    let response = call(&mut alice, &fetch("logs"), 12).await;
    assert_eq!(response.responses[0].partitions[0].error_code, 0);
    let mut bob = cluster.login("bob").await;
    let response = call(&mut bob, &fetch("logs"), 12).await;
    assert_eq!(response.responses[0].partitions[0].error_code, code::TOPIC_AUTHORIZATION_FAILED);
}

fn metadata(topics: Option<&[&str]>, auto_create: bool) -> MetadataRequest {
    let topics = topics.map(|names| {
        names
            .iter()
            .map(|name| {
                metadata_request::MetadataRequestTopic::default()
                    .with_name(Some(TopicName(text(name))))
            })
            .collect()
    });
    MetadataRequest::default().with_topics(topics).with_allow_auto_topic_creation(auto_create)
}

fn listed(response: &MetadataResponse) -> Vec<(String, i16)> {
    let mut topics: Vec<(String, i16)> = response
        .topics
        .iter()
        .map(|topic| {
            (
                topic.name.as_ref().map(|name| name.0.to_string()).unwrap_or_default(),
                topic.error_code,
            )
        })
        .collect();
    topics.sort();
    topics
}

#[tokio::test]
async fn metadata_shows_only_describable_topics_and_auto_creates_only_with_create() {
    let cluster = Cluster::start().await;
    for topic in ["team-a.orders", "team-a.payments", "team-b.orders"] {
        cluster.create_topic(topic).await;
    }
    let read = Operation::Read;
    cluster
        .add(
            "alice",
            ResourceType::Topic,
            "team-a.",
            PatternType::Prefixed,
            read,
            Permission::Allow,
        )
        .await;
    let mut alice = cluster.login("alice").await;

    let all = call(&mut alice, &metadata(None, false), 12).await;
    assert_eq!(listed(&all), vec![("team-a.orders".into(), 0), ("team-a.payments".into(), 0)]);
    let named = call(&mut alice, &metadata(Some(&["team-b.orders"]), false), 12).await;
    assert_eq!(listed(&named), vec![("team-b.orders".into(), code::TOPIC_AUTHORIZATION_FAILED)]);

    // Describable but absent: auto-creation needs CREATE, which alice lacks.
    let absent = call(&mut alice, &metadata(Some(&["team-a.new"]), true), 12).await;
    assert_eq!(listed(&absent), vec![("team-a.new".into(), code::TOPIC_AUTHORIZATION_FAILED)]);
    let mut admin = cluster.login("admin").await;
    let seen = call(&mut admin, &metadata(Some(&["team-a.new"]), false), 12).await;
    assert_eq!(listed(&seen), vec![("team-a.new".into(), 3)], "not created: UNKNOWN_TOPIC");

    let create = Operation::Create;
    cluster
        .add(
            "alice",
            ResourceType::Topic,
            "team-a.",
            PatternType::Prefixed,
            create,
            Permission::Allow,
        )
        .await;
    let created = call(&mut alice, &metadata(Some(&["team-a.new"]), true), 12).await;
    assert_eq!(listed(&created), vec![("team-a.new".into(), 0)]);
}

fn create_topics(names: &[&str]) -> CreateTopicsRequest {
    CreateTopicsRequest::default().with_topics(
        names
            .iter()
            .map(|name| {
                create_topics_request::CreatableTopic::default()
                    .with_name(TopicName(text(name)))
                    .with_num_partitions(1)
                    .with_replication_factor(1)
            })
            .collect(),
    )
}

#[tokio::test]
async fn creating_deleting_and_configuring_topics_need_their_operations() {
    let cluster = Cluster::start().await;
    let mut alice = cluster.login("alice").await;
    let allow = Permission::Allow;
    cluster
        .add(
            "alice",
            ResourceType::Topic,
            "alice.",
            PatternType::Prefixed,
            Operation::Create,
            allow,
        )
        .await;

    let response = call(&mut alice, &create_topics(&["alice.events", "shared"]), 7).await;
    let codes: Vec<i16> = response.topics.iter().map(|topic| topic.error_code).collect();
    assert_eq!(codes, vec![0, code::TOPIC_AUTHORIZATION_FAILED]);
    assert!(response.topics[0].configs.is_none(), "configs are shown only with DESCRIBE_CONFIGS");

    let delete =
        DeleteTopicsRequest::default().with_topic_names(vec![TopicName(text("alice.events"))]);
    let response = call(&mut alice, &delete, 4).await;
    assert_eq!(response.responses[0].error_code, code::TOPIC_AUTHORIZATION_FAILED);

    let describe = DescribeConfigsRequest::default().with_resources(vec![
        describe_configs_request::DescribeConfigsResource::default()
            .with_resource_type(2)
            .with_resource_name(text("alice.events")),
        describe_configs_request::DescribeConfigsResource::default()
            .with_resource_type(4)
            .with_resource_name(text("0")),
    ]);
    let response = call(&mut alice, &describe, 4).await;
    let codes: Vec<i16> = response.results.iter().map(|result| result.error_code).collect();
    assert_eq!(codes, vec![code::TOPIC_AUTHORIZATION_FAILED, code::CLUSTER_AUTHORIZATION_FAILED]);

    cluster
        .add(
            "alice",
            ResourceType::Topic,
            "alice.",
            PatternType::Prefixed,
            Operation::Delete,
            allow,
        )
        .await;
    let response = call(&mut alice, &delete, 4).await;
    assert_eq!(response.responses[0].error_code, 0, "deleted with DELETE");
}
