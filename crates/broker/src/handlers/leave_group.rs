//! LeaveGroup: removes members (v3+: several at once, by member id or static instance id)
//! from the stored group; the others rebalance.
//!
//! Classic members of a consumer-protocol group (during a migration between the protocols)
//! leave it the same way; the others get a new target.
//!
//! ACLs: READ on the group, else a top-level GROUP_AUTHORIZATION_FAILED before the group is
//! touched.

use kafka_protocol::messages::leave_group_response::MemberResponse;
pub(super) use kafka_protocol::messages::LeaveGroupRequest;
use kafka_protocol::messages::LeaveGroupResponse;
use skiff_coordinator::{AnyGroup, LeaveMember};
use skiff_protocol::ErrorCode;

use super::{str_bytes, Operation, RequestContext, ResourceType};
use crate::{errors, groups, Broker};

/// v3 replaced the single member id with a list of members.
const BATCHED_VERSION: i16 = 3;

pub(super) async fn handle(
    broker: &Broker,
    version: i16,
    request: LeaveGroupRequest,
    context: &RequestContext<'_>,
) -> LeaveGroupResponse {
    let group_id = request.group_id.0.to_string();
    if !context.allows(Operation::Read, ResourceType::Group, &group_id) {
        return LeaveGroupResponse::default()
            .with_error_code(ErrorCode::GroupAuthorizationFailed.code());
    }
    if group_id.is_empty() {
        return LeaveGroupResponse::default().with_error_code(ErrorCode::InvalidGroupId.code());
    }
    let leaving: Vec<LeaveMember> = if version >= BATCHED_VERSION {
        request
            .members
            .iter()
            .map(|member| LeaveMember {
                member_id: member.member_id.to_string(),
                instance_id: member.group_instance_id.as_ref().map(ToString::to_string),
            })
            .collect()
    } else {
        vec![LeaveMember { member_id: request.member_id.to_string(), instance_id: None }]
    };
    let results = match groups::update_any(broker, &group_id, |group, now| match group {
        AnyGroup::Classic(group) => group.leave(&leaving, now),
        AnyGroup::Consumer(group) => group.classic_leave(&leaving),
    })
    .await
    {
        Ok((results, _)) => results,
        Err(failure) => return LeaveGroupResponse::default().with_error_code(failure.code()),
    };
    let codes: Vec<i16> = results
        .into_iter()
        .map(|result| result.map_or_else(groups::code, |()| errors::NONE))
        .collect();
    if version < BATCHED_VERSION {
        return LeaveGroupResponse::default()
            .with_error_code(codes.first().copied().unwrap_or(errors::NONE));
    }
    let members = leaving
        .into_iter()
        .zip(codes)
        .map(|(member, code)| {
            MemberResponse::default()
                .with_member_id(str_bytes(member.member_id))
                .with_group_instance_id(member.instance_id.map(str_bytes))
                .with_error_code(code)
        })
        .collect();
    LeaveGroupResponse::default().with_members(members)
}
