//! Metadata: this broker leads every partition. Any broker can serve any partition, so each
//! broker names itself, at the advertised address of the listener the client came in on;
//! clients then send everything for the cluster to whichever broker they asked.
//!
//! ACLs: a topic is described only to a principal with DESCRIBE on it: a request for all
//! topics leaves the others out, one naming them gets TOPIC_AUTHORIZATION_FAILED. Creating a
//! topic on request (auto.create.topics.enable) needs CREATE on the cluster or the topic.
//! Asked for (v8+), the operations the principal may perform on each topic and the cluster.

use kafka_protocol::messages::metadata_response::{
    MetadataResponseBroker, MetadataResponsePartition, MetadataResponseTopic,
};
pub(super) use kafka_protocol::messages::MetadataRequest;
use kafka_protocol::messages::{BrokerId, MetadataResponse, TopicName};
use skiff_protocol::ErrorCode;
use skiff_storage::TopicMeta;
use uuid::Uuid;

use super::{str_bytes, Operation, RequestContext, ResourceType};
use crate::{errors, topics, Broker};

pub(super) async fn handle(
    broker: &Broker,
    version: i16,
    request: MetadataRequest,
    context: &RequestContext<'_>,
) -> MetadataResponse {
    let cluster_id = match broker.cluster_id().await {
        Ok(id) => Some(str_bytes(id)),
        Err(error) => {
            tracing::warn!(%error, "cluster id unavailable");
            None
        }
    };
    // v0 treats an empty list as "all topics"; later versions use null for that.
    let all_topics = match &request.topics {
        None => true,
        Some(list) => list.is_empty() && version == 0,
    };
    let topics = if all_topics {
        match broker.storage.meta.topics().await {
            Ok(all) => all
                .iter()
                .filter(|topic| {
                    context.allows(Operation::Describe, ResourceType::Topic, &topic.name)
                })
                .map(|topic| describe(broker, topic))
                .collect(),
            Err(error) => {
                tracing::warn!(%error, "listing topics failed");
                Vec::new()
            }
        }
    } else {
        let auto_create =
            broker.config.auto_create_topics && (version < 4 || request.allow_auto_topic_creation);
        let mut topics = Vec::new();
        for wanted in request.topics.unwrap_or_default() {
            let name = wanted.name.map(|n| n.0.to_string());
            topics.push(lookup(broker, name, wanted.topic_id, auto_create, context).await);
        }
        topics
    };
    let topics = if request.include_topic_authorized_operations {
        topics.into_iter().map(|topic| with_operations(topic, context)).collect()
    } else {
        topics
    };
    let (host, port) = context.advertised(broker);
    let response = if request.include_cluster_authorized_operations && version <= 10 {
        MetadataResponse::default()
            .with_cluster_authorized_operations(context.cluster_authorized_operations())
    } else {
        MetadataResponse::default()
    };
    response
        .with_brokers(vec![MetadataResponseBroker::default()
            .with_node_id(BrokerId(broker.config.node_id))
            .with_host(str_bytes(host))
            .with_port(port)])
        .with_cluster_id(cluster_id)
        .with_controller_id(BrokerId(broker.config.node_id))
        .with_topics(topics)
}

async fn lookup(
    broker: &Broker,
    name: Option<String>,
    id: Uuid,
    auto_create: bool,
    context: &RequestContext<'_>,
) -> MetadataResponseTopic {
    let may_describe = |name: &str| context.allows(Operation::Describe, ResourceType::Topic, name);
    let denied = ErrorCode::TopicAuthorizationFailed.code();
    if name.as_deref().is_some_and(|name| !may_describe(name)) {
        return failed(name, id, denied);
    }
    let found = match &name {
        Some(name) => broker.storage.meta.topic(name).await,
        None => broker.storage.meta.topic_by_id(id).await,
    };
    match found {
        // A topic asked for by id is not named to who may not see it.
        Ok(Some(topic)) if !may_describe(&topic.name) => failed(None, id, denied),
        Ok(Some(topic)) => describe(broker, &topic),
        Ok(None) => match name {
            Some(name) if auto_create && !may_create(context, &name) => {
                failed(Some(name), id, denied)
            }
            Some(name) if auto_create => match topics::auto_create(broker, &name).await {
                Ok(topic) => {
                    tracing::info!(topic = %name, partitions = topic.partitions, "auto-created topic");
                    describe(broker, &topic)
                }
                Err(refusal) => failed(Some(name), id, refusal.code),
            },
            Some(name) => {
                let code = if topics::validate_name(&name).is_err() {
                    ErrorCode::InvalidTopicException
                } else {
                    ErrorCode::UnknownTopicOrPartition
                };
                failed(Some(name), id, code.code())
            }
            None => failed(None, id, ErrorCode::UnknownTopicId.code()),
        },
        Err(error) => failed(name, id, errors::code_for(&error)),
    }
}

/// A described topic with what the principal may do on it (v8+, when the client asks).
fn with_operations(
    topic: MetadataResponseTopic,
    context: &RequestContext<'_>,
) -> MetadataResponseTopic {
    match (&topic.name, topic.error_code) {
        (Some(name), 0) => {
            let operations = context.authorized_operations(ResourceType::Topic, name);
            topic.with_topic_authorized_operations(operations)
        }
        _ => topic,
    }
}

/// Kafka's rule for creating a topic: CREATE on the cluster, or on the topic itself.
pub(super) fn may_create(context: &RequestContext<'_>, topic: &str) -> bool {
    context.allows_cluster(Operation::Create)
        || context.allows(Operation::Create, ResourceType::Topic, topic)
}

fn failed(name: Option<String>, id: Uuid, code: i16) -> MetadataResponseTopic {
    MetadataResponseTopic::default()
        .with_error_code(code)
        .with_name(name.map(|name| TopicName(str_bytes(name))))
        .with_topic_id(id)
}

fn describe(broker: &Broker, topic: &TopicMeta) -> MetadataResponseTopic {
    let node = BrokerId(broker.config.node_id);
    let partitions = (0..topic.partitions)
        .map(|index| {
            MetadataResponsePartition::default()
                .with_partition_index(index)
                .with_leader_id(node)
                .with_leader_epoch(0)
                .with_replica_nodes(vec![node])
                .with_isr_nodes(vec![node])
        })
        .collect();
    MetadataResponseTopic::default()
        .with_name(Some(TopicName(str_bytes(topic.name.clone()))))
        .with_topic_id(topic.id)
        .with_partitions(partitions)
}
