//! FindCoordinator: the coordinator's address (one in versions 0-3, a list from version 4) is
//! replaced by the proxy port for that broker. Error answers (no coordinator, node id -1) are
//! left alone.

use kafka_protocol::messages::FindCoordinatorResponse;

use crate::error::ProxyError;
use crate::topology::Topology;

pub(super) fn rewrite(
    topology: &Topology,
    response: &mut FindCoordinatorResponse,
) -> Result<(), ProxyError> {
    if response.node_id.0 >= 0 && !response.host.is_empty() {
        super::point_at_proxy(topology, &mut response.host, &mut response.port)?;
    }
    for coordinator in &mut response.coordinators {
        if coordinator.node_id.0 < 0 || coordinator.host.is_empty() {
            continue;
        }
        super::point_at_proxy(topology, &mut coordinator.host, &mut coordinator.port)?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::super::tests::{decode_response, encode_response, proxy_port, test_topology};
    use super::super::{response, RequestInfo};
    use kafka_protocol::messages::find_coordinator_response::Coordinator;
    use kafka_protocol::messages::{ApiKey, BrokerId, FindCoordinatorResponse};
    use kafka_protocol::protocol::StrBytes;

    #[test]
    fn coordinator_addresses_point_at_the_proxy() {
        let topology = test_topology();
        let old = FindCoordinatorResponse::default()
            .with_node_id(BrokerId(3))
            .with_host(StrBytes::from_static_str("kafka-3.internal"))
            .with_port(9093);
        let new = FindCoordinatorResponse::default().with_coordinators(vec![
            Coordinator::default()
                .with_key(StrBytes::from_static_str("group-a"))
                .with_node_id(BrokerId(3))
                .with_host(StrBytes::from_static_str("kafka-3.internal"))
                .with_port(9093),
            Coordinator::default()
                .with_key(StrBytes::from_static_str("group-b"))
                .with_node_id(BrokerId(-1))
                .with_error_code(15),
        ]);
        for (version, upstream) in [(1, old.clone()), (3, old), (4, new.clone()), (6, new)] {
            let frame = encode_response(ApiKey::FindCoordinator, version, 99, &upstream);
            let request = RequestInfo {
                api_key: ApiKey::FindCoordinator as i16,
                api_version: version,
                correlation_id: 42,
            };
            let rewritten = response(&topology, request, frame).unwrap_or_default();
            let (correlation_id, answer): (i32, FindCoordinatorResponse) =
                decode_response(ApiKey::FindCoordinator, version, rewritten);
            assert_eq!(correlation_id, 42);
            let port = proxy_port(&topology, "kafka-3.internal:9093");
            assert!(port > 0);
            if version < 4 {
                assert_eq!((&*answer.host, answer.port), ("proxy.test", port));
            } else {
                assert_eq!(answer.coordinators[0].port, port);
                assert_eq!(&*answer.coordinators[0].host, "proxy.test");
                assert_eq!(answer.coordinators[1].port, 0, "errors are left alone");
            }
        }
    }
}
