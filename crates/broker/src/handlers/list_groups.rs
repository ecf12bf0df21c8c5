//! ListGroups: every group with stored state, plus every group that only has committed offsets
//! (shown as an Empty consumer group, so admin tools can find and delete them). v4+ filter by
//! state, v5+ by type (`classic`, or `consumer` for KIP-848 groups).
//!
//! ACLs: DESCRIBE on the cluster lists every group; without it, only the groups the principal
//! may DESCRIBE are listed (the others are left out, with no error).

use kafka_protocol::messages::list_groups_response::ListedGroup;
pub(super) use kafka_protocol::messages::ListGroupsRequest;
use kafka_protocol::messages::{GroupId, ListGroupsResponse};
use skiff_coordinator::{AnyGroup, GroupState, CLASSIC, CONSUMER};

use super::{str_bytes, Operation, RequestContext, ResourceType};
use crate::{errors, groups, Broker};

const STATE_VERSION: i16 = 4;
const TYPE_VERSION: i16 = 5;
/// The protocol type shown for groups that only have committed offsets.
const OFFSETS_ONLY_PROTOCOL_TYPE: &str = "consumer";

pub(super) async fn handle(
    broker: &Broker,
    version: i16,
    request: ListGroupsRequest,
    context: &RequestContext<'_>,
) -> ListGroupsResponse {
    let ids = match groups::all_group_ids(broker).await {
        Ok(ids) => ids,
        Err(error) => {
            tracing::warn!(%error, "listing groups failed");
            return ListGroupsResponse::default()
                .with_error_code(errors::coordinator_code_for(&error));
        }
    };
    let states: Vec<String> =
        request.states_filter.iter().map(|state| state.to_lowercase()).collect();
    let types: Vec<String> = request.types_filter.iter().map(|kind| kind.to_lowercase()).collect();
    let every_group = context.allows_cluster(Operation::Describe);
    let mut listed = Vec::new();
    for id in ids {
        if !every_group && !context.allows(Operation::Describe, ResourceType::Group, &id) {
            continue;
        }
        let (state, protocol_type, group_type) = match groups::view(broker, &id).await {
            Ok(stored) if stored.version.is_some() => listed_as(&stored.group),
            Ok(_) => ("Empty", OFFSETS_ONLY_PROTOCOL_TYPE.to_owned(), CLASSIC),
            Err(failure) => return ListGroupsResponse::default().with_error_code(failure.code()),
        };
        if state == GroupState::Dead.kafka_name() {
            continue;
        }
        if !states.is_empty() && !states.contains(&state.to_lowercase()) {
            continue;
        }
        if !types.is_empty() && !types.iter().any(|kind| kind == group_type) {
            continue;
        }
        let group = ListedGroup::default()
            .with_group_id(GroupId(str_bytes(id)))
            .with_protocol_type(str_bytes(protocol_type));
        let group =
            if version >= STATE_VERSION { group.with_group_state(str_bytes(state)) } else { group };
        listed.push(if version >= TYPE_VERSION {
            group.with_group_type(str_bytes(group_type))
        } else {
            group
        });
    }
    ListGroupsResponse::default().with_groups(listed)
}

/// A stored group's state, protocol type and group type, as ListGroups shows them.
fn listed_as(group: &AnyGroup) -> (&'static str, String, &'static str) {
    match group {
        AnyGroup::Classic(group) => {
            (group.state.kafka_name(), group.protocol_type.clone().unwrap_or_default(), CLASSIC)
        }
        AnyGroup::Consumer(group) => (group.state_name(), CONSUMER.to_owned(), CONSUMER),
    }
}
