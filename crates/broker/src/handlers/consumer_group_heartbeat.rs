//! ConsumerGroupHeartbeat (KIP-848): a consumer-protocol member joins, heartbeats and leaves
//! through this one request, and each answer moves it one step toward its share of the
//! group's target assignment, which the broker computes (`skiff_coordinator::consumer`).
//! Like every group change it is read, pure transition, compare-and-set: the member may send
//! each heartbeat to any broker. Nothing waits and nothing is woken; members learn of changes
//! at their next heartbeat.
//!
//! A heartbeat joining a classic group that has members upgrades it (KIP-848's online
//! migration; `skiff_coordinator::consumer` has the rules): the classic members stay and are
//! moved through their own JoinGroup, SyncGroup and Heartbeat.
//!
//! ACLs: READ on the group, else GROUP_AUTHORIZATION_FAILED; DESCRIBE on every topic
//! subscribed by name, else TOPIC_AUTHORIZATION_FAILED, before the group is touched.

use kafka_protocol::messages::consumer_group_heartbeat_response::{Assignment, TopicPartitions};
pub(super) use kafka_protocol::messages::ConsumerGroupHeartbeatRequest;
use kafka_protocol::messages::ConsumerGroupHeartbeatResponse;
use kafka_protocol::protocol::StrBytes;
use skiff_coordinator::consumer::{
    self, ConsumerGroup, HeartbeatAnswer, HeartbeatRequest, TopicId,
};
use skiff_coordinator::{AnyGroup, GroupError};
use skiff_protocol::ErrorCode;
use skiff_storage::StorageError;

use super::{str_bytes, Operation, RequestContext, ResourceType};
use crate::groups::{self, embedded};
use crate::{errors, Broker};

/// v1+ clients choose their member id (KIP-1082); a v0 client joining without one gets a new
/// id from the broker.
const CLIENT_MEMBER_ID_VERSION: i16 = 1;

pub(super) async fn handle(
    broker: &Broker,
    version: i16,
    request: ConsumerGroupHeartbeatRequest,
    context: &RequestContext<'_>,
) -> ConsumerGroupHeartbeatResponse {
    let group_id = request.group_id.0.to_string();
    if !context.allows(Operation::Read, ResourceType::Group, &group_id) {
        return refused(ErrorCode::GroupAuthorizationFailed.code(), None);
    }
    if group_id.is_empty() {
        return refused(ErrorCode::InvalidRequest.code(), Some("the group id is empty"));
    }
    let mut names = request.subscribed_topic_names.iter().flatten().map(|name| name.0.as_str());
    if let Some(denied) =
        names.find(|name| !context.allows(Operation::Describe, ResourceType::Topic, name))
    {
        tracing::debug!(group = %group_id, topic = denied, "subscription denied");
        return refused(ErrorCode::TopicAuthorizationFailed.code(), None);
    }
    let heartbeat = translate(version, request, context);
    let result = match apply(broker, &group_id, &heartbeat).await {
        Ok(result) => result,
        Err(code) => return refused(code, None),
    };
    match result {
        Ok(answer) => respond(answer),
        Err(error) => {
            tracing::debug!(group = %group_id, member = %heartbeat.member_id, %error, "heartbeat refused");
            refused(groups::code(error), Some(&error.to_string()))
        }
    }
}

/// Applies the heartbeat against this broker's copy of the topic list (at most a second old,
/// so a topic another broker created, or one a regex now matches, reaches the group within
/// that and a heartbeat). When the member subscribes by name to a topic the copy lacks, the
/// list is read again and the heartbeat applied to that: consumers started right after their
/// topic was created get it at their first heartbeat, not one interval later.
async fn apply(
    broker: &Broker,
    group_id: &str,
    heartbeat: &HeartbeatRequest,
) -> Result<Result<HeartbeatAnswer, GroupError>, i16> {
    let config = &broker.config.group_consumer;
    let code = |error: StorageError| errors::coordinator_code_for(&error);
    let mut topics = broker.group_topics.get().await.map_err(code)?;
    let mut fresh = false;
    loop {
        let result = groups::update_any(broker, group_id, |group, now| {
            let mut consumer = match as_consumer(group, &topics) {
                Ok(consumer) => consumer,
                Err(error) => return Some(Err(error)),
            };
            if !fresh && subscribes_missing(&consumer, heartbeat, &topics) {
                return None;
            }
            let result = consumer.heartbeat(heartbeat.clone(), &topics, config, now);
            if result.is_ok() {
                if matches!(group, AnyGroup::Classic(classic) if !classic.members.is_empty()) {
                    tracing::info!(group = group_id, member = %heartbeat.member_id, "classic group upgraded to the consumer protocol");
                }
                *group = AnyGroup::Consumer(consumer);
            }
            Some(result)
        })
        .await;
        match result {
            Ok((Some(result), _)) => return Ok(result),
            Ok((None, _)) => {
                topics = broker.group_topics.reload().await.map_err(code)?;
                fresh = true;
            }
            Err(failure) => return Err(failure.code()),
        }
    }
}

/// The consumer-protocol group a heartbeat applies to: the stored one; a new one in place of
/// a classic group without members (its offsets stay); or, for a classic group with members,
/// its upgrade (KIP-848's online migration: its members stay, as classic members), refused
/// with GROUP_ID_NOT_FOUND as Kafka does when the group does not embed the consumer protocol.
/// Only a heartbeat that succeeds writes it.
fn as_consumer(group: &AnyGroup, topics: &groups::TopicList) -> Result<ConsumerGroup, GroupError> {
    match group {
        AnyGroup::Consumer(group) => Ok(group.clone()),
        empty if empty.is_empty() => Ok(ConsumerGroup::default()),
        AnyGroup::Classic(classic) => {
            ConsumerGroup::from_classic(classic, |metadata, assignment| {
                let subscription = embedded::subscription(metadata, topics)?;
                Some((subscription, embedded::assignment(assignment, topics)?))
            })
        }
    }
}

/// Whether the member subscribes by name (in this request, or as stored) to a topic `topics`
/// does not have.
fn subscribes_missing(
    group: &ConsumerGroup,
    heartbeat: &HeartbeatRequest,
    topics: &groups::TopicList,
) -> bool {
    let stored = group.member(&heartbeat.member_id).map(|member| &member.subscribed_topic_names);
    let names = heartbeat.subscribed_topic_names.as_ref().or(stored);
    names.is_some_and(|names| names.iter().any(|name| !topics.contains_key(name)))
}

/// The request in the group's terms: Kafka's "null means unchanged" fields as `None`, and
/// -1 for an unchanged rebalance timeout.
fn translate(
    version: i16,
    request: ConsumerGroupHeartbeatRequest,
    context: &RequestContext<'_>,
) -> HeartbeatRequest {
    let mut member_id = request.member_id.to_string();
    let joining = request.member_epoch == consumer::JOIN_EPOCH;
    if member_id.is_empty() && joining && version < CLIENT_MEMBER_ID_VERSION {
        member_id = uuid::Uuid::new_v4().to_string();
    }
    let owned = request.topic_partitions.map(|topics| {
        consumer::Assignment::from_pairs(topics.into_iter().flat_map(|topic| {
            let id = TopicId(topic.topic_id.into_bytes());
            topic.partitions.into_iter().map(move |partition| (id, partition))
        }))
    });
    HeartbeatRequest {
        member_id,
        member_epoch: request.member_epoch,
        instance_id: request.instance_id.map(|id| id.to_string()),
        rack_id: request.rack_id.map(|id| id.to_string()),
        rebalance_timeout_ms: Some(request.rebalance_timeout_ms).filter(|timeout| *timeout >= 0),
        client_id: context.client_id.to_owned(),
        client_host: context.host(),
        subscribed_topic_names: request
            .subscribed_topic_names
            .map(|names| names.into_iter().map(|name| name.0.to_string()).collect()),
        subscribed_topic_regex: request.subscribed_topic_regex.map(|regex| regex.to_string()),
        server_assignor: request.server_assignor.map(|name| name.to_string()),
        owned_partitions: owned,
    }
}

fn respond(answer: HeartbeatAnswer) -> ConsumerGroupHeartbeatResponse {
    let assignment = answer.assignment.map(|assignment| {
        let topic_partitions = assignment
            .0
            .into_iter()
            .map(|(topic, partitions)| {
                TopicPartitions::default()
                    .with_topic_id(uuid::Uuid::from_bytes(topic.0))
                    .with_partitions(partitions.into_iter().collect())
            })
            .collect();
        Assignment::default().with_topic_partitions(topic_partitions)
    });
    ConsumerGroupHeartbeatResponse::default()
        .with_member_id(Some(str_bytes(answer.member_id)))
        .with_member_epoch(answer.member_epoch)
        .with_heartbeat_interval_ms(answer.heartbeat_interval_ms)
        .with_assignment(assignment)
}

fn refused(code: i16, message: Option<&str>) -> ConsumerGroupHeartbeatResponse {
    ConsumerGroupHeartbeatResponse::default()
        .with_error_code(code)
        .with_error_message(message.map(|message| StrBytes::from_string(message.to_owned())))
}
