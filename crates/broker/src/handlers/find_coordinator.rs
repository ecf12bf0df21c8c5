//! FindCoordinator: every broker coordinates every group and transaction, because the state
//! lives in storage. The broker asked names itself, so clients keep talking to it.

use kafka_protocol::messages::find_coordinator_response::Coordinator;
pub(super) use kafka_protocol::messages::FindCoordinatorRequest;
use kafka_protocol::messages::{BrokerId, FindCoordinatorResponse};
use skiff_protocol::ErrorCode;

use super::{str_bytes, RequestContext};
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
                let answer = Coordinator::default().with_key(key);
                if known_type {
                    answer.with_node_id(node).with_host(host.clone()).with_port(port)
                } else {
                    invalid(answer.with_node_id(BrokerId(-1)).with_port(-1))
                }
            })
            .collect();
        return FindCoordinatorResponse::default().with_coordinators(coordinators);
    }
    if !known_type {
        let response = FindCoordinatorResponse::default()
            .with_error_code(ErrorCode::InvalidRequest.code())
            .with_node_id(BrokerId(-1))
            .with_port(-1);
        return if version >= 1 {
            response.with_error_message(Some(str_bytes("unknown coordinator key type")))
        } else {
            response
        };
    }
    FindCoordinatorResponse::default()
        .with_error_code(errors::NONE)
        .with_node_id(node)
        .with_host(host)
        .with_port(port)
}

fn invalid(answer: Coordinator) -> Coordinator {
    answer
        .with_error_code(ErrorCode::InvalidRequest.code())
        .with_error_message(Some(str_bytes("unknown coordinator key type")))
}
