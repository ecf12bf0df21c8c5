//! DeleteTopics: by name (v0-5) or by name or id (v6+).
//!
//! ACLs: DELETE on each topic (TOPIC_AUTHORIZATION_FAILED; a topic named by id is first
//! checked for DESCRIBE, so that its name is not revealed to who may not see it).

use kafka_protocol::messages::delete_topics_response::DeletableTopicResult;
pub(super) use kafka_protocol::messages::DeleteTopicsRequest;
use kafka_protocol::messages::{DeleteTopicsResponse, TopicName};
use skiff_protocol::ErrorCode;
use skiff_storage::StorageError;
use uuid::Uuid;

use super::{str_bytes, Operation, RequestContext, ResourceType};
use crate::{errors, Broker};

pub(super) async fn handle(
    broker: &Broker,
    _version: i16,
    request: DeleteTopicsRequest,
    context: &RequestContext<'_>,
) -> DeleteTopicsResponse {
    let mut wanted: Vec<(Option<String>, Uuid)> =
        request.topic_names.iter().map(|name| (Some(name.0.to_string()), Uuid::nil())).collect();
    wanted.extend(
        request
            .topics
            .iter()
            .map(|topic| (topic.name.as_ref().map(|n| n.0.to_string()), topic.topic_id)),
    );
    let mut responses = Vec::with_capacity(wanted.len());
    for (name, id) in wanted {
        responses.push(delete_one(broker, name, id, context).await);
    }
    DeleteTopicsResponse::default().with_responses(responses)
}

async fn delete_one(
    broker: &Broker,
    name: Option<String>,
    id: Uuid,
    context: &RequestContext<'_>,
) -> DeletableTopicResult {
    let result = DeletableTopicResult::default().with_topic_id(id);
    let denied = ErrorCode::TopicAuthorizationFailed.code();
    let may = |operation, name: &str| context.allows(operation, ResourceType::Topic, name);
    let name = match name {
        Some(name) => name,
        None => match broker.storage.meta.topic_by_id(id).await {
            Ok(Some(topic)) if !may(Operation::Describe, &topic.name) => {
                return result.with_error_code(denied)
            }
            Ok(Some(topic)) => topic.name,
            Ok(None) => return result.with_error_code(ErrorCode::UnknownTopicId.code()),
            Err(error) => return result.with_error_code(errors::code_for(&error)),
        },
    };
    let result = result.with_name(Some(TopicName(str_bytes(name.clone()))));
    if !may(Operation::Delete, &name) {
        return result.with_error_code(denied);
    }
    match broker.storage.meta.delete_topic(&name).await {
        Ok(()) => {
            tracing::info!(topic = %name, "deleted topic");
            result
        }
        Err(StorageError::NotFound(_)) => {
            result.with_error_code(ErrorCode::UnknownTopicOrPartition.code())
        }
        Err(error) => result
            .with_error_code(errors::code_for(&error))
            .with_error_message(Some(str_bytes(error.to_string()))),
    }
}
