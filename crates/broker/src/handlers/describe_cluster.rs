//! DescribeCluster: like Metadata's broker list, for admin clients; with
//! `include_cluster_authorized_operations`, what the principal may do on the cluster.

use kafka_protocol::messages::describe_cluster_response::DescribeClusterBroker;
pub(super) use kafka_protocol::messages::DescribeClusterRequest;
use kafka_protocol::messages::{BrokerId, DescribeClusterResponse};

use super::{str_bytes, RequestContext};
use crate::{errors, Broker};

pub(super) async fn handle(
    broker: &Broker,
    _version: i16,
    request: DescribeClusterRequest,
    context: &RequestContext<'_>,
) -> DescribeClusterResponse {
    let (host, port) = context.advertised(broker);
    let response = DescribeClusterResponse::default()
        .with_endpoint_type(request.endpoint_type)
        .with_controller_id(BrokerId(broker.config.node_id))
        .with_brokers(vec![DescribeClusterBroker::default()
            .with_broker_id(BrokerId(broker.config.node_id))
            .with_host(str_bytes(host))
            .with_port(port)]);
    let response = if request.include_cluster_authorized_operations {
        response.with_cluster_authorized_operations(context.cluster_authorized_operations())
    } else {
        response
    };
    match broker.cluster_id().await {
        Ok(id) => response.with_cluster_id(str_bytes(id)),
        Err(error) => response
            .with_error_code(errors::code_for(&error))
            .with_error_message(Some(str_bytes(error.to_string()))),
    }
}
