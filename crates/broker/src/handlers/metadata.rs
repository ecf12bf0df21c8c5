//! Metadata: this broker leads every partition. Any broker can serve any partition, so each
//! broker names itself, at the advertised address of the listener the client came in on;
//! clients then send everything for the cluster to whichever broker they asked.

use kafka_protocol::messages::metadata_response::{
    MetadataResponseBroker, MetadataResponsePartition, MetadataResponseTopic,
};
pub(super) use kafka_protocol::messages::MetadataRequest;
use kafka_protocol::messages::{BrokerId, MetadataResponse, TopicName};
use skiff_protocol::ErrorCode;
use skiff_storage::TopicMeta;
use uuid::Uuid;

use super::{str_bytes, RequestContext};
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
            Ok(all) => all.iter().map(|topic| describe(broker, topic)).collect(),
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
            topics.push(
                lookup(broker, wanted.name.map(|n| n.0.to_string()), wanted.topic_id, auto_create)
                    .await,
            );
        }
        topics
    };
    let (host, port) = context.advertised(broker);
    MetadataResponse::default()
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
) -> MetadataResponseTopic {
    let found = match &name {
        Some(name) => broker.storage.meta.topic(name).await,
        None => broker.storage.meta.topic_by_id(id).await,
    };
    match found {
        Ok(Some(topic)) => describe(broker, &topic),
        Ok(None) => match name {
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
