//! The consumer protocol classic groups embed: members' metadata is a
//! ConsumerProtocolSubscription and their assignments ConsumerProtocolAssignments, each a
//! version followed by the body in that version. The broker reads them when a classic member
//! shares a group with consumer-protocol members (KIP-848's migration), and writes the
//! assignments it computed for such members.

use bytes::{Buf, BufMut, Bytes, BytesMut};
use kafka_protocol::messages::consumer_protocol_assignment::TopicPartition as AssignedTopic;
use kafka_protocol::messages::{ConsumerProtocolAssignment, ConsumerProtocolSubscription};
use kafka_protocol::protocol::{Decodable, Encodable, Message, StrBytes};
use skiff_coordinator::consumer::{Assignment, ClassicSubscription};

use super::TopicList;

/// A ConsumerProtocolSubscription (newer versions than this codec knows are read as its
/// newest, as their additions come at the end).
pub(crate) fn decode_subscription(metadata: &[u8]) -> Option<ConsumerProtocolSubscription> {
    let (version, mut body) = versioned(metadata)?;
    let version = version.min(ConsumerProtocolSubscription::VERSIONS.max);
    ConsumerProtocolSubscription::decode(&mut body, version).ok()
}

/// A member's subscription in the group's terms: owned partitions of topics `topics` does not
/// have (deleted since) are left out, as nobody can be assigned them.
pub(crate) fn subscription(metadata: &[u8], topics: &TopicList) -> Option<ClassicSubscription> {
    let decoded = decode_subscription(metadata)?;
    let owned = decoded.owned_partitions.iter().flat_map(|owned| {
        let id = topics.get(owned.topic.0.as_str()).map(|topic| topic.id);
        id.into_iter()
            .flat_map(move |id| owned.partitions.iter().map(move |partition| (id, *partition)))
    });
    Some(ClassicSubscription {
        topics: decoded.topics.iter().map(ToString::to_string).collect(),
        owned: Assignment::from_pairs(owned),
        rack_id: decoded.rack_id.map(|rack| rack.to_string()),
    })
}

/// A member's classic assignment in the group's terms; no assignment (or an empty one) is
/// nothing assigned.
pub(crate) fn assignment(bytes: Option<&[u8]>, topics: &TopicList) -> Option<Assignment> {
    let Some(bytes) = bytes.filter(|bytes| !bytes.is_empty()) else {
        return Some(Assignment::default());
    };
    let (version, mut body) = versioned(bytes)?;
    let version = version.min(ConsumerProtocolAssignment::VERSIONS.max);
    let decoded = ConsumerProtocolAssignment::decode(&mut body, version).ok()?;
    let pairs = decoded.assigned_partitions.iter().flat_map(|assigned| {
        let id = topics.get(assigned.topic.0.as_str()).map(|topic| topic.id);
        id.into_iter()
            .flat_map(move |id| assigned.partitions.iter().map(move |partition| (id, *partition)))
    });
    Some(Assignment::from_pairs(pairs))
}

/// Encodes an assignment for a member whose subscription metadata is `metadata`, in the
/// version it speaks (Kafka answers in the member's subscription version). Topics no longer
/// in `topics` are left out.
pub(crate) fn encode_assignment(
    assignment: &Assignment,
    metadata: &[u8],
    topics: &TopicList,
) -> Vec<u8> {
    let version = versioned(metadata)
        .map(|(version, _)| version)
        .unwrap_or(0)
        .min(ConsumerProtocolAssignment::VERSIONS.max);
    let assigned_partitions = assignment
        .0
        .iter()
        .filter_map(|(id, partitions)| {
            let name = topics.iter().find(|(_, topic)| topic.id == *id).map(|(name, _)| name)?;
            Some(
                AssignedTopic::default()
                    .with_topic(StrBytes::from_string(name.clone()).into())
                    .with_partitions(partitions.iter().copied().collect()),
            )
        })
        .collect();
    let message =
        ConsumerProtocolAssignment::default().with_assigned_partitions(assigned_partitions);
    let mut bytes = BytesMut::new();
    bytes.put_i16(version);
    if message.encode(&mut bytes, version).is_err() {
        // Names and partition numbers always encode; an empty assignment is the safe answer.
        return Vec::new();
    }
    bytes.to_vec()
}

/// The leading version and the body after it; negative versions read as 0.
fn versioned(bytes: &[u8]) -> Option<(i16, Bytes)> {
    let mut body = Bytes::copy_from_slice(bytes);
    if body.remaining() < 2 {
        return None;
    }
    let version = body.get_i16().max(0);
    Some((version, body))
}

#[cfg(test)]
mod tests {
    use skiff_coordinator::consumer::{TopicId, TopicMetadata};

    use super::*;

    fn topics() -> TopicList {
        let mut topics = TopicList::new();
        topics.insert("orders".into(), TopicMetadata { id: TopicId([1; 16]), partitions: 4 });
        topics
    }

    fn metadata(version: i16, owned: Vec<i32>) -> Vec<u8> {
        use kafka_protocol::messages::consumer_protocol_subscription::TopicPartition;
        let subscription = ConsumerProtocolSubscription::default()
            .with_topics(vec![StrBytes::from_static_str("orders")])
            .with_owned_partitions(vec![TopicPartition::default()
                .with_topic(StrBytes::from_static_str("orders").into())
                .with_partitions(owned)]);
        let mut bytes = BytesMut::new();
        bytes.put_i16(version);
        subscription.encode(&mut bytes, version).expect("encodes");
        bytes.to_vec()
    }

    #[test]
    fn subscriptions_name_topics_and_owned_partitions_by_id() {
        let decoded = subscription(&metadata(1, vec![0, 2]), &topics()).expect("decodes");
        assert_eq!(decoded.topics, vec!["orders".to_owned()]);
        let expected = Assignment::from_pairs([(TopicId([1; 16]), 0), (TopicId([1; 16]), 2)]);
        assert_eq!(decoded.owned, expected);
        // Version 0 has no owned partitions: an eager member owns nothing when it joins.
        let eager = subscription(&metadata(0, vec![1]), &topics()).expect("decodes");
        assert!(eager.owned.is_empty());
        assert!(subscription(&[0], &topics()).is_none());
        assert!(decode_subscription(&[0]).is_none());
    }

    #[test]
    fn assignments_round_trip_in_the_members_version() {
        let given = Assignment::from_pairs([(TopicId([1; 16]), 3), (TopicId([9; 16]), 0)]);
        let bytes = encode_assignment(&given, &metadata(1, vec![]), &topics());
        assert_eq!(&bytes[..2], &1i16.to_be_bytes(), "the member's version");
        // The unknown topic is left out.
        let expected = Assignment::from_pairs([(TopicId([1; 16]), 3)]);
        assert_eq!(assignment(Some(&bytes), &topics()), Some(expected));
        assert_eq!(assignment(None, &topics()), Some(Assignment::default()));
        assert_eq!(assignment(Some(&[0, 0, 9]), &topics()), None);
    }
}
