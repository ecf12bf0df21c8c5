//! CreateTopics: checks names, partition counts and configs, then creates in storage (which
//! settles races between brokers: exactly one creator wins, the others get
//! TOPIC_ALREADY_EXISTS).
//!
//! ACLs: CREATE on the cluster or on the topic (TOPIC_AUTHORIZATION_FAILED); the created
//! topic's configs are returned only with DESCRIBE_CONFIGS on it.

use std::collections::BTreeMap;

use kafka_protocol::messages::create_topics_request::CreatableTopic;
use kafka_protocol::messages::create_topics_response::{
    CreatableTopicConfigs, CreatableTopicResult,
};
pub(super) use kafka_protocol::messages::CreateTopicsRequest;
use kafka_protocol::messages::CreateTopicsResponse;
use skiff_protocol::ErrorCode;
use skiff_storage::TopicSpec;

use super::{str_bytes, Operation, RequestContext, ResourceType};
use crate::topic_config::{self, SOURCE_DEFAULT, SOURCE_TOPIC, TOPIC_CONFIGS};
use crate::topics::{self, Refusal};
use crate::Broker;

pub(super) async fn handle(
    broker: &Broker,
    version: i16,
    request: CreateTopicsRequest,
    context: &RequestContext<'_>,
) -> CreateTopicsResponse {
    let mut results = Vec::with_capacity(request.topics.len());
    for topic in request.topics {
        if !super::metadata::may_create(context, &topic.name) {
            let result = CreatableTopicResult::default().with_name(topic.name.clone());
            let refusal = Refusal::new(
                ErrorCode::TopicAuthorizationFailed,
                format!("not authorized to create topic {}", topic.name.as_str()),
            );
            results.push(refused(result, refusal));
            continue;
        }
        let configs_visible =
            context.allows(Operation::DescribeConfigs, ResourceType::Topic, &topic.name);
        let result = create_one(broker, version, topic, request.validate_only).await;
        results.push(if configs_visible { result } else { without_configs(result) });
    }
    CreateTopicsResponse::default().with_topics(results)
}

async fn create_one(
    broker: &Broker,
    version: i16,
    topic: CreatableTopic,
    validate_only: bool,
) -> CreatableTopicResult {
    let result = CreatableTopicResult::default().with_name(topic.name.clone());
    let spec = match spec_for(broker, &topic) {
        Ok(spec) => spec,
        Err(refusal) => return refused(result, refusal),
    };
    if validate_only {
        return match topics::check_spec(&spec) {
            Ok(()) => described(version, result, &spec.configs, spec.partitions),
            Err(refusal) => refused(result, refusal),
        };
    }
    match topics::create(broker, spec).await {
        Ok(meta) => {
            tracing::info!(topic = %meta.name, partitions = meta.partitions, "created topic");
            described(version, result.with_topic_id(meta.id), &meta.configs, meta.partitions)
        }
        Err(refusal) => refused(result, refusal),
    }
}

/// Turns the request into a spec: -1 partitions means the broker default; explicit replica
/// assignments give the count; replication is storage's business, so any factor is accepted.
fn spec_for(broker: &Broker, topic: &CreatableTopic) -> Result<TopicSpec, Refusal> {
    let partitions = if !topic.assignments.is_empty() {
        i32::try_from(topic.assignments.len()).unwrap_or(i32::MAX)
    } else if topic.num_partitions == -1 {
        broker.config.num_partitions
    } else {
        topic.num_partitions
    };
    if topic.replication_factor == 0 || topic.replication_factor < -1 {
        return Err(Refusal::new(
            ErrorCode::InvalidReplicationFactor,
            format!("replication factor must be -1 or positive, got {}", topic.replication_factor),
        ));
    }
    let mut configs = BTreeMap::new();
    for config in &topic.configs {
        if let Some(value) = &config.value {
            configs.insert(config.name.to_string(), value.to_string());
        }
    }
    Ok(TopicSpec { name: topic.name.to_string(), partitions, configs })
}

/// What a principal that may not DESCRIBE_CONFIGS the topic is told of its configs.
fn without_configs(result: CreatableTopicResult) -> CreatableTopicResult {
    if result.error_code != 0 || result.configs.is_none() {
        return result;
    }
    result
        .with_configs(None)
        .with_topic_config_error_code(ErrorCode::TopicAuthorizationFailed.code())
}

fn refused(result: CreatableTopicResult, refusal: Refusal) -> CreatableTopicResult {
    result
        .with_error_code(refusal.code)
        .with_error_message(Some(str_bytes(refusal.message)))
        .with_num_partitions(-1)
        .with_replication_factor(-1)
}

/// A successful result carries the topic's full config (v5+; the codec refuses it earlier), as
/// Kafka's does.
fn described(
    version: i16,
    result: CreatableTopicResult,
    overrides: &BTreeMap<String, String>,
    partitions: i32,
) -> CreatableTopicResult {
    if version < 5 {
        return result;
    }
    let configs = TOPIC_CONFIGS
        .iter()
        .map(|def| {
            let value = topic_config::effective(overrides, def.name).map(str_bytes);
            let source =
                if overrides.contains_key(def.name) { SOURCE_TOPIC } else { SOURCE_DEFAULT };
            CreatableTopicConfigs::default()
                .with_name(str_bytes(def.name))
                .with_value(value)
                .with_config_source(source)
        })
        .collect();
    result.with_num_partitions(partitions).with_replication_factor(1).with_configs(Some(configs))
}
