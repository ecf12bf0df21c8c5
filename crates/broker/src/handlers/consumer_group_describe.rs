//! ConsumerGroupDescribe (KIP-848): consumer-protocol groups as they are now (expired members
//! shown gone, without writing): epochs, the assignor, and each member's subscription, current
//! assignment and target. A classic group, or one never stored, is GROUP_ID_NOT_FOUND, as in
//! Kafka (DescribeGroups describes classic groups).
//!
//! ACLs: DESCRIBE on each group, else its entry carries GROUP_AUTHORIZATION_FAILED and nothing
//! of it is read.

use std::collections::BTreeMap;

use kafka_protocol::messages::consumer_group_describe_response::{
    Assignment, DescribedGroup, Member, TopicPartitions,
};
pub(super) use kafka_protocol::messages::ConsumerGroupDescribeRequest;
use kafka_protocol::messages::{ConsumerGroupDescribeResponse, GroupId, TopicName};
use skiff_coordinator::consumer::{self, ConsumerGroup, TopicId};
use skiff_coordinator::AnyGroup;
use skiff_protocol::ErrorCode;

use super::{str_bytes, Operation, RequestContext, ResourceType};
use crate::{errors, groups, Broker};

/// Kafka's `member_type` for a member that uses the consumer protocol (0 is classic).
const CONSUMER_MEMBER: i8 = 1;

pub(super) async fn handle(
    broker: &Broker,
    _version: i16,
    request: ConsumerGroupDescribeRequest,
    context: &RequestContext<'_>,
) -> ConsumerGroupDescribeResponse {
    let mut described = Vec::with_capacity(request.group_ids.len());
    for group_id in request.group_ids {
        let answer = DescribedGroup::default().with_group_id(group_id.clone());
        if !context.allows(Operation::Describe, ResourceType::Group, &group_id) {
            described.push(answer.with_error_code(ErrorCode::GroupAuthorizationFailed.code()));
            continue;
        }
        let found = match find(broker, &group_id).await {
            // Assignments name topics by id: the broker's topic list gives their names.
            Ok(group) => match broker.group_topics.get().await {
                Ok(topics) => Ok((group, topics)),
                Err(error) => Err((errors::coordinator_code_for(&error), None)),
            },
            Err(refused) => Err(refused),
        };
        let answer = match found {
            Ok((group, topics)) => summary(answer, &group, &topics, &broker.config.group_consumer),
            Err((code, message)) => answer
                .with_error_code(code)
                .with_error_message(message.map(str_bytes))
                .with_group_state(str_bytes("Dead")),
        };
        let answer = if request.include_authorized_operations {
            answer.with_authorized_operations(
                context.authorized_operations(ResourceType::Group, &group_id),
            )
        } else {
            answer
        };
        described.push(answer);
    }
    ConsumerGroupDescribeResponse::default().with_groups(described)
}

/// The consumer-protocol group stored under the id, or the error and message to answer.
async fn find(broker: &Broker, group_id: &GroupId) -> Result<ConsumerGroup, (i16, Option<String>)> {
    if group_id.is_empty() {
        return Err((ErrorCode::InvalidGroupId.code(), None));
    }
    let stored = groups::view(broker, group_id).await.map_err(|failure| (failure.code(), None))?;
    let not_found = ErrorCode::GroupIdNotFound.code();
    match stored.group {
        AnyGroup::Consumer(group) => Ok(group),
        AnyGroup::Classic(_) if stored.version.is_none() => {
            Err((not_found, Some(format!("group {} not found", &**group_id))))
        }
        AnyGroup::Classic(_) => {
            Err((not_found, Some(format!("group {} is not a consumer group", &**group_id))))
        }
    }
}

fn summary(
    answer: DescribedGroup,
    group: &ConsumerGroup,
    topics: &groups::TopicList,
    config: &consumer::ConsumerConfig,
) -> DescribedGroup {
    let names: BTreeMap<TopicId, &str> =
        topics.iter().map(|(name, metadata)| (metadata.id, name.as_str())).collect();
    let members = group
        .members
        .iter()
        .map(|member| {
            Member::default()
                .with_member_id(str_bytes(member.member_id.clone()))
                .with_instance_id(member.instance_id.clone().map(str_bytes))
                .with_rack_id(member.rack_id.clone().map(str_bytes))
                .with_member_epoch(member.member_epoch)
                .with_client_id(str_bytes(member.client_id.clone()))
                .with_client_host(str_bytes(member.client_host.clone()))
                .with_subscribed_topic_names(
                    member
                        .subscribed_topic_names
                        .iter()
                        .map(|name| TopicName(str_bytes(name.clone())))
                        .collect(),
                )
                .with_subscribed_topic_regex(member.subscribed_topic_regex.clone().map(str_bytes))
                .with_assignment(assignment(&member.assigned, &names))
                .with_target_assignment(assignment(&member.target, &names))
                .with_member_type(CONSUMER_MEMBER)
        })
        .collect();
    answer
        .with_group_state(str_bytes(group.state_name()))
        .with_group_epoch(group.group_epoch)
        .with_assignment_epoch(group.assignment_epoch)
        .with_assignor_name(str_bytes(group.chosen_assignor(config).as_str()))
        .with_members(members)
}

/// An assignment with its topics' names (empty for a topic deleted since).
fn assignment(assigned: &consumer::Assignment, names: &BTreeMap<TopicId, &str>) -> Assignment {
    let topic_partitions = assigned
        .0
        .iter()
        .map(|(topic, partitions)| {
            TopicPartitions::default()
                .with_topic_id(uuid::Uuid::from_bytes(topic.0))
                .with_topic_name(TopicName(str_bytes(
                    names.get(topic).copied().unwrap_or_default(),
                )))
                .with_partitions(partitions.iter().copied().collect())
        })
        .collect();
    Assignment::default().with_topic_partitions(topic_partitions)
}
