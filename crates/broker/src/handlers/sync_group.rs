//! SyncGroup: the leader's call stores every member's assignment in the group (by
//! compare-and-set); a follower that arrives first re-reads the group until the assignment for
//! its generation is there, or the generation is gone.
//!
//! A classic member of a consumer-protocol group (during a migration between the protocols)
//! gets what it owns at once, computed by the broker.
//!
//! ACLs: READ on the group, else GROUP_AUTHORIZATION_FAILED before the group is touched.

pub(super) use kafka_protocol::messages::SyncGroupRequest;
use kafka_protocol::messages::{ApiKey, SyncGroupResponse};
use skiff_coordinator::consumer::{ClassicMetadata, ConsumerGroup, CONSUMER_PROTOCOL_TYPE};
use skiff_coordinator::{AnyGroup, GroupError, SyncOutcome};
use skiff_protocol::ErrorCode;

use super::{str_bytes, Operation, RequestContext, ResourceType};
use crate::groups::{self, embedded, Waiter};
use crate::Broker;

/// v3+ carry group.instance.id; v5+ the protocol type and name.
const INSTANCE_ID_VERSION: i16 = 3;
const PROTOCOL_VERSION: i16 = 5;

/// How long a follower waits for its leader when the member's own timeouts are unknown.
const DEFAULT_WAIT_MS: i32 = 60_000;

pub(super) async fn handle(
    broker: &Broker,
    version: i16,
    request: SyncGroupRequest,
    context: &RequestContext<'_>,
) -> SyncGroupResponse {
    let group_id = request.group_id.0.to_string();
    if !context.allows(Operation::Read, ResourceType::Group, &group_id) {
        return SyncGroupResponse::default()
            .with_error_code(ErrorCode::GroupAuthorizationFailed.code());
    }
    if group_id.is_empty() {
        return SyncGroupResponse::default().with_error_code(ErrorCode::InvalidGroupId.code());
    }
    let sync = skiff_coordinator::SyncRequest {
        member_id: request.member_id.to_string(),
        instance_id: (version >= INSTANCE_ID_VERSION)
            .then(|| request.group_instance_id.as_ref().map(ToString::to_string))
            .flatten(),
        generation: request.generation_id,
        protocol_type: request.protocol_type.as_ref().map(ToString::to_string),
        protocol: request.protocol_name.as_ref().map(ToString::to_string),
        assignments: request
            .assignments
            .iter()
            .map(|given| (given.member_id.to_string(), given.assignment.to_vec()))
            .collect(),
    };
    let topics = match broker.group_topics.get().await {
        Ok(topics) => topics,
        Err(error) => {
            return SyncGroupResponse::default()
                .with_error_code(groups::Failure::Storage(error).code())
        }
    };
    // Subscribed before the first change, so the leader's sync is never missed.
    let mut waiter = Waiter::new(broker, DEFAULT_WAIT_MS);
    let outcome = groups::update_any(broker, &group_id, |group, now| match group {
        AnyGroup::Classic(group) => group.sync(sync.clone(), now),
        AnyGroup::Consumer(group) => sync_classic_member(group, &sync, &topics, now),
    })
    .await;
    let outcome = match outcome {
        Ok((SyncOutcome::Wait, AnyGroup::Classic(group))) => {
            let wait_ms = group
                .member(&sync.member_id)
                .map(|member| member.rebalance_timeout_ms.max(member.session_timeout_ms))
                .unwrap_or(DEFAULT_WAIT_MS);
            waiter.restart_timeout(wait_ms);
            wait(broker, &group_id, &sync, &mut waiter).await
        }
        Ok((outcome, _)) => Ok(outcome),
        Err(failure) => Err(failure.code()),
    };
    tracing::debug!(group = %group_id, member = %sync.member_id, generation = sync.generation, ?outcome, "synced");
    let response = match outcome {
        Ok(SyncOutcome::Assigned(assignment)) => {
            SyncGroupResponse::default().with_assignment(assignment.into())
        }
        Ok(SyncOutcome::Failed(error)) => {
            return SyncGroupResponse::default().with_error_code(groups::code(error))
        }
        Ok(SyncOutcome::Wait) => {
            return SyncGroupResponse::default()
                .with_error_code(groups::code(GroupError::RebalanceInProgress))
        }
        Err(code) => return SyncGroupResponse::default().with_error_code(code),
    };
    if version < PROTOCOL_VERSION {
        return response;
    }
    match groups::view(broker, &group_id).await.map(|stored| stored.group) {
        Ok(AnyGroup::Classic(group)) => response
            .with_protocol_type(group.protocol_type.map(str_bytes))
            .with_protocol_name(group.protocol.map(str_bytes)),
        // A classic member of a consumer-protocol group: its own protocol, as Kafka echoes.
        Ok(AnyGroup::Consumer(_)) => response
            .with_protocol_type(Some(str_bytes(CONSUMER_PROTOCOL_TYPE.to_owned())))
            .with_protocol_name(sync.protocol.map(str_bytes)),
        Err(_) => response,
    }
}

/// A classic member's SyncGroup in a consumer-protocol group: what it owns now, encoded in
/// the version of its own subscription metadata. Never waits: there is no leader to wait for.
fn sync_classic_member(
    group: &mut ConsumerGroup,
    sync: &skiff_coordinator::SyncRequest,
    topics: &groups::TopicList,
    now: i64,
) -> SyncOutcome {
    let synced = group.classic_sync(
        &sync.member_id,
        sync.instance_id.as_deref(),
        sync.generation,
        sync.protocol_type.as_deref(),
        sync.protocol.as_deref(),
        now,
    );
    let assignment = match synced {
        Ok(assignment) => assignment,
        Err(error) => return SyncOutcome::Failed(error),
    };
    let metadata = group
        .member(&sync.member_id)
        .and_then(|member| member.classic.as_ref())
        .and_then(ClassicMetadata::protocol)
        .map(|protocol| protocol.metadata.as_slice())
        .unwrap_or_default();
    SyncOutcome::Assigned(embedded::encode_assignment(&assignment, metadata, topics))
}

/// A follower re-reading the group until the leader's assignment for its generation arrives.
async fn wait(
    broker: &Broker,
    group_id: &str,
    sync: &skiff_coordinator::SyncRequest,
    waiter: &mut Waiter,
) -> Result<SyncOutcome, i16> {
    let _waiting = broker.metrics().map(|metrics| metrics.request_waiting(ApiKey::SyncGroup));
    loop {
        waiter.pause(broker).await?;
        let polled = groups::update_any(broker, group_id, |group, _| match group {
            AnyGroup::Classic(group) => group.poll_sync(&sync.member_id, sync.generation),
            // Upgraded while this member waited for its leader: it joins again.
            AnyGroup::Consumer(_) => SyncOutcome::Failed(GroupError::RebalanceInProgress),
        })
        .await;
        match polled {
            Ok((SyncOutcome::Wait, _)) if !waiter.expired() => {}
            Ok((SyncOutcome::Wait, _)) => {
                return Ok(SyncOutcome::Failed(GroupError::RebalanceInProgress))
            }
            Ok((outcome, _)) => return Ok(outcome),
            Err(failure) => return Err(failure.code()),
        }
    }
}
