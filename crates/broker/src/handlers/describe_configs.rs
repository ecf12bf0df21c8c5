//! DescribeConfigs: a topic's full config (overrides from storage, the rest as defaults with
//! their source) and the broker's static settings.
//!
//! ACLs: DESCRIBE_CONFIGS on the topic (TOPIC_AUTHORIZATION_FAILED) or, for broker configs,
//! on the cluster (CLUSTER_AUTHORIZATION_FAILED).

use kafka_protocol::messages::describe_configs_request::DescribeConfigsResource;
use kafka_protocol::messages::describe_configs_response::{
    DescribeConfigsResourceResult, DescribeConfigsResult, DescribeConfigsSynonym,
};
pub(super) use kafka_protocol::messages::DescribeConfigsRequest;
use kafka_protocol::messages::DescribeConfigsResponse;
use kafka_protocol::protocol::StrBytes;
use skiff_protocol::ErrorCode;

use super::{str_bytes, Operation, RequestContext};
use crate::topic_config::{
    ConfigType, SOURCE_DEFAULT, SOURCE_STATIC_BROKER, SOURCE_TOPIC, TOPIC_CONFIGS,
};
use crate::{errors, Broker};

/// Config resource types (shared with the alter handlers).
pub(super) const RESOURCE_TOPIC: i8 = 2;
pub(super) const RESOURCE_BROKER: i8 = 4;

/// One config entry as the handler sees it, before encoding.
struct Entry {
    name: String,
    value: String,
    source: i8,
    kind: ConfigType,
    doc: &'static str,
    /// The default beneath an override, reported as a synonym.
    default: Option<&'static str>,
}

pub(super) async fn handle(
    broker: &Broker,
    _version: i16,
    request: DescribeConfigsRequest,
    context: &RequestContext<'_>,
) -> DescribeConfigsResponse {
    let mut results = Vec::with_capacity(request.resources.len());
    for resource in &request.resources {
        let result = DescribeConfigsResult::default()
            .with_resource_type(resource.resource_type)
            .with_resource_name(resource.resource_name.clone());
        let refused = super::config_changes::denied(
            context,
            resource.resource_type,
            &resource.resource_name,
            Operation::DescribeConfigs,
        );
        let entries = match (refused, resource.resource_type) {
            (Some(code), _) => Err((code, "not authorized to describe these configs".into())),
            (None, RESOURCE_TOPIC) => topic_entries(broker, &resource.resource_name).await,
            (None, RESOURCE_BROKER) => Ok(broker_entries(broker)),
            (None, other) => Err((
                ErrorCode::InvalidRequest.code(),
                format!("unsupported resource type {other}"),
            )),
        };
        results.push(match entries {
            Ok(entries) => result.with_configs(encode(entries, resource, &request)),
            Err((code, message)) => {
                result.with_error_code(code).with_error_message(Some(str_bytes(message)))
            }
        });
    }
    DescribeConfigsResponse::default().with_results(results)
}

async fn topic_entries(broker: &Broker, name: &str) -> Result<Vec<Entry>, (i16, String)> {
    let topic = match broker.storage.meta.topic(name).await {
        Ok(Some(topic)) => topic,
        Ok(None) => {
            return Err((ErrorCode::UnknownTopicOrPartition.code(), format!("no topic {name}")))
        }
        Err(error) => return Err((errors::code_for(&error), error.to_string())),
    };
    Ok(TOPIC_CONFIGS
        .iter()
        .map(|def| match topic.configs.get(def.name) {
            Some(value) => Entry {
                name: def.name.into(),
                value: value.clone(),
                source: SOURCE_TOPIC,
                kind: def.kind,
                doc: def.doc,
                default: Some(def.default),
            },
            None => Entry {
                name: def.name.into(),
                value: def.default.into(),
                source: SOURCE_DEFAULT,
                kind: def.kind,
                doc: def.doc,
                default: None,
            },
        })
        .collect())
}

fn broker_entries(broker: &Broker) -> Vec<Entry> {
    let config = &broker.config;
    let entry = |name: &str, value: String, kind: ConfigType, doc: &'static str| Entry {
        name: name.into(),
        value,
        source: SOURCE_STATIC_BROKER,
        kind,
        doc,
        default: None,
    };
    vec![
        entry(
            "advertised.listeners",
            listed(config, |l| format!("{}://{}:{}", l.name, l.advertised_host, l.advertised_port)),
            ConfigType::String,
            "Address clients are told to connect to.",
        ),
        entry(
            "auto.create.topics.enable",
            config.auto_create_topics.to_string(),
            ConfigType::Boolean,
            "Create unknown topics asked for in Metadata.",
        ),
        entry(
            "default.replication.factor",
            "1".into(),
            ConfigType::Int,
            "Storage provides durability; reported as 1.",
        ),
        entry(
            "listener.security.protocol.map",
            listed(config, |l| format!("{}:{}", l.name, l.protocol)),
            ConfigType::String,
            "The security protocol of each listener.",
        ),
        entry(
            "listeners",
            listed(config, |l| format!("{}://{}", l.name, l.bind)),
            ConfigType::String,
            "Address the broker accepts clients on.",
        ),
        entry(
            "node.id",
            config.node_id.to_string(),
            ConfigType::Int,
            "Node id reported to clients.",
        ),
        entry(
            "group.initial.rebalance.delay.ms",
            config.group_initial_rebalance_delay_ms.to_string(),
            ConfigType::Int,
            "Longest the first rebalance of an empty group waits for more members.",
        ),
        entry(
            "skiff.group.initial.rebalance.quiet.ms",
            config.group_initial_rebalance_quiet_ms.to_string(),
            ConfigType::Int,
            "The first rebalance completes once no new member arrived for this long.",
        ),
        entry(
            "group.consumer.heartbeat.interval.ms",
            config.group_consumer.heartbeat_interval_ms.to_string(),
            ConfigType::Int,
            "How often consumer-protocol members heartbeat.",
        ),
        entry(
            "group.consumer.session.timeout.ms",
            config.group_consumer.session_timeout_ms.to_string(),
            ConfigType::Int,
            "A consumer-protocol member silent for longer is removed from its group.",
        ),
        entry(
            "group.consumer.assignors",
            config
                .group_consumer
                .assignors
                .iter()
                .map(|assignor| assignor.as_str())
                .collect::<Vec<_>>()
                .join(","),
            ConfigType::List,
            "Server-side assignors of consumer-protocol groups; the first is the default.",
        ),
        entry(
            "group.consumer.max.size",
            config.group_consumer.max_size.to_string(),
            ConfigType::Int,
            "Most members a consumer-protocol group may have.",
        ),
        entry(
            "num.partitions",
            config.num_partitions.to_string(),
            ConfigType::Int,
            "Partitions of auto-created topics.",
        ),
        entry(
            "socket.request.max.bytes",
            config.max_request_bytes.to_string(),
            ConfigType::Int,
            "Largest request accepted.",
        ),
    ]
}

/// Filters by requested keys and adds synonyms and docs when asked.
fn encode(
    entries: Vec<Entry>,
    resource: &DescribeConfigsResource,
    request: &DescribeConfigsRequest,
) -> Vec<DescribeConfigsResourceResult> {
    let wanted = |name: &str| match &resource.configuration_keys {
        Some(keys) if !keys.is_empty() => keys.iter().any(|key| key.as_str() == name),
        _ => true,
    };
    entries
        .into_iter()
        .filter(|entry| wanted(&entry.name))
        .map(|entry| {
            let synonyms = if request.include_synonyms { synonyms(&entry) } else { Vec::new() };
            DescribeConfigsResourceResult::default()
                .with_name(str_bytes(entry.name))
                .with_value(Some(str_bytes(entry.value)))
                .with_config_source(entry.source)
                .with_config_type(entry.kind as i8)
                .with_read_only(entry.source == SOURCE_STATIC_BROKER)
                .with_synonyms(synonyms)
                .with_documentation(
                    request.include_documentation.then(|| StrBytes::from_static_str(entry.doc)),
                )
        })
        .collect()
}

fn synonyms(entry: &Entry) -> Vec<DescribeConfigsSynonym> {
    let mut list = vec![DescribeConfigsSynonym::default()
        .with_name(str_bytes(entry.name.clone()))
        .with_value(Some(str_bytes(entry.value.clone())))
        .with_source(entry.source)];
    if let Some(default) = entry.default {
        list.push(
            DescribeConfigsSynonym::default()
                .with_name(str_bytes(entry.name.clone()))
                .with_value(Some(StrBytes::from_static_str(default)))
                .with_source(SOURCE_DEFAULT),
        );
    }
    list
}

/// The broker's listeners, each shown by `show`, comma-separated as Kafka's list configs are.
fn listed(config: &crate::BrokerConfig, show: impl Fn(&crate::ListenerConfig) -> String) -> String {
    config.listeners.iter().map(show).collect::<Vec<_>>().join(",")
}
