//! IncrementalAlterConfigs: SET, DELETE, APPEND and SUBTRACT (the last two on list configs
//! such as `cleanup.policy`) applied to the named keys only.
//!
//! ACLs: ALTER_CONFIGS on the topic (TOPIC_AUTHORIZATION_FAILED) or, for broker configs, on
//! the cluster (CLUSTER_AUTHORIZATION_FAILED).

use kafka_protocol::messages::incremental_alter_configs_request::AlterableConfig;
use kafka_protocol::messages::incremental_alter_configs_response::AlterConfigsResourceResponse;
pub(super) use kafka_protocol::messages::IncrementalAlterConfigsRequest;
use kafka_protocol::messages::IncrementalAlterConfigsResponse;
use skiff_protocol::ErrorCode;
use skiff_storage::ConfigChange;

use super::config_changes::{apply, denied, Outcome};
use super::describe_configs::RESOURCE_TOPIC;
use super::{str_bytes, Operation, RequestContext};
use crate::{topic_config, Broker};

const SET: i8 = 0;
const DELETE: i8 = 1;
const APPEND: i8 = 2;
const SUBTRACT: i8 = 3;

pub(super) async fn handle(
    broker: &Broker,
    _version: i16,
    request: IncrementalAlterConfigsRequest,
    context: &RequestContext<'_>,
) -> IncrementalAlterConfigsResponse {
    let mut responses = Vec::with_capacity(request.resources.len());
    for resource in request.resources {
        let refused = denied(
            context,
            resource.resource_type,
            &resource.resource_name,
            Operation::AlterConfigs,
        );
        let outcome = if let Some(code) = refused {
            Outcome::Refused { code, message: str_bytes("not authorized to alter these configs") }
        } else {
            match changes(
                broker,
                resource.resource_type,
                &resource.resource_name,
                &resource.configs,
            )
            .await
            {
                Ok(changes) => {
                    apply(
                        broker,
                        resource.resource_type,
                        &resource.resource_name,
                        changes,
                        false,
                        request.validate_only,
                    )
                    .await
                }
                Err(outcome) => outcome,
            }
        };
        let response = AlterConfigsResourceResponse::default()
            .with_resource_type(resource.resource_type)
            .with_resource_name(resource.resource_name);
        responses.push(match outcome {
            Outcome::Done => response,
            Outcome::Refused { code, message } => {
                response.with_error_code(code).with_error_message(Some(message))
            }
        });
    }
    IncrementalAlterConfigsResponse::default().with_responses(responses)
}

/// Turns operations into plain changes; list operations start from the current value.
async fn changes(
    broker: &Broker,
    resource_type: i8,
    name: &str,
    configs: &[AlterableConfig],
) -> Result<Vec<ConfigChange>, Outcome> {
    let needs_current = configs.iter().any(|c| matches!(c.config_operation, APPEND | SUBTRACT));
    let current = if needs_current && resource_type == RESOURCE_TOPIC {
        match broker.storage.meta.topic(name).await {
            Ok(Some(topic)) => topic.configs,
            Ok(None) => {
                return Err(Outcome::refused(
                    ErrorCode::UnknownTopicOrPartition,
                    format!("no topic {name}"),
                ))
            }
            Err(error) => {
                return Err(Outcome::refused(ErrorCode::KafkaStorageError, error.to_string()))
            }
        }
    } else {
        Default::default()
    };
    configs
        .iter()
        .map(|config| {
            let key = config.name.to_string();
            let value = config.value.as_ref().map(ToString::to_string);
            let value = match config.config_operation {
                SET => value,
                DELETE => None,
                APPEND | SUBTRACT => {
                    let existing = topic_config::effective(&current, &key).unwrap_or_default();
                    Some(edit_list(
                        existing,
                        value.as_deref().unwrap_or_default(),
                        config.config_operation == APPEND,
                    ))
                }
                other => {
                    return Err(Outcome::refused(
                        ErrorCode::InvalidRequest,
                        format!("unknown config operation {other}"),
                    ))
                }
            };
            Ok(ConfigChange { key, value })
        })
        .collect()
}

/// Adds or removes comma-separated items, keeping order and avoiding duplicates.
fn edit_list(existing: &str, items: &str, append: bool) -> String {
    let mut list: Vec<&str> =
        existing.split(',').map(str::trim).filter(|s| !s.is_empty()).collect();
    for item in items.split(',').map(str::trim).filter(|s| !s.is_empty()) {
        if append {
            if !list.contains(&item) {
                list.push(item);
            }
        } else {
            list.retain(|kept| *kept != item);
        }
    }
    list.join(",")
}

#[cfg(test)]
mod tests {
    use super::edit_list;

    #[test]
    fn list_edits_keep_order_without_duplicates() {
        assert_eq!(edit_list("delete", "compact", true), "delete,compact");
        assert_eq!(edit_list("delete,compact", "compact", true), "delete,compact");
        assert_eq!(edit_list("delete,compact", "delete", false), "compact");
        assert_eq!(edit_list("", "compact", true), "compact");
    }
}
