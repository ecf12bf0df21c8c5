//! FindCoordinator: every broker coordinates every group and transaction, because the state
//! lives in storage. The broker asked names itself, so clients keep talking to it.
//!
//! ACLs: DESCRIBE on the group (GROUP_AUTHORIZATION_FAILED) or on the transactional id
//! (TRANSACTIONAL_ID_AUTHORIZATION_FAILED), per key from v4, so a coordinator is only named to
//! a principal allowed to know the key.

use kafka_protocol::messages::find_coordinator_response::Coordinator;
pub(super) use kafka_protocol::messages::FindCoordinatorRequest;
use kafka_protocol::messages::{BrokerId, FindCoordinatorResponse};
use skiff_protocol::ErrorCode;

use super::{str_bytes, Operation, RequestContext, ResourceType};
use crate::{errors, Broker};

/// v4 answers a list of keys instead of one.
const BATCHED_VERSION: i16 = 4;
/// Key types: consumer groups and transactional ids.
const GROUP_KEY: i8 = 0;
const TRANSACTION_KEY: i8 = 1;

pub(super) async fn handle(
    broker: &Broker,
    version: i16,
    request: FindCoordinatorRequest,
    context: &RequestContext<'_>,
) -> FindCoordinatorResponse {
    let known_type = matches!(request.key_type, GROUP_KEY | TRANSACTION_KEY);
    let node = BrokerId(broker.config.node_id);
    let (host, port) = context.advertised(broker);
    let host = str_bytes(host);
    if version >= BATCHED_VERSION {
        let coordinators = request
            .coordinator_keys
            .into_iter()
            .map(|key| {
                let denied = denial(context, request.key_type, &key);
                let answer = Coordinator::default().with_key(key);
                if let Some(error) = denied {
                    answer.with_error_code(error.code()).with_node_id(BrokerId(-1)).with_port(-1)
                } else if known_type {
                    answer.with_node_id(node).with_host(host.clone()).with_port(port)
                } else {
                    invalid(answer.with_node_id(BrokerId(-1)).with_port(-1))
                }
            })
            .collect();
        return FindCoordinatorResponse::default().with_coordinators(coordinators);
    }
    if !known_type {
        return refused(version, ErrorCode::InvalidRequest, "unknown coordinator key type".into());
    }
    if let Some(error) = denial(context, request.key_type, &request.key) {
        return refused(version, error, error.to_string());
    }
    FindCoordinatorResponse::default()
        .with_error_code(errors::NONE)
        .with_node_id(node)
        .with_host(host)
        .with_port(port)
}

/// The authorization error for a key of a known type, if the principal may not DESCRIBE it.
fn denial(context: &RequestContext<'_>, key_type: i8, key: &str) -> Option<ErrorCode> {
    let (resource_type, error) = match key_type {
        GROUP_KEY => (ResourceType::Group, ErrorCode::GroupAuthorizationFailed),
        TRANSACTION_KEY => {
            (ResourceType::TransactionalId, ErrorCode::TransactionalIdAuthorizationFailed)
        }
        _ => return None,
    };
    (!context.allows(Operation::Describe, resource_type, key)).then_some(error)
}

/// A v0-3 answer naming no coordinator (v1+ say why).
fn refused(version: i16, error: ErrorCode, message: String) -> FindCoordinatorResponse {
    let response = FindCoordinatorResponse::default()
        .with_error_code(error.code())
        .with_node_id(BrokerId(-1))
        .with_port(-1);
    if version >= 1 {
        response.with_error_message(Some(str_bytes(message)))
    } else {
        response
    }
}

fn invalid(answer: Coordinator) -> Coordinator {
    answer
        .with_error_code(ErrorCode::InvalidRequest.code())
        .with_error_message(Some(str_bytes("unknown coordinator key type")))
}
