//! JoinGroup: the member joins through a compare-and-set on the stored group, then waits,
//! re-reading the group, until the rebalance it joined completes. Whichever broker sees the
//! group ready first (every member in, or the deadline passed) completes it in storage; every
//! waiting broker then reads the new generation. Nothing is held while waiting.
//!
//! A classic member joining a consumer-protocol group that has members (during a migration
//! between the protocols) is answered at once instead: the broker computed its share, and its
//! SyncGroup fetches it (`skiff_coordinator::consumer`, classic members).
//!
//! ACLs: READ on the group, else GROUP_AUTHORIZATION_FAILED with no member id, before the
//! group is touched.

use kafka_protocol::messages::join_group_response::JoinGroupResponseMember;
pub(super) use kafka_protocol::messages::JoinGroupRequest;
use kafka_protocol::messages::{ApiKey, JoinGroupResponse};
use skiff_coordinator::{AnyGroup, Group, GroupError, JoinAnswer, JoinOutcome, JoinPoll, Protocol};
use skiff_protocol::ErrorCode;

use super::{str_bytes, Operation, RequestContext, ResourceType};
use crate::groups::{self, embedded, Waiter};
use crate::Broker;

/// v4+: a new member first gets MEMBER_ID_REQUIRED and an id (KIP-394).
const KNOWN_MEMBER_ID_VERSION: i16 = 4;
/// v5+ carry group.instance.id.
const INSTANCE_ID_VERSION: i16 = 5;
/// v7+ answer the protocol type and a nullable protocol name.
const PROTOCOL_TYPE_VERSION: i16 = 7;
/// v9+ can tell a rejoining static leader to skip the assignment (KIP-814).
const SKIP_ASSIGNMENT_VERSION: i16 = 9;

pub(super) async fn handle(
    broker: &Broker,
    version: i16,
    request: JoinGroupRequest,
    context: &RequestContext<'_>,
) -> JoinGroupResponse {
    let answer = join(broker, version, request, context).await;
    respond(version, answer)
}

async fn join(
    broker: &Broker,
    version: i16,
    request: JoinGroupRequest,
    context: &RequestContext<'_>,
) -> Result<JoinAnswer, (i16, String)> {
    let group_id = request.group_id.0.to_string();
    if !context.allows(Operation::Read, ResourceType::Group, &group_id) {
        return Err((ErrorCode::GroupAuthorizationFailed.code(), String::new()));
    }
    let member_id = request.member_id.to_string();
    if group_id.is_empty() {
        return Err((ErrorCode::InvalidGroupId.code(), member_id));
    }
    // v0 has no rebalance timeout: Kafka uses the session timeout.
    let rebalance_timeout_ms =
        if version >= 1 { request.rebalance_timeout_ms } else { request.session_timeout_ms };
    let join = skiff_coordinator::JoinRequest {
        member_id: member_id.clone(),
        instance_id: request.group_instance_id.as_ref().map(ToString::to_string),
        client_id: context.client_id.to_owned(),
        client_host: context.host(),
        session_timeout_ms: request.session_timeout_ms,
        rebalance_timeout_ms,
        protocol_type: request.protocol_type.to_string(),
        protocols: request
            .protocols
            .iter()
            .map(|protocol| Protocol {
                name: protocol.name.to_string(),
                metadata: protocol.metadata.to_vec(),
            })
            .collect(),
        require_known_member_id: version >= KNOWN_MEMBER_ID_VERSION,
        supports_skip_assignment: version >= SKIP_ASSIGNMENT_VERSION,
    };
    // Kafka's member ids: the client id (or the static instance id) and a random suffix.
    let prefix = join.instance_id.clone().unwrap_or_else(|| context.client_id.to_owned());
    let fresh = format!("{prefix}-{}", uuid::Uuid::new_v4());
    let limits = groups::limits(broker);
    let topics = broker
        .group_topics
        .get()
        .await
        .map_err(|error| (groups::Failure::Storage(error).code(), member_id.clone()))?;
    let consumer_config = &broker.config.group_consumer;
    let mut waiter = Waiter::new(broker, rebalance_timeout_ms);
    let outcome = groups::update_any(broker, &group_id, |group, now| match group {
        AnyGroup::Classic(classic) => classic.join(join.clone(), fresh.clone(), now, &limits),
        AnyGroup::Consumer(consumer) if !consumer.members.is_empty() => {
            let subscription = join
                .protocols
                .first()
                .and_then(|first| embedded::subscription(&first.metadata, &topics));
            let Some(subscription) = subscription else {
                let error = GroupError::InconsistentGroupProtocol;
                return JoinOutcome::Answer(JoinAnswer::error(error, &join.member_id));
            };
            let answer = consumer.classic_join(
                &join,
                &subscription,
                &fresh,
                &topics,
                consumer_config,
                &limits,
                now,
            );
            JoinOutcome::Answer(answer)
        }
        // A consumer-protocol group without members becomes a classic one (its offsets
        // stay), as Kafka converts an empty group.
        AnyGroup::Consumer(_) => {
            let mut classic = Group::default();
            let outcome = classic.join(join.clone(), fresh.clone(), now, &limits);
            if classic != Group::default() {
                *group = AnyGroup::Classic(classic);
            }
            outcome
        }
    })
    .await;
    match outcome {
        Ok((JoinOutcome::Answer(answer), _)) => Ok(answer),
        Ok((JoinOutcome::Wait { member_id, generation }, _)) => {
            tracing::debug!(group = %group_id, member = %member_id, generation, "joined; waiting");
            wait(broker, &group_id, &member_id, generation, &mut waiter).await
        }
        Err(failure) => Err((failure.code(), member_id)),
    }
}

/// Re-reads the group until the rebalance completes (or this member's rebalance timeout
/// passes: then it is told to rejoin).
async fn wait(
    broker: &Broker,
    group_id: &str,
    member_id: &str,
    mut generation: i32,
    waiter: &mut Waiter,
) -> Result<JoinAnswer, (i16, String)> {
    let _waiting = broker.metrics().map(|metrics| metrics.request_waiting(ApiKey::JoinGroup));
    loop {
        let polled = groups::update_any(broker, group_id, |group, now| match group {
            AnyGroup::Classic(group) => group.poll_join(member_id, generation, now),
            // Upgraded while this member waited: the rebalance it joined is gone; it joins
            // again, now as a classic member of the consumer-protocol group.
            AnyGroup::Consumer(_) => JoinPoll::Failed(GroupError::RebalanceInProgress),
        })
        .await;
        match polled {
            Ok((JoinPoll::Ready(answer), _)) => return Ok(answer),
            Ok((JoinPoll::Failed(error), _)) => {
                return Ok(JoinAnswer::error(error, member_id));
            }
            Ok((JoinPoll::Waiting { generation: next }, _)) => generation = next,
            Err(failure) => return Err((failure.code(), member_id.to_owned())),
        }
        if waiter.expired() {
            return Ok(JoinAnswer::error(GroupError::RebalanceInProgress, member_id));
        }
        waiter.pause(broker).await.map_err(|code| (code, member_id.to_owned()))?;
    }
}

fn respond(version: i16, answer: Result<JoinAnswer, (i16, String)>) -> JoinGroupResponse {
    let answer = match answer {
        Ok(answer) => answer,
        Err((code, member_id)) => {
            return with_protocol(version, failed(code, member_id), None, None);
        }
    };
    if let Some(error) = answer.error {
        return with_protocol(version, failed(groups::code(error), answer.member_id), None, None);
    }
    let members = answer
        .members
        .into_iter()
        .map(|member| {
            let answered = JoinGroupResponseMember::default()
                .with_member_id(str_bytes(member.member_id))
                .with_metadata(member.metadata.into());
            if version >= INSTANCE_ID_VERSION {
                answered.with_group_instance_id(member.instance_id.map(str_bytes))
            } else {
                answered
            }
        })
        .collect();
    let response = JoinGroupResponse::default()
        .with_generation_id(answer.generation)
        .with_leader(str_bytes(answer.leader))
        .with_member_id(str_bytes(answer.member_id))
        .with_members(members);
    let response = if version >= SKIP_ASSIGNMENT_VERSION {
        response.with_skip_assignment(answer.skip_assignment)
    } else {
        response
    };
    with_protocol(version, response, answer.protocol_type, answer.protocol)
}

fn failed(code: i16, member_id: String) -> JoinGroupResponse {
    JoinGroupResponse::default()
        .with_error_code(code)
        .with_generation_id(-1)
        .with_member_id(str_bytes(member_id))
}

/// The protocol type exists from v7; the name is nullable from v7 and a plain string before.
fn with_protocol(
    version: i16,
    response: JoinGroupResponse,
    protocol_type: Option<String>,
    protocol: Option<String>,
) -> JoinGroupResponse {
    if version >= PROTOCOL_TYPE_VERSION {
        response
            .with_protocol_type(protocol_type.map(str_bytes))
            .with_protocol_name(protocol.map(str_bytes))
    } else {
        response.with_protocol_name(Some(str_bytes(protocol.unwrap_or_default())))
    }
}
