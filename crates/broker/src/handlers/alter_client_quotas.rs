//! AlterClientQuotas: sets and removes quotas of users, client ids and users' client ids (what
//! `kafka-configs --alter --add-config 'producer_byte_rate=1048576' --entity-type users
//! --entity-name alice` sends). All valid entries are stored in one change of the quota
//! document; this broker re-reads it at once, others within `--quota-refresh-ms`.
//!
//! `producer_byte_rate`, `consumer_byte_rate` and `request_percentage` are enforced; other
//! keys (connection rates, controller mutations) are refused with INVALID_REQUEST rather than
//! stored and silently ignored.
//!
//! ACLs: ALTER_CONFIGS on the cluster, else CLUSTER_AUTHORIZATION_FAILED.

use kafka_protocol::messages::alter_client_quotas_request::EntryData;
use kafka_protocol::messages::alter_client_quotas_response::{
    EntityData as AnsweredEntity, EntryData as AnsweredEntry,
};
pub(super) use kafka_protocol::messages::AlterClientQuotasRequest;
use kafka_protocol::messages::AlterClientQuotasResponse;
use skiff_auth::quota::store::QuotaChange;
use skiff_auth::quota::{EntityPart, QuotaEntity, QuotaKind};
use skiff_protocol::ErrorCode;

use super::{str_bytes, Operation, RequestContext};
use crate::{errors, Broker};

pub(super) const USER: &str = "user";
pub(super) const CLIENT_ID: &str = "client-id";

pub(super) async fn handle(
    broker: &Broker,
    _version: i16,
    request: AlterClientQuotasRequest,
    context: &RequestContext<'_>,
) -> AlterClientQuotasResponse {
    let allowed = context.allows_cluster(Operation::AlterConfigs);
    let checked: Vec<Result<Vec<QuotaChange>, (ErrorCode, String)>> = request
        .entries
        .iter()
        .map(|entry| {
            if allowed {
                changes(entry)
            } else {
                let message = "not authorized to alter client quotas".to_owned();
                Err((ErrorCode::ClusterAuthorizationFailed, message))
            }
        })
        .collect();
    let valid: Vec<QuotaChange> =
        checked.iter().filter_map(|c| c.as_ref().ok()).flatten().cloned().collect();
    let stored = if valid.is_empty() || request.validate_only {
        Ok(())
    } else {
        broker.quotas.store().alter(&valid).await
    };
    if stored.is_ok() && !valid.is_empty() && !request.validate_only {
        tracing::info!(principal = %context.principal, changes = valid.len(), "altered client quotas");
        broker.quotas.reload().await;
    }
    let entries = request
        .entries
        .iter()
        .zip(checked)
        .map(|(entry, checked)| {
            let answer = AnsweredEntry::default().with_entity(
                entry
                    .entity
                    .iter()
                    .map(|part| {
                        AnsweredEntity::default()
                            .with_entity_type(part.entity_type.clone())
                            .with_entity_name(part.entity_name.clone())
                    })
                    .collect(),
            );
            match (checked, &stored) {
                (Err((code, message)), _) => {
                    answer.with_error_code(code.code()).with_error_message(Some(str_bytes(message)))
                }
                (Ok(_), Err(error)) => answer
                    .with_error_code(errors::code_for(error))
                    .with_error_message(Some(str_bytes(error.to_string()))),
                (Ok(_), Ok(())) => answer,
            }
        })
        .collect();
    AlterClientQuotasResponse::default().with_entries(entries)
}

/// One entry's changes, checked as Kafka checks them.
fn changes(entry: &EntryData) -> Result<Vec<QuotaChange>, (ErrorCode, String)> {
    let invalid = |message: String| (ErrorCode::InvalidRequest, message);
    let mut entity = QuotaEntity { user: None, client_id: None };
    for part in &entry.entity {
        let value = match &part.entity_name {
            Some(name) => EntityPart::Named(name.to_string()),
            None => EntityPart::Default,
        };
        let slot = match part.entity_type.as_str() {
            USER => &mut entity.user,
            CLIENT_ID => &mut entity.client_id,
            other => return Err(invalid(format!("unsupported quota entity type {other}"))),
        };
        if slot.replace(value).is_some() {
            return Err(invalid(format!("entity type {} given twice", part.entity_type)));
        }
    }
    if !entity.is_valid() {
        return Err(invalid("the entity names no user or client id".into()));
    }
    let mut changes = Vec::with_capacity(entry.ops.len());
    for op in &entry.ops {
        let kind = match QuotaKind::from_name(&op.key) {
            None => {
                return Err(invalid(format!(
                    "quota {} is not supported (producer_byte_rate, consumer_byte_rate and \
                     request_percentage are)",
                    op.key.as_str()
                )))
            }
            Some(kind) => kind,
        };
        let positive = op.value.is_finite() && op.value > 0.0;
        if !op.remove && !positive {
            return Err(invalid(format!("{} must be positive, got {}", kind.name(), op.value)));
        }
        changes.push((entity.clone(), kind, (!op.remove).then_some(op.value)));
    }
    Ok(changes)
}
