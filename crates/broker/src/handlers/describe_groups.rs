//! DescribeGroups: the stored groups as they are now (sessions that ran out are shown expired,
//! without writing). Members' metadata and assignments are shown only for a Stable group, as
//! Kafka does. A group that only has committed offsets is an Empty group; a consumer-protocol
//! group is, as in Kafka, not found here (ConsumerGroupDescribe describes it).
//!
//! ACLs: DESCRIBE on each group, else its entry carries GROUP_AUTHORIZATION_FAILED and nothing
//! of it is read.

use kafka_protocol::messages::describe_groups_response::{DescribedGroup, DescribedGroupMember};
pub(super) use kafka_protocol::messages::DescribeGroupsRequest;
use kafka_protocol::messages::{DescribeGroupsResponse, GroupId};
use skiff_coordinator::{AnyGroup, Group, GroupState};
use skiff_protocol::ErrorCode;

use super::{str_bytes, Operation, RequestContext, ResourceType};
use crate::{groups, Broker};

/// v4+ show group.instance.id; v6+ answer GROUP_ID_NOT_FOUND for unknown groups.
const INSTANCE_ID_VERSION: i16 = 4;
const NOT_FOUND_VERSION: i16 = 6;

pub(super) async fn handle(
    broker: &Broker,
    version: i16,
    request: DescribeGroupsRequest,
    context: &RequestContext<'_>,
) -> DescribeGroupsResponse {
    let mut described = Vec::with_capacity(request.groups.len());
    for group_id in request.groups {
        if !context.allows(Operation::Describe, ResourceType::Group, &group_id) {
            described.push(
                DescribedGroup::default()
                    .with_group_id(group_id)
                    .with_error_code(ErrorCode::GroupAuthorizationFailed.code()),
            );
            continue;
        }
        let operations = request
            .include_authorized_operations
            .then(|| context.authorized_operations(ResourceType::Group, &group_id));
        let group = describe(broker, version, group_id).await;
        described.push(match operations {
            Some(operations) => group.with_authorized_operations(operations),
            None => group,
        });
    }
    DescribeGroupsResponse::default().with_groups(described)
}

async fn describe(broker: &Broker, version: i16, group_id: GroupId) -> DescribedGroup {
    let answer = DescribedGroup::default().with_group_id(group_id.clone());
    if group_id.is_empty() {
        return answer.with_error_code(ErrorCode::InvalidGroupId.code());
    }
    let stored = match groups::view(broker, &group_id).await {
        Ok(stored) => stored,
        Err(failure) => return answer.with_error_code(failure.code()),
    };
    let group = match stored.group {
        AnyGroup::Classic(group) => group,
        // Kafka's answer: ConsumerGroupDescribe describes consumer-protocol groups.
        AnyGroup::Consumer(_) => {
            return not_found(
                version,
                answer,
                format!("group {} is not a classic group", &*group_id),
            )
        }
    };
    if stored.version.is_none() {
        let has_offsets = match broker.storage.offsets.committed_offsets(&group_id, None).await {
            Ok(offsets) => !offsets.is_empty(),
            Err(error) => {
                tracing::warn!(%error, "reading committed offsets failed");
                return answer.with_error_code(ErrorCode::CoordinatorNotAvailable.code());
            }
        };
        if !has_offsets {
            return not_found(version, answer, format!("group {} not found", &*group_id));
        }
    }
    summary(version, answer, &group)
}

/// A Dead group; v6+ also say GROUP_ID_NOT_FOUND and why.
fn not_found(version: i16, answer: DescribedGroup, message: String) -> DescribedGroup {
    let answer = answer.with_group_state(str_bytes(GroupState::Dead.kafka_name()));
    if version >= NOT_FOUND_VERSION {
        answer
            .with_error_code(ErrorCode::GroupIdNotFound.code())
            .with_error_message(Some(str_bytes(message)))
    } else {
        answer
    }
}

fn summary(version: i16, answer: DescribedGroup, group: &Group) -> DescribedGroup {
    let stable = group.state == GroupState::Stable;
    let members = group
        .members
        .iter()
        .map(|member| {
            let described = DescribedGroupMember::default()
                .with_member_id(str_bytes(member.member_id.clone()))
                .with_client_id(str_bytes(member.client_id.clone()))
                .with_client_host(str_bytes(member.client_host.clone()));
            let described = if stable {
                described
                    .with_member_metadata(
                        member.metadata_for(group.protocol.as_deref()).to_vec().into(),
                    )
                    .with_member_assignment(member.assignment.clone().unwrap_or_default().into())
            } else {
                described
            };
            if version >= INSTANCE_ID_VERSION {
                described.with_group_instance_id(member.instance_id.clone().map(str_bytes))
            } else {
                described
            }
        })
        .collect();
    let protocol = if stable { group.protocol.clone().unwrap_or_default() } else { String::new() };
    answer
        .with_group_state(str_bytes(group.state.kafka_name()))
        .with_protocol_type(str_bytes(group.protocol_type.clone().unwrap_or_default()))
        .with_protocol_data(str_bytes(protocol))
        .with_members(members)
}
