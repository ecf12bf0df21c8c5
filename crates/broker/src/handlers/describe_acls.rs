//! DescribeAcls: the bindings a filter matches, grouped by resource pattern as Kafka answers.
//! Read from storage, not from this broker's snapshot, so an ACL just made through another
//! broker is listed.
//!
//! ACLs: DESCRIBE on the cluster, else CLUSTER_AUTHORIZATION_FAILED.

use kafka_protocol::messages::describe_acls_response::{AclDescription, DescribeAclsResource};
pub(super) use kafka_protocol::messages::DescribeAclsRequest;
use kafka_protocol::messages::DescribeAclsResponse;
use skiff_auth::acl::{AclBinding, AclFilter};
use skiff_protocol::ErrorCode;

use super::{str_bytes, Operation, RequestContext};
use crate::{errors, Broker};

pub(super) async fn handle(
    broker: &Broker,
    _version: i16,
    request: DescribeAclsRequest,
    context: &RequestContext<'_>,
) -> DescribeAclsResponse {
    let refuse = |code: i16, message: String| {
        DescribeAclsResponse::default()
            .with_error_code(code)
            .with_error_message(Some(str_bytes(message)))
    };
    let Some(authorization) = &broker.authorization else {
        return refuse(ErrorCode::SecurityDisabled.code(), "no authorizer is configured".into());
    };
    if !context.allows_cluster(Operation::Describe) {
        let code = ErrorCode::ClusterAuthorizationFailed.code();
        return refuse(code, "not authorized to describe ACLs".into());
    }
    let filter = match AclFilter::from_codes(
        request.resource_type_filter,
        request.resource_name_filter.as_deref(),
        request.pattern_type_filter,
        request.principal_filter.as_deref(),
        request.host_filter.as_deref(),
        request.operation,
        request.permission_type,
    ) {
        Ok(filter) => filter,
        Err(message) => return refuse(ErrorCode::InvalidRequest.code(), message),
    };
    match authorization.store().list().await {
        Ok(acls) => DescribeAclsResponse::default()
            .with_resources(grouped(acls.iter().filter(|acl| filter.matches(acl)))),
        Err(error) => refuse(errors::code_for(&error), error.to_string()),
    }
}

/// One entry per resource pattern, in the order the patterns first appear.
fn grouped<'a>(acls: impl Iterator<Item = &'a AclBinding>) -> Vec<DescribeAclsResource> {
    let mut resources: Vec<DescribeAclsResource> = Vec::new();
    for acl in acls {
        let description = AclDescription::default()
            .with_principal(str_bytes(acl.principal.clone()))
            .with_host(str_bytes(acl.host.clone()))
            .with_operation(acl.operation.code())
            .with_permission_type(acl.permission.code());
        let same = |resource: &&mut DescribeAclsResource| {
            resource.resource_type == acl.resource_type.code()
                && resource.pattern_type == acl.pattern_type.code()
                && resource.resource_name.as_str() == acl.resource_name
        };
        match resources.iter_mut().find(same) {
            Some(resource) => resource.acls.push(description),
            None => resources.push(
                DescribeAclsResource::default()
                    .with_resource_type(acl.resource_type.code())
                    .with_resource_name(str_bytes(acl.resource_name.clone()))
                    .with_pattern_type(acl.pattern_type.code())
                    .with_acls(vec![description]),
            ),
        }
    }
    resources
}
