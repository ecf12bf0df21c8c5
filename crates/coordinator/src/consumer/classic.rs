//! Classic-protocol members inside a consumer-protocol group (KIP-848's online migration).
//!
//! While a group moves from one protocol to the other, members of both kinds share it. The
//! group is a [`ConsumerGroup`]: the broker computes every target assignment, and a classic
//! member is moved toward its share through the requests it already knows:
//! - its Heartbeat answers REBALANCE_IN_PROGRESS when it has a step to take (a new group
//!   epoch, partitions to give up, or partitions others have now released);
//! - its JoinGroup takes that step at once, as a consumer-protocol heartbeat would, with what
//!   it owns read from its subscription metadata, and answers at once: generation = its member
//!   epoch, no leader, nothing to assign;
//! - its SyncGroup returns what it now owns.
//!
//! A cooperative client that is asked to give partitions up revokes them and joins again,
//! which is what acknowledges the revocation; an eager client revokes everything before
//! joining. Either way no partition is handed to another member while it may still be read.

use std::collections::BTreeMap;

use super::group::{
    Assignment, ClassicMetadata, ConsumerConfig, ConsumerGroup, ConsumerMember, MemberState,
    TopicMetadata,
};
use crate::{GroupError, JoinAnswer, JoinRequest, LeaveMember, Limits};

/// The protocol type of groups whose members embed Kafka's consumer protocol
/// (ConsumerProtocolSubscription / ConsumerProtocolAssignment): the only classic groups that
/// can share a group with consumer-protocol members.
pub const CONSUMER_PROTOCOL_TYPE: &str = "consumer";

/// What a classic member's subscription metadata says, decoded by the caller from its
/// ConsumerProtocolSubscription (topic names resolved to ids against its topic list).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ClassicSubscription {
    pub topics: Vec<String>,
    /// The partitions it owns (v1+ of the embedded protocol; empty from eager clients, which
    /// give everything up before they join).
    pub owned: Assignment,
    pub rack_id: Option<String>,
}

impl ConsumerGroup {
    /// A classic JoinGroup on this group. `fresh_member_id` is the id a new member gets;
    /// `subscription` is decoded from the request's first protocol; `topics` is the caller's
    /// topic list. The answer carries the error, if any, as classic joins do; a refused join
    /// changes nothing (every check comes before the first change).
    #[allow(clippy::too_many_arguments)]
    pub fn classic_join(
        &mut self,
        request: &JoinRequest,
        subscription: &ClassicSubscription,
        fresh_member_id: &str,
        topics: &BTreeMap<String, TopicMetadata>,
        config: &ConsumerConfig,
        limits: &Limits,
        now_ms: i64,
    ) -> JoinAnswer {
        let position = match self.admit_classic(request, fresh_member_id, config, limits) {
            Ok(position) => position,
            Err((error, member_id)) => return JoinAnswer::error(error, &member_id),
        };
        let Some(member) = self.members.get_mut(position) else {
            return JoinAnswer::error(GroupError::UnknownMemberId, &request.member_id);
        };
        let subscription_changed = record_classic(member, request, subscription, now_ms);
        let reported = Some(&subscription.owned);
        let Some(member) =
            self.advance(position, subscription_changed, reported, topics, config, now_ms)
        else {
            return JoinAnswer::error(GroupError::UnknownMemberId, &request.member_id);
        };
        let protocol = member.classic.as_ref().and_then(ClassicMetadata::protocol);
        JoinAnswer {
            error: None,
            member_id: member.member_id.clone(),
            generation: member.member_epoch,
            protocol_type: Some(CONSUMER_PROTOCOL_TYPE.to_owned()),
            protocol: protocol.map(|protocol| protocol.name.clone()),
            // No leader: the broker assigns, and the member learns its share from SyncGroup.
            leader: String::new(),
            skip_assignment: false,
            members: Vec::new(),
        }
    }

    /// The checks of a classic join, then the member's position (see `classic_position`).
    fn admit_classic(
        &mut self,
        request: &JoinRequest,
        fresh_member_id: &str,
        config: &ConsumerConfig,
        limits: &Limits,
    ) -> Result<usize, (GroupError, String)> {
        let refuse = |error| (error, request.member_id.clone());
        if request.session_timeout_ms < limits.min_session_timeout_ms
            || request.session_timeout_ms > limits.max_session_timeout_ms
        {
            return Err(refuse(GroupError::InvalidSessionTimeout));
        }
        if request.protocol_type != CONSUMER_PROTOCOL_TYPE || request.protocols.is_empty() {
            return Err(refuse(GroupError::InconsistentGroupProtocol));
        }
        self.classic_position(request, fresh_member_id, config)
    }

    /// Finds or adds the joining member: a known classic member, a static member replacing
    /// its older incarnation, or a new member (on JoinGroup v4+ a new dynamic member first
    /// gets MEMBER_ID_REQUIRED and an id; nothing is stored for it until it joins with it).
    fn classic_position(
        &mut self,
        request: &JoinRequest,
        fresh_member_id: &str,
        config: &ConsumerConfig,
    ) -> Result<usize, (GroupError, String)> {
        let refuse = |error| (error, request.member_id.clone());
        if let Some(instance_id) = &request.instance_id {
            if let Some(position) = self.position_by_instance(instance_id) {
                let member = &mut self.members[position];
                if request.member_id.is_empty() {
                    // KIP-345: a restarted static member takes its place and assignment over,
                    // whichever protocol its older incarnation spoke.
                    member.member_id = fresh_member_id.to_owned();
                    return Ok(position);
                }
                if member.member_id != request.member_id {
                    return Err(refuse(GroupError::FencedInstanceId));
                }
                if !member.is_classic() {
                    return Err(refuse(GroupError::UnknownMemberId));
                }
                return Ok(position);
            }
            if !request.member_id.is_empty() {
                return Err(refuse(GroupError::UnknownMemberId));
            }
        }
        if request.member_id.is_empty()
            && request.instance_id.is_none()
            && request.require_known_member_id
        {
            return Err((GroupError::MemberIdRequired, fresh_member_id.to_owned()));
        }
        if let Some(position) = self.position(&request.member_id) {
            if !self.members[position].is_classic() {
                return Err(refuse(GroupError::UnknownMemberId));
            }
            return Ok(position);
        }
        if self.members.len() >= config.max_size {
            return Err(refuse(GroupError::GroupMaxSizeReached));
        }
        let member_id = if request.member_id.is_empty() {
            fresh_member_id.to_owned()
        } else {
            // An id this group handed out with MEMBER_ID_REQUIRED.
            request.member_id.clone()
        };
        let mut member = ConsumerMember::new(member_id, 0);
        member.instance_id = request.instance_id.clone();
        self.members.push(member);
        self.bump_epoch();
        Ok(self.members.len() - 1)
    }

    /// A classic SyncGroup: the member's current assignment (its JoinGroup already took the
    /// step), as long as its generation is its member epoch and no newer group epoch waits for
    /// it to join again.
    pub fn classic_sync(
        &mut self,
        member_id: &str,
        instance_id: Option<&str>,
        generation: i32,
        protocol_type: Option<&str>,
        protocol: Option<&str>,
        now_ms: i64,
    ) -> Result<Assignment, GroupError> {
        let group_epoch = self.group_epoch;
        let member = self.classic_member(member_id, instance_id)?;
        if generation != member.member_epoch {
            return Err(GroupError::IllegalGeneration);
        }
        let chosen = member.classic.as_ref().and_then(ClassicMetadata::protocol);
        let type_differs = protocol_type.is_some_and(|given| given != CONSUMER_PROTOCOL_TYPE);
        let name_differs =
            protocol.is_some_and(|given| chosen.is_none_or(|chosen| chosen.name != given));
        if type_differs || name_differs {
            return Err(GroupError::InconsistentGroupProtocol);
        }
        // A member still giving partitions up has joined already; it finishes that first.
        if group_epoch > member.member_epoch && member.state != MemberState::UnrevokedPartitions {
            return Err(GroupError::RebalanceInProgress);
        }
        member.last_heartbeat_ms = now_ms;
        Ok(member.assigned.clone())
    }

    /// A classic Heartbeat: keeps the session alive, and answers REBALANCE_IN_PROGRESS when
    /// the member has a step to take, which it takes by joining again: the group epoch moved
    /// past its epoch, it must give partitions up, or partitions it waits for were released.
    pub fn classic_heartbeat(
        &mut self,
        member_id: &str,
        instance_id: Option<&str>,
        generation: i32,
        now_ms: i64,
    ) -> Result<(), GroupError> {
        let group_epoch = self.group_epoch;
        let position = {
            let member = self.classic_member(member_id, instance_id)?;
            if generation != member.member_epoch {
                return Err(GroupError::IllegalGeneration);
            }
            member.last_heartbeat_ms = now_ms;
            self.position(member_id).ok_or(GroupError::UnknownMemberId)?
        };
        let member = &self.members[position];
        let released =
            member.state == MemberState::UnreleasedPartitions && !self.waits_on_others(position);
        if member.member_epoch < group_epoch
            || member.state == MemberState::UnrevokedPartitions
            || released
        {
            return Err(GroupError::RebalanceInProgress);
        }
        Ok(())
    }

    /// Whether some partition of the member's target that it does not have yet is still
    /// owned by another member.
    fn waits_on_others(&self, position: usize) -> bool {
        let Some(member) = self.members.get(position) else { return false };
        let owned = self.owned_by_others(&member.member_id);
        member.target.pairs().any(|(topic, partition)| {
            !member.assigned.contains(topic, partition) && owned.contains(topic, partition)
        })
    }

    /// A classic LeaveGroup: removes classic members (by member id, or by static instance
    /// id; an empty member id with an instance id is an admin's removal). One result per
    /// leaving member, in order; the others get a new target.
    pub fn classic_leave(&mut self, leaving: &[LeaveMember]) -> Vec<Result<(), GroupError>> {
        leaving
            .iter()
            .map(|leaving| {
                let position = match &leaving.instance_id {
                    Some(instance_id) => {
                        let position = self
                            .position_by_instance(instance_id)
                            .ok_or(GroupError::UnknownMemberId)?;
                        let current = &self.members[position].member_id;
                        if !leaving.member_id.is_empty() && *current != leaving.member_id {
                            return Err(GroupError::FencedInstanceId);
                        }
                        position
                    }
                    None => self.position(&leaving.member_id).ok_or(GroupError::UnknownMemberId)?,
                };
                if !self.members[position].is_classic() {
                    return Err(GroupError::UnknownMemberId);
                }
                self.remove_member(position);
                Ok(())
            })
            .collect()
    }

    /// The classic member a request names: by instance id for a static member
    /// (FENCED_INSTANCE_ID when the instance now has another member id), else by member id;
    /// a consumer-protocol member is not one (UNKNOWN_MEMBER_ID, as Kafka answers).
    fn classic_member(
        &mut self,
        member_id: &str,
        instance_id: Option<&str>,
    ) -> Result<&mut ConsumerMember, GroupError> {
        let position = match instance_id {
            Some(instance_id) => {
                let position =
                    self.position_by_instance(instance_id).ok_or(GroupError::UnknownMemberId)?;
                if self.members[position].member_id != member_id {
                    return Err(GroupError::FencedInstanceId);
                }
                position
            }
            None => self.position(member_id).ok_or(GroupError::UnknownMemberId)?,
        };
        let member = &mut self.members[position];
        if !member.is_classic() {
            return Err(GroupError::UnknownMemberId);
        }
        Ok(member)
    }
}

/// Records what a classic JoinGroup says about the member; returns whether its subscription
/// changed.
fn record_classic(
    member: &mut ConsumerMember,
    request: &JoinRequest,
    subscription: &ClassicSubscription,
    now_ms: i64,
) -> bool {
    let mut names = subscription.topics.clone();
    names.sort();
    names.dedup();
    let changed = member.subscribed_topic_names != names || member.subscribed_topic_regex.is_some();
    member.subscribed_topic_names = names;
    member.subscribed_topic_regex = None;
    member.server_assignor = None;
    member.rack_id = subscription.rack_id.clone();
    member.rebalance_timeout_ms = request.rebalance_timeout_ms;
    member.session_timeout_ms = request.session_timeout_ms;
    member.client_id = request.client_id.clone();
    member.client_host = request.client_host.clone();
    member.last_heartbeat_ms = now_ms;
    member.classic = Some(ClassicMetadata { protocols: request.protocols.clone() });
    changed
}
