//! OffsetDelete: deletes a group's committed offsets for some partitions, except for topics an
//! active member is subscribed to (GROUP_SUBSCRIBED_TO_TOPIC): their offsets are in use.
//! Subscriptions are read from a classic group's ConsumerProtocolSubscription metadata, or
//! a consumer-protocol group's resolved subscriptions.
//!
//! ACLs: DELETE on the group, else a top-level GROUP_AUTHORIZATION_FAILED; then READ on each
//! topic, else its partitions get TOPIC_AUTHORIZATION_FAILED and keep their offsets.

use std::collections::BTreeSet;

use kafka_protocol::messages::offset_delete_response::{
    OffsetDeleteResponsePartition, OffsetDeleteResponseTopic,
};
pub(super) use kafka_protocol::messages::OffsetDeleteRequest;
use kafka_protocol::messages::OffsetDeleteResponse;
use skiff_coordinator::consumer::CONSUMER_PROTOCOL_TYPE;
use skiff_coordinator::{AnyGroup, Group, GroupState};
use skiff_protocol::ErrorCode;
use skiff_storage::TopicPartition;

use super::{Operation, RequestContext, ResourceType};
use crate::{errors, groups, Broker};

pub(super) async fn handle(
    broker: &Broker,
    _version: i16,
    request: OffsetDeleteRequest,
    context: &RequestContext<'_>,
) -> OffsetDeleteResponse {
    let group_id = request.group_id.0.to_string();
    let failed = |code: i16| OffsetDeleteResponse::default().with_error_code(code);
    if !context.allows(Operation::Delete, ResourceType::Group, &group_id) {
        return failed(ErrorCode::GroupAuthorizationFailed.code());
    }
    if group_id.is_empty() {
        return failed(ErrorCode::InvalidGroupId.code());
    }
    let stored = match groups::view(broker, &group_id).await {
        Ok(stored) => stored,
        Err(failure) => return failed(failure.code()),
    };
    if matches!(&stored.group, AnyGroup::Classic(group) if group.state == GroupState::Dead) {
        return failed(ErrorCode::GroupIdNotFound.code());
    }
    if stored.version.is_none() {
        match broker.storage.offsets.committed_offsets(&group_id, None).await {
            Ok(offsets) if offsets.is_empty() => return failed(ErrorCode::GroupIdNotFound.code()),
            Ok(_) => {}
            Err(error) => return failed(errors::coordinator_code_for(&error)),
        }
    }
    let subscribed = match subscribed_topics(&stored.group) {
        Ok(subscribed) => subscribed,
        Err(code) => return failed(code),
    };
    let mut answers = Vec::with_capacity(request.topics.len());
    let mut deletable = Vec::new();
    for topic in &request.topics {
        let name = topic.name.0.to_string();
        let allowed = context.allows(Operation::Read, ResourceType::Topic, &name);
        // A topic the principal may not read is not looked up: its existence stays hidden.
        let partitions = if allowed {
            match broker.storage.meta.topic(&name).await {
                Ok(found) => found.map(|meta| meta.partitions),
                Err(error) => return failed(errors::coordinator_code_for(&error)),
            }
        } else {
            None
        };
        let mut codes = Vec::with_capacity(topic.partitions.len());
        for partition in &topic.partitions {
            let index = partition.partition_index;
            let code = if !allowed {
                ErrorCode::TopicAuthorizationFailed.code()
            } else if !partitions.is_some_and(|count| (0..count).contains(&index)) {
                ErrorCode::UnknownTopicOrPartition.code()
            } else if subscribed.contains(&name) {
                ErrorCode::GroupSubscribedToTopic.code()
            } else {
                deletable.push(TopicPartition::new(name.clone(), index));
                errors::NONE
            };
            codes.push(
                OffsetDeleteResponsePartition::default()
                    .with_partition_index(index)
                    .with_error_code(code),
            );
        }
        answers.push(
            OffsetDeleteResponseTopic::default()
                .with_name(topic.name.clone())
                .with_partitions(codes),
        );
    }
    if !deletable.is_empty() {
        if let Err(error) = broker.storage.offsets.delete_offsets(&group_id, Some(&deletable)).await
        {
            return failed(errors::coordinator_code_for(&error));
        }
    }
    OffsetDeleteResponse::default().with_topics(answers)
}

/// Topics an active member subscribes to: a consumer-protocol group's resolved subscriptions,
/// or what a classic consumer group's members name in their metadata. A classic group of
/// another protocol type with members keeps all its offsets (NON_EMPTY_GROUP).
fn subscribed_topics(group: &AnyGroup) -> Result<BTreeSet<String>, i16> {
    match group {
        AnyGroup::Consumer(group) => Ok(group.subscribed_topics.keys().cloned().collect()),
        AnyGroup::Classic(group) if group.members.is_empty() => Ok(BTreeSet::new()),
        AnyGroup::Classic(group)
            if group.protocol_type.as_deref() == Some(CONSUMER_PROTOCOL_TYPE) =>
        {
            Ok(classic_subscriptions(group))
        }
        AnyGroup::Classic(_) => Err(ErrorCode::NonEmptyGroup.code()),
    }
}

/// Topics any member subscribes to, from its metadata for the group's protocol. Metadata that
/// does not decode subscribes to nothing: deleting offsets is then the client's decision.
fn classic_subscriptions(group: &Group) -> BTreeSet<String> {
    let mut topics = BTreeSet::new();
    for member in &group.members {
        let metadata = group.chosen_metadata(member);
        if let Some(subscription) = groups::embedded::decode_subscription(metadata) {
            topics.extend(subscription.topics.iter().map(ToString::to_string));
        }
    }
    topics
}

#[cfg(test)]
mod tests {
    use kafka_protocol::messages::ConsumerProtocolSubscription;
    use kafka_protocol::protocol::{Encodable, StrBytes};

    use super::*;

    #[test]
    fn subscriptions_decode_from_member_metadata() {
        let subscription = ConsumerProtocolSubscription::default()
            .with_topics(vec![StrBytes::from_static_str("orders")]);
        let mut metadata = bytes::BytesMut::new();
        bytes::BufMut::put_i16(&mut metadata, 3);
        subscription.encode(&mut metadata, 3).unwrap_or_default();
        let decoded = groups::embedded::decode_subscription(&metadata).map(|s| s.topics);
        assert_eq!(decoded, Some(vec![StrBytes::from_static_str("orders")]));
        assert!(groups::embedded::decode_subscription(&[0]).is_none());
    }
}
