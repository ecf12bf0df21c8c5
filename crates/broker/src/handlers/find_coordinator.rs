//! FindCoordinator: every broker coordinates every group and transaction (their state is in
//! storage), so the answer is always the broker asked.

use kafka_protocol::messages::find_coordinator_response::Coordinator;
pub(super) use kafka_protocol::messages::FindCoordinatorRequest;
use kafka_protocol::messages::{BrokerId, FindCoordinatorResponse};

use super::str_bytes;
use crate::Broker;

/// From v4 on, several keys are asked for at once.
const BATCHED_VERSION: i16 = 4;

pub(super) async fn handle(
    broker: &Broker,
    version: i16,
    request: FindCoordinatorRequest,
) -> FindCoordinatorResponse {
    let node = BrokerId(broker.config.node_id);
    let host = str_bytes(broker.config.advertised_host.clone());
    let port = broker.config.advertised_port;
    if version < BATCHED_VERSION {
        return FindCoordinatorResponse::default()
            .with_node_id(node)
            .with_host(host)
            .with_port(port);
    }
    let coordinators = request
        .coordinator_keys
        .into_iter()
        .map(|key| {
            Coordinator::default()
                .with_key(key)
                .with_node_id(node)
                .with_host(host.clone())
                .with_port(port)
        })
        .collect();
    FindCoordinatorResponse::default().with_coordinators(coordinators)
}
