//! Turning a group with members from one protocol into the other (KIP-848's online upgrade
//! and downgrade, as Kafka 4.x does them).
//!
//! - Upgrade: the first consumer-protocol member to join a classic group of protocol type
//!   `consumer` turns it into a consumer-protocol group in the same compare-and-set. Every
//!   classic member stays, as a classic member of the new group ([`ConsumerGroup::from_classic`]),
//!   keeping what it was assigned; the newcomer then starts a new group epoch as any join
//!   does, and the classic members are moved to their share through their own requests
//!   (see `classic`).
//! - Downgrade: once only classic members remain (the last consumer-protocol member left or
//!   expired), the group becomes a classic group again ([`Group::from_consumer`]) with a
//!   rebalance started, so the members' own assignor takes over from what they own.

use super::classic::{ClassicSubscription, CONSUMER_PROTOCOL_TYPE};
use super::group::{Assignment, ClassicMetadata, ConsumerGroup, ConsumerMember, MemberState};
use crate::{Group, GroupError, GroupState, Member};

impl ConsumerGroup {
    /// The consumer-protocol group a classic group becomes. `decode` reads a member's
    /// ConsumerProtocolSubscription (its metadata for the group's protocol) and
    /// ConsumerProtocolAssignment (`None`: nothing assigned yet). Each member keeps what it
    /// was assigned, as owned and as its target, at member epoch = the classic generation, so
    /// nothing moves until the next group epoch. Refused (OtherProtocol, Kafka's
    /// GROUP_ID_NOT_FOUND) for a group that does not embed the consumer protocol, one being
    /// deleted, or one whose metadata does not decode.
    pub fn from_classic(
        group: &Group,
        decode: impl Fn(&[u8], Option<&[u8]>) -> Option<(ClassicSubscription, Assignment)>,
    ) -> Result<Self, GroupError> {
        if group.protocol_type.as_deref() != Some(CONSUMER_PROTOCOL_TYPE)
            || group.state == GroupState::Dead
        {
            return Err(GroupError::OtherProtocol);
        }
        let epoch = group.generation;
        let mut members = Vec::with_capacity(group.members.len());
        for classic in &group.members {
            let metadata = group.chosen_metadata(classic);
            let (subscription, assigned) =
                decode(metadata, classic.assignment.as_deref()).ok_or(GroupError::OtherProtocol)?;
            members.push(carried_over(classic, subscription, assigned, epoch));
        }
        Ok(Self {
            group_epoch: epoch,
            assignment_epoch: epoch,
            members,
            // Recorded by the first heartbeat or join, which starts the next group epoch.
            subscribed_topics: Default::default(),
        })
    }

    /// Whether every member speaks the classic protocol (and there is one): the group then
    /// goes back to being a classic group.
    pub fn only_classic_members(&self) -> bool {
        !self.members.is_empty() && self.members.iter().all(ConsumerMember::is_classic)
    }
}

/// A classic member as a member of the upgraded group.
fn carried_over(
    classic: &Member,
    subscription: ClassicSubscription,
    assigned: Assignment,
    epoch: i32,
) -> ConsumerMember {
    let mut topics = subscription.topics;
    topics.sort();
    topics.dedup();
    let mut member = ConsumerMember::new(classic.member_id.clone(), classic.last_seen_ms);
    member.instance_id = classic.instance_id.clone();
    member.rack_id = subscription.rack_id;
    member.client_id = classic.client_id.clone();
    member.client_host = classic.client_host.clone();
    member.subscribed_topic_names = topics;
    member.rebalance_timeout_ms = classic.rebalance_timeout_ms;
    member.session_timeout_ms = classic.session_timeout_ms;
    member.member_epoch = epoch;
    member.previous_member_epoch = epoch;
    member.state = MemberState::Stable;
    member.target = assigned.clone();
    member.assigned = assigned;
    member.classic = Some(ClassicMetadata { protocols: classic.protocols.clone() });
    member
}

impl Group {
    /// The classic group a consumer-protocol group with only classic members becomes: its
    /// members with their protocols and sessions, at generation = the newest member epoch
    /// (what members that reached the group's target send), in a rebalance so that they join
    /// again and their own assignor, seeing what each owns, takes over.
    pub fn from_consumer(group: &ConsumerGroup, now_ms: i64) -> Self {
        let members: Vec<Member> = group
            .members
            .iter()
            .filter_map(|member| {
                let classic = member.classic.as_ref()?;
                Some(Member {
                    member_id: member.member_id.clone(),
                    instance_id: member.instance_id.clone(),
                    client_id: member.client_id.clone(),
                    client_host: member.client_host.clone(),
                    session_timeout_ms: member.session_timeout_ms,
                    rebalance_timeout_ms: member.rebalance_timeout_ms,
                    protocol_type: CONSUMER_PROTOCOL_TYPE.to_owned(),
                    protocols: classic.protocols.clone(),
                    assignment: None,
                    last_seen_ms: member.last_heartbeat_ms,
                    joined: false,
                })
            })
            .collect();
        let generation = group.members.iter().map(|member| member.member_epoch).max();
        let mut classic = Group {
            state: GroupState::Stable,
            generation: generation.unwrap_or(group.group_epoch),
            protocol_type: Some(CONSUMER_PROTOCOL_TYPE.to_owned()),
            protocol: None,
            leader: None,
            members,
            pending: Vec::new(),
        };
        classic.protocol = classic.select_protocol();
        classic.prepare_rebalance(now_ms);
        classic
    }
}
