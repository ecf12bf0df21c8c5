//! The ACL APIs themselves (CreateAcls, DescribeAcls, DeleteAcls): ALTER or DESCRIBE on the
//! cluster, applied on this broker at once, and SECURITY_DISABLED without an authorizer.

use kafka_protocol::messages::*;

use crate::{call, code, text, Cluster};

const TOPIC: i8 = 2;
const CLUSTER: i8 = 4;
const LITERAL: i8 = 3;
const PREFIXED: i8 = 4;
const MATCH: i8 = 2;
const ANY: i8 = 1;
const READ: i8 = 3;
const DESCRIBE: i8 = 8;
const ALLOW: i8 = 3;
const SECURITY_DISABLED: i16 = 54;
const INVALID_REQUEST: i16 = 42;

fn creation(
    name: &str,
    pattern: i8,
    principal: &str,
    operation: i8,
) -> create_acls_request::AclCreation {
    create_acls_request::AclCreation::default()
        .with_resource_type(TOPIC)
        .with_resource_name(text(name))
        .with_resource_pattern_type(pattern)
        .with_principal(text(principal))
        .with_host(text("*"))
        .with_operation(operation)
        .with_permission_type(ALLOW)
}

fn describe_topic_acls() -> DescribeAclsRequest {
    DescribeAclsRequest::default()
        .with_resource_type_filter(TOPIC)
        .with_resource_name_filter(None)
        .with_principal_filter(None)
        .with_host_filter(None)
        .with_pattern_type_filter(ANY)
        .with_operation(ANY)
        .with_permission_type(ANY)
}

async fn alice_reads(cluster: &Cluster, topic: &str) -> i16 {
    let mut alice = cluster.login("alice").await;
    let request = MetadataRequest::default()
        .with_topics(Some(vec![metadata_request::MetadataRequestTopic::default()
            .with_name(Some(TopicName(text(topic))))]));
    call(&mut alice, &request, 12).await.topics[0].error_code
}

#[tokio::test]
async fn acls_created_listed_and_deleted_over_the_protocol_apply_at_once() {
    let cluster = Cluster::start().await;
    cluster.create_topic("orders").await;
    let mut admin = cluster.login("admin").await;
    let mut alice = cluster.login("alice").await;

    let create = CreateAclsRequest::default().with_creations(vec![
        creation("orders", LITERAL, "User:alice", READ),
        creation("orders", MATCH, "User:alice", READ),
    ]);
    let refused = call(&mut alice, &create, 3).await;
    assert!(refused.results.iter().all(|r| r.error_code == code::CLUSTER_AUTHORIZATION_FAILED));
    assert_eq!(alice_reads(&cluster, "orders").await, code::TOPIC_AUTHORIZATION_FAILED);

    let created = call(&mut admin, &create, 3).await;
    let codes: Vec<i16> = created.results.iter().map(|result| result.error_code).collect();
    assert_eq!(codes, vec![0, INVALID_REQUEST], "a MATCH pattern is a filter, not an ACL");
    assert_eq!(alice_reads(&cluster, "orders").await, 0);

    let more = CreateAclsRequest::default()
        .with_creations(vec![creation("ord", PREFIXED, "User:bob", DESCRIBE)]);
    assert_eq!(call(&mut admin, &more, 3).await.results[0].error_code, 0);
    let described = call(&mut admin, &describe_topic_acls(), 3).await;
    assert_eq!(described.error_code, 0);
    let resources: Vec<(String, i8, usize)> = described
        .resources
        .iter()
        .map(|r| (r.resource_name.to_string(), r.pattern_type, r.acls.len()))
        .collect();
    assert_eq!(resources, vec![("orders".into(), LITERAL, 1), ("ord".into(), PREFIXED, 1)]);
    let matching = describe_topic_acls()
        .with_resource_name_filter(Some(text("orders")))
        .with_pattern_type_filter(MATCH)
        .with_principal_filter(Some(text("User:bob")));
    let described = call(&mut alice, &matching, 3).await;
    assert_eq!(described.error_code, code::CLUSTER_AUTHORIZATION_FAILED);
    let described = call(&mut admin, &matching, 3).await;
    assert_eq!(described.resources.len(), 1, "bob's prefix covers orders");
    assert_eq!(described.resources[0].resource_name.as_str(), "ord");

    let delete = DeleteAclsRequest::default().with_filters(vec![
        delete_acls_request::DeleteAclsFilter::default()
            .with_resource_type_filter(TOPIC)
            .with_resource_name_filter(Some(text("orders")))
            .with_pattern_type_filter(LITERAL)
            .with_principal_filter(Some(text("User:alice")))
            .with_host_filter(None)
            .with_operation(ANY)
            .with_permission_type(ANY),
    ]);
    let deleted = call(&mut admin, &delete, 3).await;
    assert_eq!(deleted.filter_results[0].error_code, 0);
    let removed = &deleted.filter_results[0].matching_acls;
    assert_eq!(removed.len(), 1);
    assert_eq!(removed[0].principal.as_str(), "User:alice");
    assert_eq!(alice_reads(&cluster, "orders").await, code::TOPIC_AUTHORIZATION_FAILED);
}

#[tokio::test]
async fn user_administration_needs_the_cluster() {
    let cluster = Cluster::start().await;
    let mut alice = cluster.login("alice").await;
    let describe = DescribeUserScramCredentialsRequest::default();
    let response = call(&mut alice, &describe, 0).await;
    assert_eq!(response.error_code, code::CLUSTER_AUTHORIZATION_FAILED);
    let mut admin = cluster.login("admin").await;
    let response = call(&mut admin, &describe, 0).await;
    assert_eq!(response.error_code, 0);
    assert_eq!(response.results.len(), 3, "admin, alice and bob");

    let cluster_acl = CreateAclsRequest::default().with_creations(vec![creation(
        "kafka-cluster",
        LITERAL,
        "User:alice",
        DESCRIBE,
    )
    .with_resource_type(CLUSTER)]);
    assert_eq!(call(&mut admin, &cluster_acl, 3).await.results[0].error_code, 0);
    let response = call(&mut alice, &describe, 0).await;
    assert_eq!(response.error_code, 0, "DESCRIBE on the cluster lists users");
}

#[tokio::test]
async fn without_an_authorizer_the_acl_apis_say_security_is_disabled() {
    let config = skiff_broker::BrokerConfig::for_address("127.0.0.1:0".parse().expect("address"));
    let broker = skiff_broker::Broker::new(skiff_storage_memory::MemoryEngine::storage(), config);
    let listeners = skiff_broker::server::bind(&broker).await.expect("bind");
    let address = listeners[0].local_addr().expect("address");
    tokio::spawn(skiff_broker::serve(broker, listeners, std::future::pending()));
    let mut stream = tokio::net::TcpStream::connect(address).await.expect("connect");
    let response = call(&mut stream, &describe_topic_acls(), 3).await;
    assert_eq!(response.error_code, SECURITY_DISABLED);
    let create = CreateAclsRequest::default().with_creations(vec![creation(
        "orders",
        LITERAL,
        "User:alice",
        READ,
    )]);
    let response = call(&mut stream, &create, 3).await;
    assert_eq!(response.results[0].error_code, SECURITY_DISABLED);
}

#[tokio::test]
async fn authorized_operations_are_reported_when_asked() {
    use skiff_auth::acl::{Operation, ResourceType};
    let bit = |operations: &[Operation]| operations.iter().fold(0, |b, o| b | 1 << o.code());
    let cluster = Cluster::start().await;
    cluster.create_topic("orders").await;
    cluster.allow("alice", ResourceType::Topic, "orders", Operation::Read).await;
    cluster.allow("alice", ResourceType::Group, "g", Operation::Read).await;
    cluster.allow("alice", ResourceType::Cluster, "kafka-cluster", Operation::Describe).await;
    let mut alice = cluster.login("alice").await;

    let metadata = MetadataRequest::default()
        .with_topics(Some(vec![metadata_request::MetadataRequestTopic::default()
            .with_name(Some(TopicName(text("orders"))))]))
        .with_include_topic_authorized_operations(true)
        .with_include_cluster_authorized_operations(true);
    let response = call(&mut alice, &metadata, 10).await;
    assert_eq!(
        response.topics[0].topic_authorized_operations,
        bit(&[Operation::Read, Operation::Describe]),
        "READ implies DESCRIBE"
    );
    assert_eq!(response.cluster_authorized_operations, bit(&[Operation::Describe]));
    let unasked = metadata.with_include_topic_authorized_operations(false);
    let response = call(&mut alice, &unasked, 10).await;
    assert_eq!(response.topics[0].topic_authorized_operations, i32::MIN, "not computed");

    let groups = DescribeGroupsRequest::default()
        .with_groups(vec![GroupId(text("g"))])
        .with_include_authorized_operations(true);
    let response = call(&mut alice, &groups, 3).await;
    assert_eq!(
        response.groups[0].authorized_operations,
        bit(&[Operation::Read, Operation::Describe])
    );

    let describe =
        DescribeClusterRequest::default().with_include_cluster_authorized_operations(true);
    let mut admin = cluster.login("admin").await;
    let response = call(&mut admin, &describe, 0).await;
    let everything = bit(Operation::applicable_to(ResourceType::Cluster));
    assert_eq!(response.cluster_authorized_operations, everything, "a super user");
}

#[tokio::test]
async fn client_quotas_need_the_cluster_configs() {
    let cluster = Cluster::start().await;
    let mut alice = cluster.login("alice").await;
    let describe = DescribeClientQuotasRequest::default();
    let response = call(&mut alice, &describe, 1).await;
    assert_eq!(response.error_code, code::CLUSTER_AUTHORIZATION_FAILED);
    let alter = AlterClientQuotasRequest::default().with_entries(vec![
        alter_client_quotas_request::EntryData::default()
            .with_entity(vec![alter_client_quotas_request::EntityData::default()
                .with_entity_type(text("user"))
                .with_entity_name(Some(text("alice")))])
            .with_ops(vec![alter_client_quotas_request::OpData::default()
                .with_key(text("producer_byte_rate"))
                .with_value(1e9)]),
    ]);
    let response = call(&mut alice, &alter, 1).await;
    assert_eq!(response.entries[0].error_code, code::CLUSTER_AUTHORIZATION_FAILED);
    let mut admin = cluster.login("admin").await;
    assert_eq!(call(&mut admin, &describe, 1).await.entries, Some(vec![]), "nothing was set");
}
