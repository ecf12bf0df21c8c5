//! Validating and applying config changes, shared by AlterConfigs and IncrementalAlterConfigs.

use kafka_protocol::protocol::StrBytes;
use skiff_protocol::ErrorCode;
use std::collections::BTreeMap;

use skiff_storage::{ConfigChange, StorageError};

use super::describe_configs::{RESOURCE_BROKER, RESOURCE_TOPIC};
use super::{str_bytes, Operation, RequestContext, ResourceType};
use crate::{errors, topic_config, Broker};

pub(super) enum Outcome {
    Done,
    Refused { code: i16, message: StrBytes },
}

impl Outcome {
    pub(super) fn refused(code: ErrorCode, message: impl Into<String>) -> Self {
        Self::Refused { code: code.code(), message: str_bytes(message) }
    }
}

/// Kafka's ACL on a config resource: `operation` (DESCRIBE_CONFIGS or ALTER_CONFIGS) on the
/// topic, or on the cluster for broker configs. Returns the error code when denied.
pub(super) fn denied(
    context: &RequestContext<'_>,
    resource_type: i8,
    name: &str,
    operation: Operation,
) -> Option<i16> {
    let (allowed, code) = match resource_type {
        RESOURCE_TOPIC => (
            context.allows(operation, ResourceType::Topic, name),
            ErrorCode::TopicAuthorizationFailed,
        ),
        _ => (context.allows_cluster(operation), ErrorCode::ClusterAuthorizationFailed),
    };
    (!allowed).then(|| code.code())
}

/// Checks every change, then applies them atomically (unless `validate_only`).
pub(super) async fn apply(
    broker: &Broker,
    resource_type: i8,
    name: &str,
    changes: Vec<ConfigChange>,
    replace_all: bool,
    validate_only: bool,
) -> Outcome {
    match resource_type {
        RESOURCE_TOPIC => {}
        RESOURCE_BROKER => {
            return Outcome::refused(
                ErrorCode::InvalidRequest,
                "broker configs are static: set them with skiff broker flags",
            )
        }
        other => {
            return Outcome::refused(
                ErrorCode::InvalidRequest,
                format!("unsupported resource type {other}"),
            )
        }
    }
    for change in &changes {
        let checked = match &change.value {
            Some(value) => topic_config::validate(&change.key, value),
            None if topic_config::find(&change.key).is_some() => Ok(()),
            None => Err(format!("unknown topic config {}", change.key)),
        };
        if let Err(message) = checked {
            return Outcome::refused(ErrorCode::InvalidConfig, message);
        }
    }
    if let Err(outcome) = check_result(broker, name, &changes, replace_all).await {
        return outcome;
    }
    let result = if validate_only {
        broker.storage.meta.topic(name).await.and_then(|found| {
            found.map(|_| ()).ok_or_else(|| StorageError::NotFound(format!("topic {name}")))
        })
    } else {
        broker.storage.meta.alter_configs(name, changes, replace_all).await.map(|meta| {
            tracing::info!(topic = %meta.name, configs = ?meta.configs, "altered topic configs");
        })
    };
    match result {
        Ok(()) => Outcome::Done,
        Err(StorageError::NotFound(_)) => {
            Outcome::refused(ErrorCode::UnknownTopicOrPartition, format!("no topic {name}"))
        }
        Err(error) => Outcome::Refused {
            code: errors::code_for(&error),
            message: str_bytes(error.to_string()),
        },
    }
}

/// Checks the configs a topic would have after `changes`, as a whole: combinations that
/// cannot work, and a table the topic cannot have.
async fn check_result(
    broker: &Broker,
    name: &str,
    changes: &[ConfigChange],
    replace_all: bool,
) -> Result<(), Outcome> {
    let topic = match broker.storage.meta.topic(name).await {
        Ok(Some(topic)) => topic,
        Ok(None) => {
            return Err(Outcome::refused(
                ErrorCode::UnknownTopicOrPartition,
                format!("no topic {name}"),
            ))
        }
        Err(error) => {
            return Err(Outcome::Refused {
                code: errors::code_for(&error),
                message: str_bytes(error.to_string()),
            })
        }
    };
    let mut configs = if replace_all { BTreeMap::new() } else { topic.configs };
    for change in changes {
        match &change.value {
            Some(value) => configs.insert(change.key.clone(), value.clone()),
            None => configs.remove(&change.key),
        };
    }
    topic_config::validate_all(&configs)
        .map_err(|message| Outcome::refused(ErrorCode::InvalidConfig, message))?;
    crate::tables::config::check(broker, name, &configs)
        .await
        .map_err(|message| Outcome::refused(ErrorCode::InvalidConfig, message))
}
