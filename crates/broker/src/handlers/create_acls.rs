//! CreateAcls: adds ACL bindings to the cluster's ACL document in storage, then re-reads it on
//! this broker so the new rules apply here at once (other brokers within their refresh period).
//!
//! ACLs: ALTER on the cluster, else every creation is CLUSTER_AUTHORIZATION_FAILED. Without
//! `--authorizer acl` the ACL APIs answer SECURITY_DISABLED, as Kafka does with no authorizer.

use kafka_protocol::messages::create_acls_request::AclCreation;
use kafka_protocol::messages::create_acls_response::AclCreationResult;
pub(super) use kafka_protocol::messages::CreateAclsRequest;
use kafka_protocol::messages::CreateAclsResponse;
use skiff_auth::acl::AclBinding;
use skiff_protocol::ErrorCode;

use super::{str_bytes, Operation, RequestContext};
use crate::{errors, Broker};

pub(super) async fn handle(
    broker: &Broker,
    _version: i16,
    request: CreateAclsRequest,
    context: &RequestContext<'_>,
) -> CreateAclsResponse {
    let refuse_all = |code: ErrorCode, message: &str| {
        let result = AclCreationResult::default()
            .with_error_code(code.code())
            .with_error_message(Some(str_bytes(message)));
        CreateAclsResponse::default().with_results(vec![result; request.creations.len()])
    };
    let Some(authorization) = &broker.authorization else {
        return refuse_all(ErrorCode::SecurityDisabled, "no authorizer is configured");
    };
    if !context.allows_cluster(Operation::Alter) {
        return refuse_all(ErrorCode::ClusterAuthorizationFailed, "not authorized to create ACLs");
    }
    let checked: Vec<Result<AclBinding, String>> = request.creations.iter().map(binding).collect();
    let valid: Vec<AclBinding> = checked.iter().filter_map(|c| c.as_ref().ok()).cloned().collect();
    let stored = if valid.is_empty() { Ok(()) } else { authorization.store().create(&valid).await };
    if let Err(error) = &stored {
        tracing::warn!(%error, "storing ACLs failed");
    } else if !valid.is_empty() {
        tracing::info!(principal = %context.principal, count = valid.len(), "created ACLs");
        if let Err(error) = authorization.reload().await {
            tracing::warn!(%error, "re-reading the ACLs failed: the next refresh will");
        }
    }
    let results = checked
        .into_iter()
        .map(|checked| match (checked, &stored) {
            (Err(message), _) => AclCreationResult::default()
                .with_error_code(ErrorCode::InvalidRequest.code())
                .with_error_message(Some(str_bytes(message))),
            (Ok(_), Err(error)) => AclCreationResult::default()
                .with_error_code(errors::code_for(error))
                .with_error_message(Some(str_bytes(error.to_string()))),
            (Ok(_), Ok(())) => AclCreationResult::default(),
        })
        .collect();
    CreateAclsResponse::default().with_results(results)
}

fn binding(creation: &AclCreation) -> Result<AclBinding, String> {
    AclBinding::from_codes(
        creation.resource_type,
        &creation.resource_name,
        creation.resource_pattern_type,
        &creation.principal,
        &creation.host,
        creation.operation,
        creation.permission_type,
    )
}
