//! AlterConfigs (legacy): replaces a topic's whole set of overrides. Broker configs are static
//! (set by flags), so altering them is refused.
//!
//! ACLs: ALTER_CONFIGS on the topic (TOPIC_AUTHORIZATION_FAILED) or, for broker configs, on
//! the cluster (CLUSTER_AUTHORIZATION_FAILED).

use kafka_protocol::messages::alter_configs_response::AlterConfigsResourceResponse;
pub(super) use kafka_protocol::messages::AlterConfigsRequest;
use kafka_protocol::messages::AlterConfigsResponse;
use skiff_storage::ConfigChange;

use super::config_changes::{apply, denied, Outcome};
use super::{Operation, RequestContext};
use crate::Broker;

pub(super) async fn handle(
    broker: &Broker,
    _version: i16,
    request: AlterConfigsRequest,
    context: &RequestContext<'_>,
) -> AlterConfigsResponse {
    let mut responses = Vec::with_capacity(request.resources.len());
    for resource in request.resources {
        let refused = denied(
            context,
            resource.resource_type,
            &resource.resource_name,
            Operation::AlterConfigs,
        );
        if let Some(code) = refused {
            responses.push(
                AlterConfigsResourceResponse::default()
                    .with_resource_type(resource.resource_type)
                    .with_resource_name(resource.resource_name)
                    .with_error_code(code),
            );
            continue;
        }
        let changes = resource
            .configs
            .iter()
            .map(|config| ConfigChange {
                key: config.name.to_string(),
                value: config.value.as_ref().map(ToString::to_string),
            })
            .collect();
        let outcome = apply(
            broker,
            resource.resource_type,
            &resource.resource_name,
            changes,
            true,
            request.validate_only,
        )
        .await;
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
    AlterConfigsResponse::default().with_responses(responses)
}
