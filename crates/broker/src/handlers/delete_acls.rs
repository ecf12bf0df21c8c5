//! DeleteAcls: removes every binding each filter matches, in one change of the ACL document,
//! and answers per filter with the bindings it removed; then re-reads the ACLs on this broker.
//!
//! ACLs: ALTER on the cluster, else every filter is CLUSTER_AUTHORIZATION_FAILED.

use kafka_protocol::messages::delete_acls_request::DeleteAclsFilter;
use kafka_protocol::messages::delete_acls_response::{
    DeleteAclsFilterResult, DeleteAclsMatchingAcl,
};
pub(super) use kafka_protocol::messages::DeleteAclsRequest;
use kafka_protocol::messages::DeleteAclsResponse;
use skiff_auth::acl::{AclBinding, AclFilter};
use skiff_protocol::ErrorCode;

use super::{str_bytes, Operation, RequestContext};
use crate::{errors, Broker};

pub(super) async fn handle(
    broker: &Broker,
    _version: i16,
    request: DeleteAclsRequest,
    context: &RequestContext<'_>,
) -> DeleteAclsResponse {
    let refuse_all = |code: i16, message: String| {
        let result = DeleteAclsFilterResult::default()
            .with_error_code(code)
            .with_error_message(Some(str_bytes(message)));
        DeleteAclsResponse::default().with_filter_results(vec![result; request.filters.len()])
    };
    let Some(authorization) = &broker.authorization else {
        let code = ErrorCode::SecurityDisabled.code();
        return refuse_all(code, "no authorizer is configured".into());
    };
    if !context.allows_cluster(Operation::Alter) {
        let code = ErrorCode::ClusterAuthorizationFailed.code();
        return refuse_all(code, "not authorized to delete ACLs".into());
    }
    let checked: Vec<Result<AclFilter, String>> = request.filters.iter().map(filter).collect();
    let valid: Vec<AclFilter> = checked.iter().filter_map(|c| c.as_ref().ok()).cloned().collect();
    let deleted = match authorization.store().delete(&valid).await {
        Ok(deleted) => deleted,
        Err(error) => {
            tracing::warn!(%error, "deleting ACLs failed");
            return refuse_all(errors::code_for(&error), error.to_string());
        }
    };
    let count: usize = deleted.iter().map(Vec::len).sum();
    if count > 0 {
        tracing::info!(principal = %context.principal, count, "deleted ACLs");
        if let Err(error) = authorization.reload().await {
            tracing::warn!(%error, "re-reading the ACLs failed: the next refresh will");
        }
    }
    let mut deleted = deleted.into_iter();
    let results = checked
        .into_iter()
        .map(|checked| match checked {
            Err(message) => DeleteAclsFilterResult::default()
                .with_error_code(ErrorCode::InvalidRequest.code())
                .with_error_message(Some(str_bytes(message))),
            Ok(_) => DeleteAclsFilterResult::default().with_matching_acls(
                deleted.next().unwrap_or_default().iter().map(matching).collect(),
            ),
        })
        .collect();
    DeleteAclsResponse::default().with_filter_results(results)
}

fn filter(filter: &DeleteAclsFilter) -> Result<AclFilter, String> {
    AclFilter::from_codes(
        filter.resource_type_filter,
        filter.resource_name_filter.as_deref(),
        filter.pattern_type_filter,
        filter.principal_filter.as_deref(),
        filter.host_filter.as_deref(),
        filter.operation,
        filter.permission_type,
    )
}

fn matching(acl: &AclBinding) -> DeleteAclsMatchingAcl {
    DeleteAclsMatchingAcl::default()
        .with_resource_type(acl.resource_type.code())
        .with_resource_name(str_bytes(acl.resource_name.clone()))
        .with_pattern_type(acl.pattern_type.code())
        .with_principal(str_bytes(acl.principal.clone()))
        .with_host(str_bytes(acl.host.clone()))
        .with_operation(acl.operation.code())
        .with_permission_type(acl.permission.code())
}
