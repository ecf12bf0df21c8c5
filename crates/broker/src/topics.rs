//! Topic names and creation, shared by CreateTopics and Metadata's auto-creation.

use std::collections::BTreeMap;

use skiff_protocol::ErrorCode;
use skiff_storage::{StorageError, TopicMeta, TopicSpec};

use crate::{topic_config, Broker};

/// Kafka's topic name rules: 1-249 characters of `[a-zA-Z0-9._-]`, not `.` or `..`.
pub(crate) fn validate_name(name: &str) -> Result<(), String> {
    if name.is_empty() || name.len() > 249 {
        return Err(format!("topic name must have 1 to 249 characters, got {}", name.len()));
    }
    if name == "." || name == ".." {
        return Err(format!("topic name {name:?} is not allowed"));
    }
    if let Some(bad) =
        name.chars().find(|c| !(c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-')))
    {
        return Err(format!("topic name {name:?} has illegal character {bad:?}"));
    }
    Ok(())
}

/// A refusal with a Kafka error code and a message for the client.
#[derive(Debug)]
pub(crate) struct Refusal {
    pub(crate) code: i16,
    pub(crate) message: String,
}

impl Refusal {
    pub(crate) fn new(code: ErrorCode, message: impl Into<String>) -> Self {
        Self { code: code.code(), message: message.into() }
    }
}

impl From<StorageError> for Refusal {
    fn from(error: StorageError) -> Self {
        Self { code: crate::errors::code_for(&error), message: error.to_string() }
    }
}

/// Checks a topic before creation: name, partition count, configs.
pub(crate) fn check_spec(spec: &TopicSpec) -> Result<(), Refusal> {
    validate_name(&spec.name).map_err(|m| Refusal::new(ErrorCode::InvalidTopicException, m))?;
    if spec.partitions <= 0 {
        return Err(Refusal::new(
            ErrorCode::InvalidPartitions,
            format!("partition count must be positive, got {}", spec.partitions),
        ));
    }
    topic_config::validate_all(&spec.configs).map_err(|m| Refusal::new(ErrorCode::InvalidConfig, m))
}

/// Creates a topic after checking it.
pub(crate) async fn create(broker: &Broker, spec: TopicSpec) -> Result<TopicMeta, Refusal> {
    check_spec(&spec)?;
    crate::tables::config::check(broker, &spec.name, &spec.configs)
        .await
        .map_err(|message| Refusal::new(ErrorCode::InvalidConfig, message))?;
    Ok(broker.storage.meta.create_topic(spec).await?)
}

/// Creates a topic with the broker defaults (Metadata auto-creation); a topic created by
/// another broker in the meantime is fine.
pub(crate) async fn auto_create(broker: &Broker, name: &str) -> Result<TopicMeta, Refusal> {
    let spec = TopicSpec {
        name: name.to_owned(),
        partitions: broker.config.num_partitions,
        configs: BTreeMap::new(),
    };
    match create(broker, spec).await {
        Err(refusal) if refusal.code == ErrorCode::TopicAlreadyExists.code() => broker
            .storage
            .meta
            .topic(name)
            .await?
            .ok_or_else(|| Refusal::new(ErrorCode::UnknownTopicOrPartition, "topic vanished")),
        other => other,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn topic_names_follow_kafka_rules() {
        assert!(validate_name("orders.v1_x-y").is_ok());
        assert!(validate_name("").is_err());
        assert!(validate_name(".").is_err());
        assert!(validate_name("..").is_err());
        assert!(validate_name("a b").is_err());
        assert!(validate_name("ü").is_err());
        assert!(validate_name(&"a".repeat(249)).is_ok());
        assert!(validate_name(&"a".repeat(250)).is_err());
    }
}
