//! The value under `groups/<group id>`: a classic group or a consumer-protocol (KIP-848) group.
//! Only consumer groups carry a `"type": "consumer"` field, so classic groups stored before
//! the consumer protocol existed read as they always did.

use serde::Deserialize;

use crate::consumer::ConsumerGroup;
use crate::{Group, GroupError, GroupState};

/// Either kind of stored group.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AnyGroup {
    Classic(Group),
    Consumer(ConsumerGroup),
}

/// A group never stored is an empty classic one.
impl Default for AnyGroup {
    fn default() -> Self {
        Self::Classic(Group::default())
    }
}

/// Reads only the `type` field of a stored value.
#[derive(Deserialize)]
struct Kind {
    #[serde(rename = "type", default)]
    kind: Option<String>,
}

impl AnyGroup {
    /// Decodes a stored group of either kind.
    pub fn from_json(bytes: &[u8]) -> Result<Self, GroupError> {
        let kind: Kind = serde_json::from_slice(bytes).map_err(|_| GroupError::Corrupt)?;
        match kind.kind.as_deref() {
            None | Some(CLASSIC) => Group::from_json(bytes).map(Self::Classic),
            Some(CONSUMER) => ConsumerGroup::from_json(bytes).map(Self::Consumer),
            Some(_) => Err(GroupError::Corrupt),
        }
    }

    pub fn to_json(&self) -> Vec<u8> {
        match self {
            Self::Classic(group) => group.to_json(),
            Self::Consumer(group) => group.to_json(),
        }
    }

    /// Kafka's group type, as ListGroups (v5+) reports it.
    pub fn type_name(&self) -> &'static str {
        match self {
            Self::Classic(_) => CLASSIC,
            Self::Consumer(_) => CONSUMER,
        }
    }

    /// Kafka's name for the group's state.
    pub fn state_name(&self) -> &'static str {
        match self {
            Self::Classic(group) => group.state.kafka_name(),
            Self::Consumer(group) => group.state_name(),
        }
    }

    /// Applies what time alone changed (expired sessions, missed deadlines), including the
    /// downgrade of a group whose last consumer-protocol member expired.
    pub fn tick(&mut self, now_ms: i64) {
        match self {
            Self::Classic(group) => {
                group.tick(now_ms);
            }
            Self::Consumer(group) => {
                group.tick(now_ms);
            }
        }
        self.settle(now_ms);
    }

    /// Turns a consumer-protocol group whose members all speak the classic protocol back into
    /// a classic group (KIP-848's online downgrade; see [`Group::from_consumer`]). Applied
    /// after every change, so the member that leaves last takes the consumer protocol with it.
    pub fn settle(&mut self, now_ms: i64) {
        if let Self::Consumer(group) = self {
            if group.only_classic_members() {
                *self = Self::Classic(Group::from_consumer(group, now_ms));
            }
        }
    }

    /// Whether the group has no members, so a request of the other protocol may replace it
    /// with a group of its own kind (its committed offsets stay, they are kept apart), as
    /// Kafka converts an empty group.
    pub fn is_empty(&self) -> bool {
        match self {
            Self::Classic(group) => {
                matches!(group.state, GroupState::Empty | GroupState::Dead)
                    && group.members.is_empty()
                    && group.pending.is_empty()
            }
            Self::Consumer(group) => group.members.is_empty(),
        }
    }
}

/// Kafka's group type names.
pub const CLASSIC: &str = "classic";
pub const CONSUMER: &str = "consumer";

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn consumer_groups_are_stored_with_their_type() {
        let group = ConsumerGroup { group_epoch: 3, ..ConsumerGroup::default() };
        let json = group.to_json();
        let text = String::from_utf8(json.clone()).expect("utf-8");
        assert!(text.contains(r#""type":"consumer""#), "{text}");
        assert_eq!(AnyGroup::from_json(&json), Ok(AnyGroup::Consumer(group)));
    }

    #[test]
    fn classic_groups_read_as_before() {
        let group = Group { generation: 7, ..Group::default() };
        let json = group.to_json();
        assert!(!String::from_utf8_lossy(&json).contains("\"type\""));
        assert_eq!(AnyGroup::from_json(&json), Ok(AnyGroup::Classic(group)));
        // A value stored before either kind had a type field, and one that says classic.
        let older = br#"{"state":{"name":"Empty"},"generation":2,"protocol_type":null,
            "protocol":null,"leader":null,"members":[],"pending":[]}"#;
        assert!(
            matches!(AnyGroup::from_json(older), Ok(AnyGroup::Classic(group)) if group.generation == 2)
        );
    }

    #[test]
    fn an_unknown_type_is_corrupt_not_guessed() {
        assert_eq!(AnyGroup::from_json(br#"{"type":"share"}"#), Err(GroupError::Corrupt));
        assert_eq!(AnyGroup::from_json(b"not json"), Err(GroupError::Corrupt));
    }

    #[test]
    fn groups_without_members_are_empty_of_either_kind() {
        assert!(AnyGroup::Classic(Group::default()).is_empty());
        assert!(AnyGroup::Consumer(ConsumerGroup::default()).is_empty());
        let busy = Group { state: GroupState::Stable, ..Group::default() };
        assert!(!AnyGroup::Classic(busy).is_empty());
    }
}
