//! ConsumerGroupHeartbeat (KIP-848): a consumer-protocol member joins, heartbeats and leaves
//! through this one request, and each answer moves it one step toward its share of the
//! group's target assignment, which the broker computes (`skiff_coordinator::consumer`).
//! Like every group change it is read, pure transition, compare-and-set: the member may send
//! each heartbeat to any broker. Nothing waits and nothing is woken; members learn of changes
//! at their next heartbeat.
//!
//! ACLs: READ on the group, else GROUP_AUTHORIZATION_FAILED; DESCRIBE on every topic
//! subscribed by name, else TOPIC_AUTHORIZATION_FAILED, before the group is touched.

use kafka_protocol::messages::consumer_group_heartbeat_response::{Assignment, TopicPartitions};
pub(super) use kafka_protocol::messages::ConsumerGroupHeartbeatRequest;
use kafka_protocol::messages::ConsumerGroupHeartbeatResponse;
use kafka_protocol::protocol::StrBytes;
use skiff_coordinator::consumer::{self, HeartbeatAnswer, HeartbeatRequest, TopicId};
use skiff_protocol::ErrorCode;

use super::{str_bytes, Operation, RequestContext, ResourceType};
use crate::{errors, groups, Broker};

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
    let topics = match groups::topic_metadata(broker).await {
        Ok(topics) => topics,
        Err(error) => return refused(errors::coordinator_code_for(&error), None),
    };
    let config = &broker.config.group_consumer;
    let result = groups::update_consumer(broker, &group_id, |group, now| {
        group.heartbeat(heartbeat.clone(), &topics, config, now)
    })
    .await;
    match result {
        Ok((Ok(answer), _)) => respond(answer),
        Ok((Err(error), _)) => {
            tracing::debug!(group = %group_id, member = %heartbeat.member_id, %error, "heartbeat refused");
            refused(groups::code(error), Some(&error.to_string()))
        }
        Err(failure) => refused(failure.code(), None),
    }
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
