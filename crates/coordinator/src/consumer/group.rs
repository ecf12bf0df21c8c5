//! The stored value of a consumer-protocol group, its settings, and the changes that time alone
//! causes ([`ConsumerGroup::tick`]).

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

use crate::{GroupError, Protocol};

/// A topic's id (Kafka's UUID), kept as its 16 bytes and stored as 32 hex digits so the JSON
/// stays readable. Assignments name topics by id, as Kafka's do: a topic deleted and created
/// again under the same name is another topic, and its old partitions must be revoked.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct TopicId(pub [u8; 16]);

impl fmt::Display for TopicId {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        formatter.write_str(&crate::hex::encode(&self.0))
    }
}

impl Serialize for TopicId {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(&self.to_string())
    }
}

impl<'de> Deserialize<'de> for TopicId {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let text = String::deserialize(deserializer)?;
        let bytes = crate::hex::decode(&text)
            .and_then(|bytes| <[u8; 16]>::try_from(bytes).ok())
            .ok_or_else(|| serde::de::Error::custom("a topic id is 32 hex digits"))?;
        Ok(Self(bytes))
    }
}

/// What the caller knows about one topic: its id and partition count. The transitions take the
/// caller's current view of every topic as a map from name to this.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct TopicMetadata {
    pub id: TopicId,
    pub partitions: i32,
}

/// Partitions by topic id. Sorted sets keep every computation, and the stored JSON,
/// deterministic.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(transparent)]
pub struct Assignment(pub BTreeMap<TopicId, BTreeSet<i32>>);

impl Assignment {
    /// An assignment from (topic, partition) pairs.
    pub fn from_pairs(pairs: impl IntoIterator<Item = (TopicId, i32)>) -> Self {
        let mut assignment = Self::default();
        for (topic, partition) in pairs {
            assignment.insert(topic, partition);
        }
        assignment
    }

    pub fn insert(&mut self, topic: TopicId, partition: i32) {
        self.0.entry(topic).or_default().insert(partition);
    }

    pub fn remove(&mut self, topic: TopicId, partition: i32) {
        if let Some(partitions) = self.0.get_mut(&topic) {
            partitions.remove(&partition);
            if partitions.is_empty() {
                self.0.remove(&topic);
            }
        }
    }

    pub fn contains(&self, topic: TopicId, partition: i32) -> bool {
        self.0.get(&topic).is_some_and(|partitions| partitions.contains(&partition))
    }

    /// Every (topic, partition), in order.
    pub fn pairs(&self) -> impl Iterator<Item = (TopicId, i32)> + '_ {
        self.0.iter().flat_map(|(topic, partitions)| {
            partitions.iter().map(move |partition| (*topic, *partition))
        })
    }

    /// How many partitions.
    pub fn len(&self) -> usize {
        self.0.values().map(BTreeSet::len).sum()
    }

    pub fn is_empty(&self) -> bool {
        self.0.values().all(BTreeSet::is_empty)
    }

    /// Whether every partition here is also in `other`.
    pub fn is_subset(&self, other: &Assignment) -> bool {
        self.pairs().all(|(topic, partition)| other.contains(topic, partition))
    }

    /// Whether any partition here is also in `other`.
    pub fn intersects(&self, other: &Assignment) -> bool {
        self.pairs().any(|(topic, partition)| other.contains(topic, partition))
    }
}

/// Where a member is in moving to its target assignment (Kafka's `MemberState`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
pub enum MemberState {
    /// It has its whole target (or is waiting for nothing).
    #[default]
    Stable,
    /// It must first give up `pending_revocation`; it keeps its epoch until it has.
    UnrevokedPartitions,
    /// It has moved to the target epoch but some of its target partitions are still owned by
    /// other members; it gets them once they are released.
    UnreleasedPartitions,
}

/// One member of a consumer-protocol group.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ConsumerMember {
    pub member_id: String,
    /// `group.instance.id` of a static member.
    pub instance_id: Option<String>,
    pub rack_id: Option<String>,
    pub client_id: String,
    pub client_host: String,
    /// Sorted and without duplicates, so a reordered list is not a subscription change.
    pub subscribed_topic_names: Vec<String>,
    /// RE2 syntax, matched against whole topic names.
    pub subscribed_topic_regex: Option<String>,
    /// The server-side assignor the member asked for (`group.remote.assignor`).
    pub server_assignor: Option<String>,
    pub rebalance_timeout_ms: i32,
    /// The session timeout in force at its last heartbeat (the group's setting), kept here so
    /// [`ConsumerGroup::tick`] needs only the time.
    pub session_timeout_ms: i32,
    /// -2 while a static member is away after leaving with -2.
    pub member_epoch: i32,
    pub previous_member_epoch: i32,
    pub state: MemberState,
    /// What it owns now (and may consume).
    pub assigned: Assignment,
    /// What it was asked to give up and has not yet acknowledged; still its own until then.
    pub pending_revocation: Assignment,
    /// Its share of the group's target assignment (computed for `assignment_epoch`).
    pub target: Assignment,
    pub last_heartbeat_ms: i64,
    /// Set while it has partitions to revoke: if it has not revoked them by then, it is removed.
    pub revocation_deadline_ms: Option<i64>,
    /// Set for a member that speaks the classic protocol (JoinGroup, SyncGroup, Heartbeat)
    /// inside this group: one carried over when a classic group was upgraded, or one that
    /// joined since. Absent in groups stored before members could be classic.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub classic: Option<ClassicMetadata>,
}

/// The classic-protocol side of a member: what its JoinGroup said, kept so the group can be
/// turned back into a classic group when the last consumer-protocol member leaves. Its
/// session timeout is the member's `session_timeout_ms`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ClassicMetadata {
    /// The (assignor name, ConsumerProtocolSubscription) pairs, in its order of preference.
    pub protocols: Vec<Protocol>,
}

impl ClassicMetadata {
    /// The protocol the member is answered with: its first choice, which it supports by
    /// definition (the broker assigns, so no group-wide choice is needed).
    pub fn protocol(&self) -> Option<&Protocol> {
        self.protocols.first()
    }
}

impl ConsumerMember {
    /// A member that has just joined: epoch 0, nothing assigned.
    pub(crate) fn new(member_id: String, now_ms: i64) -> Self {
        Self {
            member_id,
            instance_id: None,
            rack_id: None,
            client_id: String::new(),
            client_host: String::new(),
            subscribed_topic_names: Vec::new(),
            subscribed_topic_regex: None,
            server_assignor: None,
            rebalance_timeout_ms: 0,
            session_timeout_ms: 0,
            member_epoch: 0,
            previous_member_epoch: 0,
            state: MemberState::Stable,
            assigned: Assignment::default(),
            pending_revocation: Assignment::default(),
            target: Assignment::default(),
            last_heartbeat_ms: now_ms,
            revocation_deadline_ms: None,
            classic: None,
        }
    }

    /// Whether the member speaks the classic protocol.
    pub fn is_classic(&self) -> bool {
        self.classic.is_some()
    }

    /// A static member that left with epoch -2 and may come back within its session.
    pub fn is_away(&self) -> bool {
        self.member_epoch == super::LEAVE_STATIC_EPOCH
    }

    fn session_expired(&self, now_ms: i64) -> bool {
        now_ms > self.last_heartbeat_ms.saturating_add(i64::from(self.session_timeout_ms))
    }

    fn revocation_expired(&self, now_ms: i64) -> bool {
        self.revocation_deadline_ms.is_some_and(|deadline| now_ms > deadline)
    }
}

/// The server-side assignors Skiff has (Kafka's `group.consumer.assignors`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum AssignorName {
    /// Balanced and sticky over all subscribed partitions.
    Uniform,
    /// Contiguous ranges per topic, as the classic range assignor.
    Range,
}

impl AssignorName {
    /// The name clients send in `ServerAssignor`.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Uniform => "uniform",
            Self::Range => "range",
        }
    }

    pub fn parse(name: &str) -> Option<Self> {
        match name {
            "uniform" => Some(Self::Uniform),
            "range" => Some(Self::Range),
            _ => None,
        }
    }
}

/// Broker settings of consumer-protocol groups, with Kafka's defaults. Kafka's names in the
/// comments.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConsumerConfig {
    /// `group.consumer.heartbeat.interval.ms`: told to members in every answer.
    pub heartbeat_interval_ms: i32,
    /// `group.consumer.session.timeout.ms`: a member silent for longer is removed.
    pub session_timeout_ms: i32,
    /// `group.consumer.assignors`: the ones members may name; the first is the default.
    pub assignors: Vec<AssignorName>,
    /// `group.consumer.max.size`.
    pub max_size: usize,
}

impl Default for ConsumerConfig {
    fn default() -> Self {
        Self {
            heartbeat_interval_ms: 5000,
            session_timeout_ms: 45_000,
            assignors: vec![AssignorName::Uniform, AssignorName::Range],
            // Kafka's default is Integer.MAX_VALUE: no limit in practice.
            max_size: i32::MAX as usize,
        }
    }
}

/// A consumer-protocol group as stored (later under `groups/<group id>`, beside the classic
/// [`crate::Group`]).
///
/// Stored with `"type": "consumer"`, which is how [`crate::AnyGroup`] tells it from a classic
/// group.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(tag = "type", rename = "consumer")]
pub struct ConsumerGroup {
    /// Bumped whenever membership, subscriptions or the subscribed topics change.
    pub group_epoch: i32,
    /// The group epoch the members' targets were computed for. Behind `group_epoch` means the
    /// next heartbeat computes a new target assignment.
    pub assignment_epoch: i32,
    /// In join order.
    pub members: Vec<ConsumerMember>,
    /// The subscribed topics (by name) as they were when the target was computed: a topic
    /// created, deleted or grown changes this and so starts a new group epoch.
    pub subscribed_topics: BTreeMap<String, TopicMetadata>,
}

impl ConsumerGroup {
    /// Decodes a stored group.
    pub fn from_json(bytes: &[u8]) -> Result<Self, GroupError> {
        serde_json::from_slice(bytes).map_err(|_| GroupError::Corrupt)
    }

    /// Encodes the group for storage.
    pub fn to_json(&self) -> Vec<u8> {
        // Strings, numbers, lists and maps with string keys: serialization cannot fail, and if
        // it ever did an empty value would be refused by `from_json` rather than misread.
        serde_json::to_vec(self).unwrap_or_default()
    }

    /// Kafka's state names for consumer groups: `Empty`; `Assigning` while a new group epoch
    /// waits for its target assignment; `Reconciling` while some member has not reached its
    /// target yet; `Stable`.
    pub fn state_name(&self) -> &'static str {
        if self.members.is_empty() {
            "Empty"
        } else if self.group_epoch > self.assignment_epoch {
            "Assigning"
        } else if self.members.iter().any(|member| {
            !member.is_away()
                && (member.member_epoch != self.assignment_epoch
                    || member.state != MemberState::Stable)
        }) {
            "Reconciling"
        } else {
            "Stable"
        }
    }

    pub fn member(&self, member_id: &str) -> Option<&ConsumerMember> {
        self.members.iter().find(|member| member.member_id == member_id)
    }

    pub(crate) fn position(&self, member_id: &str) -> Option<usize> {
        self.members.iter().position(|member| member.member_id == member_id)
    }

    pub(crate) fn position_by_instance(&self, instance_id: &str) -> Option<usize> {
        self.members.iter().position(|member| member.instance_id.as_deref() == Some(instance_id))
    }

    /// Asks for a new target assignment at the next heartbeat. Several reasons arriving before
    /// it is computed share one epoch.
    pub(crate) fn bump_epoch(&mut self) {
        if self.group_epoch <= self.assignment_epoch {
            self.group_epoch = self.group_epoch.saturating_add(1);
        }
    }

    /// Removes a member (it left, was fenced or expired); the others get a new target.
    pub(crate) fn remove_member(&mut self, position: usize) {
        if position < self.members.len() {
            self.members.remove(position);
            self.bump_epoch();
        }
    }

    /// Partitions owned by members other than `except`: assigned or still pending revocation.
    /// A partition in here cannot be handed to anyone else yet.
    pub(crate) fn owned_by_others(&self, except: &str) -> Assignment {
        let mut owned = Assignment::default();
        for member in self.members.iter().filter(|member| member.member_id != except) {
            for (topic, partition) in
                member.assigned.pairs().chain(member.pending_revocation.pairs())
            {
                owned.insert(topic, partition);
            }
        }
        owned
    }

    /// Applies what time alone causes, evaluated lazily whenever the group is touched: a member
    /// whose session expired, or that did not revoke partitions within its rebalance timeout, is
    /// removed, and the others get a new target at the next heartbeat. Returns whether anything
    /// changed.
    pub fn tick(&mut self, now_ms: i64) -> bool {
        let before = self.members.len();
        self.members
            .retain(|member| !member.session_expired(now_ms) && !member.revocation_expired(now_ms));
        let changed = self.members.len() != before;
        if changed {
            self.bump_epoch();
        }
        changed
    }
}
