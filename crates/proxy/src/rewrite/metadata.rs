//! Metadata: every broker in the answer is replaced by the proxy port that stands for it.
//!
//! Node ids, partition leaders and replicas stay as they are, so a client's leader routing is
//! unchanged: it sends to "node 2", whose address is now the proxy port forwarding to node 2.

use kafka_protocol::messages::MetadataResponse;

use crate::error::ProxyError;
use crate::topology::Topology;

pub(super) fn rewrite(
    topology: &Topology,
    response: &mut MetadataResponse,
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
    use kafka_protocol::messages::metadata_response::{
        MetadataResponseBroker, MetadataResponseTopic,
    };
    use kafka_protocol::messages::{ApiKey, BrokerId, MetadataResponse, TopicName};
    use kafka_protocol::protocol::StrBytes;

    #[test]
    fn unknown_tagged_fields_survive_the_rewrite() {
        let topology = test_topology();
        let mut unknown = std::collections::BTreeMap::new();
        unknown.insert(999, bytes::Bytes::from_static(b"future"));
        let upstream = MetadataResponse::default()
            .with_brokers(vec![MetadataResponseBroker::default()
                .with_node_id(BrokerId(1))
                .with_host(StrBytes::from_static_str("kafka-1.internal"))
                .with_port(9092)
                .with_unknown_tagged_fields(unknown.clone())])
            .with_unknown_tagged_fields(unknown.clone());
        let frame = encode_response(ApiKey::Metadata, 12, 1, &upstream);
        let request =
            RequestInfo { api_key: ApiKey::Metadata as i16, api_version: 12, correlation_id: 2 };
        let rewritten = response(&topology, request, frame).unwrap_or_default();
        let (_, answer): (i32, MetadataResponse) = decode_response(ApiKey::Metadata, 12, rewritten);
        assert_eq!(answer.unknown_tagged_fields, unknown);
        assert_eq!(answer.brokers[0].unknown_tagged_fields, unknown);
    }

    #[test]
    fn brokers_point_at_the_proxy_and_everything_else_survives() {
        let topology = test_topology();
        for version in [1, 4, 9, 12, 13] {
            let upstream = MetadataResponse::default()
                .with_brokers(vec![
                    MetadataResponseBroker::default()
                        .with_node_id(BrokerId(1))
                        .with_host(StrBytes::from_static_str("kafka-1.internal"))
                        .with_port(9092),
                    MetadataResponseBroker::default()
                        .with_node_id(BrokerId(2))
                        .with_host(StrBytes::from_static_str("kafka-2.internal"))
                        .with_port(9092),
                ])
                .with_controller_id(BrokerId(2))
                .with_topics(vec![MetadataResponseTopic::default()
                    .with_name(Some(TopicName(StrBytes::from_static_str("orders"))))]);
            let frame = encode_response(ApiKey::Metadata, version, 1234, &upstream);
            let request = RequestInfo {
                api_key: ApiKey::Metadata as i16,
                api_version: version,
                correlation_id: 7,
            };
            let rewritten = response(&topology, request, frame).map_err(|e| e.to_string());
            let (correlation_id, answer): (i32, MetadataResponse) =
                decode_response(ApiKey::Metadata, version, rewritten.unwrap_or_default());
            assert_eq!(correlation_id, 7);
            let ports: Vec<i32> = answer.brokers.iter().map(|b| b.port).collect();
            let expected = vec![
                proxy_port(&topology, "kafka-1.internal:9092"),
                proxy_port(&topology, "kafka-2.internal:9092"),
            ];
            assert!(expected.iter().all(|port| *port > 0) && expected[0] != expected[1]);
            assert_eq!(ports, expected, "v{version}");
            assert!(answer.brokers.iter().all(|b| &*b.host == "proxy.test"));
            assert_eq!(answer.brokers[1].node_id, BrokerId(2));
            assert_eq!(answer.topics.len(), 1);
        }
    }
}
