//! DescribeClientQuotas: the quotas of the entities a filter matches (`kafka-configs
//! --describe --entity-type users`). Read from storage, so a change made through another
//! broker is listed at once.
//!
//! ACLs: DESCRIBE_CONFIGS on the cluster, else CLUSTER_AUTHORIZATION_FAILED.

use kafka_protocol::messages::describe_client_quotas_request::ComponentData;
use kafka_protocol::messages::describe_client_quotas_response::{EntityData, EntryData, ValueData};
pub(super) use kafka_protocol::messages::DescribeClientQuotasRequest;
use kafka_protocol::messages::DescribeClientQuotasResponse;
use skiff_auth::quota::{EntityPart, QuotaEntity};
use skiff_protocol::ErrorCode;

use super::alter_client_quotas::{CLIENT_ID, USER};
use super::{str_bytes, Operation, RequestContext};
use crate::{errors, Broker};

/// Kafka's match types: a name, the default, or any name (not the default).
const MATCH_EXACT: i8 = 0;
const MATCH_DEFAULT: i8 = 1;
const MATCH_SPECIFIED: i8 = 2;

pub(super) async fn handle(
    broker: &Broker,
    _version: i16,
    request: DescribeClientQuotasRequest,
    context: &RequestContext<'_>,
) -> DescribeClientQuotasResponse {
    let refuse = |code: i16, message: String| {
        DescribeClientQuotasResponse::default()
            .with_error_code(code)
            .with_error_message(Some(str_bytes(message)))
            .with_entries(None)
    };
    if !context.allows_cluster(Operation::DescribeConfigs) {
        let code = ErrorCode::ClusterAuthorizationFailed.code();
        return refuse(code, "not authorized to describe client quotas".into());
    }
    if let Err(message) = check(&request.components) {
        return refuse(ErrorCode::InvalidRequest.code(), message);
    }
    let quotas = match broker.quotas.store().get().await {
        Ok(quotas) => quotas,
        Err(error) => return refuse(errors::code_for(&error), error.to_string()),
    };
    let entries = quotas
        .entries
        .iter()
        .filter(|(entity, _)| matches(entity, &request.components, request.strict))
        .map(|(entity, values)| {
            EntryData::default().with_entity(described(entity)).with_values(
                values
                    .iter()
                    .map(|(kind, value)| {
                        ValueData::default().with_key(str_bytes(kind.name())).with_value(*value)
                    })
                    .collect(),
            )
        })
        .collect();
    DescribeClientQuotasResponse::default().with_entries(Some(entries))
}

fn check(components: &[ComponentData]) -> Result<(), String> {
    for component in components {
        if !matches!(component.entity_type.as_str(), USER | CLIENT_ID) {
            return Err(format!(
                "unsupported quota entity type {}",
                component.entity_type.as_str()
            ));
        }
        match (component.match_type, &component._match) {
            (MATCH_EXACT, None) => return Err("an exact match needs a name".into()),
            (MATCH_EXACT | MATCH_DEFAULT | MATCH_SPECIFIED, _) => {}
            (other, _) => return Err(format!("unknown match type {other}")),
        }
    }
    Ok(())
}

/// Whether the entity has a part matching every component (and, `strict`, no other part).
fn matches(entity: &QuotaEntity, components: &[ComponentData], strict: bool) -> bool {
    let part = |entity_type: &str| match entity_type {
        USER => entity.user.as_ref(),
        _ => entity.client_id.as_ref(),
    };
    let each = components.iter().all(|component| {
        match (component.match_type, part(&component.entity_type)) {
            (MATCH_EXACT, Some(EntityPart::Named(name))) => {
                component._match.as_deref() == Some(name.as_str())
            }
            (MATCH_DEFAULT, Some(EntityPart::Default)) => true,
            (MATCH_SPECIFIED, Some(EntityPart::Named(_))) => true,
            _ => false,
        }
    });
    let named =
        |entity_type: &str| components.iter().any(|c| c.entity_type.as_str() == entity_type);
    let others = (entity.user.is_some() && !named(USER))
        || (entity.client_id.is_some() && !named(CLIENT_ID));
    each && !(strict && others)
}

fn described(entity: &QuotaEntity) -> Vec<EntityData> {
    [(USER, &entity.user), (CLIENT_ID, &entity.client_id)]
        .into_iter()
        .filter_map(|(entity_type, part)| {
            let name = match part.as_ref()? {
                EntityPart::Named(name) => Some(str_bytes(name.clone())),
                EntityPart::Default => None,
            };
            Some(
                EntityData::default()
                    .with_entity_type(str_bytes(entity_type))
                    .with_entity_name(name),
            )
        })
        .collect()
}
