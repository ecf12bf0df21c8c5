//! Heartbeat: refreshes the member's session in the stored group and tells it whether a
//! rebalance is under way. Sessions of members that stopped heartbeating are expired by
//! whichever request touches the group next (see `skiff_coordinator::Group::tick`).
//!
//! A classic member of a consumer-protocol group (during a migration between the protocols)
//! is told REBALANCE_IN_PROGRESS when the broker has a step for it, taken by its next
//! JoinGroup.
//!
//! ACLs: READ on the group, else GROUP_AUTHORIZATION_FAILED before the group is touched.

pub(super) use kafka_protocol::messages::HeartbeatRequest;
use kafka_protocol::messages::HeartbeatResponse;
use skiff_coordinator::AnyGroup;
use skiff_protocol::ErrorCode;

use super::{Operation, RequestContext, ResourceType};
use crate::{errors, groups, Broker};

/// v3+ carry group.instance.id.
const INSTANCE_ID_VERSION: i16 = 3;

pub(super) async fn handle(
    broker: &Broker,
    version: i16,
    request: HeartbeatRequest,
    context: &RequestContext<'_>,
) -> HeartbeatResponse {
    let group_id = request.group_id.0.to_string();
    if !context.allows(Operation::Read, ResourceType::Group, &group_id) {
        return HeartbeatResponse::default()
            .with_error_code(ErrorCode::GroupAuthorizationFailed.code());
    }
    if group_id.is_empty() {
        return HeartbeatResponse::default().with_error_code(ErrorCode::InvalidGroupId.code());
    }
    let member_id = request.member_id.to_string();
    let instance_id = (version >= INSTANCE_ID_VERSION)
        .then(|| request.group_instance_id.as_ref().map(ToString::to_string))
        .flatten();
    let generation = request.generation_id;
    let result = groups::update_any(broker, &group_id, |group, now| match group {
        AnyGroup::Classic(group) => {
            group.heartbeat(&member_id, instance_id.as_deref(), generation, now)
        }
        AnyGroup::Consumer(group) => {
            group.classic_heartbeat(&member_id, instance_id.as_deref(), generation, now)
        }
    })
    .await;
    let code = match result {
        Ok((Ok(()), _)) => errors::NONE,
        Ok((Err(error), _)) => groups::code(error),
        Err(failure) => failure.code(),
    };
    if code != errors::NONE {
        tracing::debug!(group = %group_id, member = %member_id, code, "heartbeat refused");
    }
    HeartbeatResponse::default().with_error_code(code)
}
