//! DescribeCluster (admin clients): every broker's address becomes its proxy port.

use kafka_protocol::messages::DescribeClusterResponse;

use crate::error::ProxyError;
use crate::topology::Topology;

pub(super) fn rewrite(
    topology: &Topology,
    response: &mut DescribeClusterResponse,
) -> Result<(), ProxyError> {
    for broker in &mut response.brokers {
        super::point_at_proxy(topology, &mut broker.host, &mut broker.port)?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::super::tests::{decode_response, encode_response, proxy_port, test_topology};
    use super::super::{response, RequestInfo};
    use kafka_protocol::messages::describe_cluster_response::DescribeClusterBroker;
    use kafka_protocol::messages::{ApiKey, BrokerId, DescribeClusterResponse};
    use kafka_protocol::protocol::StrBytes;

    #[test]
    fn brokers_point_at_the_proxy() {
        let topology = test_topology();
        let upstream = DescribeClusterResponse::default()
            .with_cluster_id(StrBytes::from_static_str("cluster"))
            .with_brokers(vec![DescribeClusterBroker::default()
                .with_broker_id(BrokerId(0))
                .with_host(StrBytes::from_static_str("10.1.1.1"))
                .with_port(19092)]);
        for version in 0..=2 {
            let frame = encode_response(ApiKey::DescribeCluster, version, 5, &upstream);
            let request = RequestInfo {
                api_key: ApiKey::DescribeCluster as i16,
                api_version: version,
                correlation_id: 6,
            };
            let rewritten = response(&topology, request, frame).unwrap_or_default();
            let (correlation_id, answer): (i32, DescribeClusterResponse) =
                decode_response(ApiKey::DescribeCluster, version, rewritten);
            assert_eq!(correlation_id, 6);
            let port = proxy_port(&topology, "10.1.1.1:19092");
            assert!(port > 0);
            assert_eq!(answer.brokers[0].port, port);
            assert_eq!(&*answer.cluster_id, "cluster");
        }
    }
}
