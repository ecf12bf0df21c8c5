//! The stored group value and the changes that time alone causes.

use serde::{Deserialize, Serialize};

use crate::GroupError;

/// Broker settings the transitions need. Kafka's names in the comments.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// `group.initial.rebalance.delay.ms`: how long the first rebalance of an empty group waits
    /// for more members, so a fleet starting together forms one generation, not many.
    pub initial_rebalance_delay_ms: i64,
    /// Skiff's: the first rebalance completes once no new member arrived for this long, at
    /// most `initial_rebalance_delay_ms` after the first one. Kafka waits the whole delay after
    /// each newcomer; a fleet starting together arrives within a fraction of a second, so a
    /// shorter quiet time batches it as well and starts it sooner.
    pub initial_rebalance_quiet_ms: i64,
    /// `group.min.session.timeout.ms`.
    pub min_session_timeout_ms: i32,
    /// `group.max.session.timeout.ms`.
    pub max_session_timeout_ms: i32,
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            initial_rebalance_delay_ms: 3000,
            initial_rebalance_quiet_ms: 1000,
            min_session_timeout_ms: 6000,
            max_session_timeout_ms: 1_800_000,
        }
    }
}

/// Where a group is in the classic rebalance protocol.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(tag = "name")]
pub enum GroupState {
    /// No members (the group may still have committed offsets).
    #[default]
    Empty,
    /// Waiting for members to (re)join. Completes once every member and every pending new
    /// member has joined and `initial_delay_until_ms` passed, or at `deadline_ms` regardless.
    /// The first rebalance of an empty group moves `initial_delay_until_ms` with each newcomer,
    /// never past `initial_delay_limit_ms` (0 in groups stored before it existed: the deadline).
    PreparingRebalance {
        deadline_ms: i64,
        initial_delay_until_ms: i64,
        #[serde(default)]
        initial_delay_limit_ms: i64,
    },
    /// A generation is formed; waiting for the leader's assignment (SyncGroup).
    CompletingRebalance,
    /// The leader's assignment is stored; members heartbeat.
    Stable,
    /// Being deleted.
    Dead,
}

impl GroupState {
    /// Kafka's name for the state, as DescribeGroups and ListGroups report it.
    pub fn kafka_name(&self) -> &'static str {
        match self {
            Self::Empty => "Empty",
            Self::PreparingRebalance { .. } => "PreparingRebalance",
            Self::CompletingRebalance => "CompletingRebalance",
            Self::Stable => "Stable",
            Self::Dead => "Dead",
        }
    }
}

/// One (name, metadata) pair a member supports, in its order of preference.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Protocol {
    pub name: String,
    #[serde(with = "crate::hex")]
    pub metadata: Vec<u8>,
}

/// A member of the group.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Member {
    pub member_id: String,
    /// `group.instance.id` of a static member (KIP-345).
    pub instance_id: Option<String>,
    pub client_id: String,
    pub client_host: String,
    pub session_timeout_ms: i32,
    pub rebalance_timeout_ms: i32,
    pub protocol_type: String,
    pub protocols: Vec<Protocol>,
    /// What the leader assigned it in the current generation.
    #[serde(with = "crate::hex::option")]
    pub assignment: Option<Vec<u8>>,
    /// Last JoinGroup, SyncGroup or Heartbeat; the session expires `session_timeout_ms` later.
    pub last_seen_ms: i64,
    /// Has (re)joined the rebalance in progress; its JoinGroup is waiting for it to complete.
    pub joined: bool,
}

impl Member {
    /// Its metadata for `protocol`, empty if it does not support it.
    pub fn metadata_for(&self, protocol: Option<&str>) -> &[u8] {
        self.protocols
            .iter()
            .find(|candidate| Some(candidate.name.as_str()) == protocol)
            .map(|candidate| candidate.metadata.as_slice())
            .unwrap_or_default()
    }

    fn supports(&self, protocol: &str) -> bool {
        self.protocols.iter().any(|candidate| candidate.name == protocol)
    }
}

/// A member id handed out with MEMBER_ID_REQUIRED (KIP-394) and not yet used to join. A
/// rebalance waits for it, as Kafka does, until it joins or `expires_ms` passes.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PendingMember {
    pub member_id: String,
    pub expires_ms: i64,
}

/// A consumer group as stored, under `groups/<group id>`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
pub struct Group {
    pub state: GroupState,
    /// Increases by one whenever a rebalance completes (including one that leaves it empty).
    pub generation: i32,
    /// Set by the first member to join an empty group; later members must match it.
    pub protocol_type: Option<String>,
    /// The protocol (assignor) chosen for the current generation.
    pub protocol: Option<String>,
    pub leader: Option<String>,
    /// In join order: the first is the leader when the old leader did not rejoin.
    pub members: Vec<Member>,
    pub pending: Vec<PendingMember>,
}

impl Group {
    /// Decodes a stored group.
    pub fn from_json(bytes: &[u8]) -> Result<Self, GroupError> {
        serde_json::from_slice(bytes).map_err(|_| GroupError::Corrupt)
    }

    /// Encodes the group for storage.
    pub fn to_json(&self) -> Vec<u8> {
        // Every field is a string, number, bool or list: serialization cannot fail, and if it
        // ever did an empty value would be refused by `from_json` rather than misread.
        serde_json::to_vec(self).unwrap_or_default()
    }

    pub fn member(&self, member_id: &str) -> Option<&Member> {
        self.members.iter().find(|member| member.member_id == member_id)
    }

    pub(crate) fn member_mut(&mut self, member_id: &str) -> Option<&mut Member> {
        self.members.iter_mut().find(|member| member.member_id == member_id)
    }

    pub(crate) fn member_by_instance(&self, instance_id: &str) -> Option<&Member> {
        self.members.iter().find(|member| member.instance_id.as_deref() == Some(instance_id))
    }

    /// KIP-345 fencing: a request naming a static instance whose current member id is a
    /// different one comes from an older incarnation of that instance.
    pub(crate) fn fenced(&self, member_id: &str, instance_id: Option<&str>) -> bool {
        let Some(instance_id) = instance_id else { return false };
        self.member_by_instance(instance_id).is_some_and(|member| member.member_id != member_id)
    }

    /// A member's metadata for the group's protocol, or for its own first choice while none
    /// is chosen yet (before the first rebalance completes).
    pub fn chosen_metadata<'a>(&self, member: &'a Member) -> &'a [u8] {
        let first = member.protocols.first().map(|protocol| protocol.name.as_str());
        member.metadata_for(self.protocol.as_deref().or(first))
    }

    pub fn is_leader(&self, member_id: &str) -> bool {
        self.leader.as_deref() == Some(member_id)
    }

    /// Applies everything that time alone causes, evaluated lazily whenever the group is
    /// touched: pending member ids and sessions expire, and a rebalance whose members have all
    /// joined, or whose deadline passed, completes. Returns whether anything changed.
    pub fn tick(&mut self, now_ms: i64) -> bool {
        let before = self.clone();
        self.pending.retain(|pending| pending.expires_ms >= now_ms);
        let preparing = matches!(self.state, GroupState::PreparingRebalance { .. });
        let count = self.members.len();
        self.members.retain(|member| {
            // A member waiting in JoinGroup does not heartbeat; the rebalance deadline bounds it.
            (preparing && member.joined)
                || now_ms
                    <= member.last_seen_ms.saturating_add(i64::from(member.session_timeout_ms))
        });
        if self.members.len() != count {
            self.members_removed(now_ms);
        }
        self.try_complete(now_ms);
        *self != before
    }

    /// After members left or expired: an empty group completes at once (to Empty, next
    /// generation); otherwise the others must rejoin.
    pub(crate) fn members_removed(&mut self, now_ms: i64) {
        if self.leader.as_deref().is_some_and(|leader| self.member(leader).is_none()) {
            self.leader = None;
        }
        if self.members.is_empty() {
            if self.state != GroupState::Empty {
                self.complete(now_ms);
            }
            return;
        }
        self.prepare_rebalance(now_ms);
    }

    /// Starts a rebalance unless one is in progress. From Empty, with `limits`, the first
    /// completion waits for more members: until none arrived for the quiet time, at most the
    /// initial delay.
    pub(crate) fn prepare_rebalance_with(&mut self, now_ms: i64, limits: Option<&Limits>) {
        if matches!(self.state, GroupState::PreparingRebalance { .. }) {
            return;
        }
        let timeout = self.members.iter().map(|member| member.rebalance_timeout_ms).max();
        let deadline_ms = now_ms.saturating_add(i64::from(timeout.unwrap_or(0).max(0)));
        let (initial_delay_until_ms, initial_delay_limit_ms) = match limits {
            Some(limits) if self.state == GroupState::Empty => {
                let delay = limits.initial_rebalance_delay_ms.max(0);
                let limit = now_ms.saturating_add(delay).min(deadline_ms);
                let quiet = limits.initial_rebalance_quiet_ms.clamp(0, delay);
                (now_ms.saturating_add(quiet).min(limit), limit)
            }
            _ => (now_ms, now_ms),
        };
        for member in &mut self.members {
            member.joined = false;
        }
        self.state = GroupState::PreparingRebalance {
            deadline_ms,
            initial_delay_until_ms,
            initial_delay_limit_ms,
        };
    }

    /// A member arriving while the first rebalance waits for more: the quiet time starts again,
    /// up to the limit.
    pub(crate) fn extend_initial_delay(&mut self, now_ms: i64, limits: &Limits) {
        if let GroupState::PreparingRebalance {
            deadline_ms,
            initial_delay_until_ms,
            initial_delay_limit_ms,
        } = &mut self.state
        {
            if *initial_delay_until_ms > now_ms {
                let limit = if *initial_delay_limit_ms > 0 {
                    *initial_delay_limit_ms
                } else {
                    *deadline_ms
                };
                let quiet = limits.initial_rebalance_quiet_ms.max(0);
                *initial_delay_until_ms = now_ms.saturating_add(quiet).min(limit).min(*deadline_ms);
            }
        }
    }

    pub(crate) fn prepare_rebalance(&mut self, now_ms: i64) {
        self.prepare_rebalance_with(now_ms, None);
    }

    /// Completes the rebalance in progress if every member (and every pending new member) has
    /// joined and the initial delay passed, or if its deadline passed.
    pub(crate) fn try_complete(&mut self, now_ms: i64) {
        let GroupState::PreparingRebalance { deadline_ms, initial_delay_until_ms, .. } = self.state
        else {
            return;
        };
        let everyone = self.members.iter().all(|member| member.joined) && self.pending.is_empty();
        if (everyone && now_ms >= initial_delay_until_ms) || now_ms >= deadline_ms {
            self.complete(now_ms);
        }
    }

    /// Forms the next generation from the members that joined; the others are dropped.
    fn complete(&mut self, now_ms: i64) {
        self.members.retain(|member| member.joined);
        self.pending.clear();
        self.generation = self.generation.wrapping_add(1).max(1);
        for member in &mut self.members {
            member.joined = false;
            member.assignment = None;
            member.last_seen_ms = now_ms;
        }
        if self.members.is_empty() {
            self.state = GroupState::Empty;
            self.protocol = None;
            self.leader = None;
            return;
        }
        if self.leader.as_deref().is_none_or(|leader| self.member(leader).is_none()) {
            self.leader = self.members.first().map(|member| member.member_id.clone());
        }
        self.protocol = self.select_protocol();
        self.state = GroupState::CompletingRebalance;
    }

    /// Protocols every member supports.
    pub(crate) fn candidate_protocols(&self) -> Vec<&str> {
        let Some(first) = self.members.first() else { return Vec::new() };
        first
            .protocols
            .iter()
            .map(|protocol| protocol.name.as_str())
            .filter(|name| self.members.iter().all(|member| member.supports(name)))
            .collect()
    }

    /// Kafka's rule: each member votes for the first protocol in its own preference order that
    /// all members support; the most votes wins, ties going to the earliest in the first
    /// member's order.
    pub(crate) fn select_protocol(&self) -> Option<String> {
        let candidates = self.candidate_protocols();
        let mut best: Option<(&str, usize)> = None;
        for candidate in &candidates {
            let votes = self
                .members
                .iter()
                .filter(|member| {
                    member
                        .protocols
                        .iter()
                        .find(|protocol| candidates.contains(&protocol.name.as_str()))
                        .is_some_and(|protocol| protocol.name == *candidate)
                })
                .count();
            if best.is_none_or(|(_, most)| votes > most) {
                best = Some((candidate, votes));
            }
        }
        best.map(|(name, _)| name.to_owned())
    }

    /// Whether a member with this protocol type and these protocols may join: the group's type
    /// and at least one protocol every current member supports.
    pub(crate) fn accepts_protocols(&self, protocol_type: &str, protocols: &[Protocol]) -> bool {
        if protocol_type.is_empty() || protocols.is_empty() {
            return false;
        }
        if self.members.is_empty() {
            return true;
        }
        if self.protocol_type.as_deref() != Some(protocol_type) {
            return false;
        }
        let candidates = self.candidate_protocols();
        protocols.iter().any(|protocol| candidates.contains(&protocol.name.as_str()))
    }
}
