//! ConsumerGroupHeartbeat: joining, heartbeating, leaving, in Kafka's order of checks.
//!
//! One heartbeat does, in order: validate the request; find (or add, or take over) the
//! member, checking its epoch; record its subscription; start a new group epoch if the
//! subscriptions or the subscribed topics changed; compute the target assignment if the group
//! epoch is ahead of it; move the member one step toward its target.

use std::collections::BTreeMap;

use super::group::{
    Assignment, ConsumerConfig, ConsumerGroup, ConsumerMember, MemberState, TopicMetadata,
};
use super::subscription::check_regex;
use super::{JOIN_EPOCH, LEAVE_EPOCH, LEAVE_STATIC_EPOCH};
use crate::GroupError;

/// The heartbeat interval told to a member waiting for partitions other members still own
/// (Skiff's, not Kafka's). Those members release them at their own next heartbeat, at any
/// moment within the interval; a waiting member that heartbeats only every interval would
/// hear of the release up to a whole interval later, which made every join cost one full
/// interval. Polling faster only while it waits costs a few more writes per join.
pub const WAITING_HEARTBEAT_INTERVAL_MS: i32 = 500;

/// A ConsumerGroupHeartbeat request in the group's terms. `None` stands for Kafka's null
/// ("unchanged since the last heartbeat").
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct HeartbeatRequest {
    /// Never empty: v1+ clients choose their id (KIP-1082); for a v0 client joining without
    /// one the caller generates it.
    pub member_id: String,
    /// 0 to join, -1 to leave, -2 for a static member leaving for a while, else the epoch
    /// the member has.
    pub member_epoch: i32,
    pub instance_id: Option<String>,
    pub rack_id: Option<String>,
    pub rebalance_timeout_ms: Option<i32>,
    pub client_id: String,
    pub client_host: String,
    pub subscribed_topic_names: Option<Vec<String>>,
    /// RE2 syntax; an empty string clears it.
    pub subscribed_topic_regex: Option<String>,
    pub server_assignor: Option<String>,
    /// The partitions the member owns now (Kafka's `TopicPartitions`).
    pub owned_partitions: Option<Assignment>,
}

/// What the member is told.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct HeartbeatAnswer {
    pub member_id: String,
    pub member_epoch: i32,
    pub heartbeat_interval_ms: i32,
    /// Only when it changed, or when the member sent a full request (it joined, or resent
    /// everything after an error).
    pub assignment: Option<Assignment>,
}

impl ConsumerGroup {
    /// Applies a ConsumerGroupHeartbeat. `topics` is the caller's current view of every
    /// topic (name to id and partition count), against which subscriptions and regexes are
    /// resolved. A refused request leaves the group unchanged.
    pub fn heartbeat(
        &mut self,
        request: HeartbeatRequest,
        topics: &BTreeMap<String, TopicMetadata>,
        config: &ConsumerConfig,
        now_ms: i64,
    ) -> Result<HeartbeatAnswer, GroupError> {
        validate(&request, config)?;
        let mut next = self.clone();
        let answer =
            if request.member_epoch == LEAVE_EPOCH || request.member_epoch == LEAVE_STATIC_EPOCH {
                next.leave(&request, now_ms)?
            } else {
                next.heartbeat_member(request, topics, config, now_ms)?
            };
        *self = next;
        Ok(answer)
    }

    fn heartbeat_member(
        &mut self,
        request: HeartbeatRequest,
        topics: &BTreeMap<String, TopicMetadata>,
        config: &ConsumerConfig,
        now_ms: i64,
    ) -> Result<HeartbeatAnswer, GroupError> {
        let position = if request.member_epoch == JOIN_EPOCH {
            self.join(&request, config, now_ms)?
        } else {
            self.known_member(&request)?
        };
        let Some(member) = self.members.get_mut(position) else {
            return Err(GroupError::UnknownMemberId);
        };
        let assigned_before = member.assigned.clone();
        let subscription_changed = update_member(member, &request, config, now_ms);

        let reported = request.owned_partitions.as_ref();
        let Some(member) =
            self.advance(position, subscription_changed, reported, topics, config, now_ms)
        else {
            return Err(GroupError::UnknownMemberId);
        };

        let send_assignment = is_full(&request) || member.assigned != assigned_before;
        let heartbeat_interval_ms = if member.state == MemberState::UnreleasedPartitions {
            config.heartbeat_interval_ms.min(WAITING_HEARTBEAT_INTERVAL_MS)
        } else {
            config.heartbeat_interval_ms
        };
        Ok(HeartbeatAnswer {
            member_id: member.member_id.clone(),
            member_epoch: member.member_epoch,
            heartbeat_interval_ms,
            assignment: send_assignment.then(|| member.assigned.clone()),
        })
    }

    /// A heartbeat with epoch 0: a new member, a member rejoining with its id (after it was
    /// fenced, or its answer was lost), or a static member taking over its instance. Returns
    /// the member's position.
    fn join(
        &mut self,
        request: &HeartbeatRequest,
        config: &ConsumerConfig,
        now_ms: i64,
    ) -> Result<usize, GroupError> {
        if let Some(position) = self.position(&request.member_id) {
            return self.rejoin(position, request);
        }
        if let Some(instance_id) = &request.instance_id {
            if let Some(position) = self.position_by_instance(instance_id) {
                return self.take_over(position, request);
            }
        }
        if self.members.len() >= config.max_size {
            return Err(GroupError::GroupMaxSizeReached);
        }
        let mut member = ConsumerMember::new(request.member_id.clone(), now_ms);
        member.instance_id = request.instance_id.clone();
        self.members.push(member);
        // A new member is a membership change even if it subscribes to nothing yet.
        self.bump_epoch();
        Ok(self.members.len() - 1)
    }

    /// A known member id joining again. It keeps its place and state (Kafka since
    /// KAFKA-19233); its full answer tells it what it owns. A static member back after leaving
    /// with -2 starts again from epoch 0. A member id may not change its instance id.
    fn rejoin(&mut self, position: usize, request: &HeartbeatRequest) -> Result<usize, GroupError> {
        let Some(member) = self.members.get_mut(position) else {
            return Err(GroupError::UnknownMemberId);
        };
        if member.instance_id != request.instance_id {
            return Err(GroupError::InvalidRequest);
        }
        if member.is_away() {
            member.member_epoch = JOIN_EPOCH;
            member.previous_member_epoch = JOIN_EPOCH;
        }
        Ok(position)
    }

    /// A static member restarting under a new member id takes over its instance's place,
    /// assignment included, but only once the old incarnation has left with -2: until then
    /// the instance id is not released.
    fn take_over(
        &mut self,
        position: usize,
        request: &HeartbeatRequest,
    ) -> Result<usize, GroupError> {
        let Some(member) = self.members.get_mut(position) else {
            return Err(GroupError::UnknownMemberId);
        };
        if !member.is_away() {
            return Err(GroupError::UnreleasedInstanceId);
        }
        member.member_id = request.member_id.clone();
        member.member_epoch = JOIN_EPOCH;
        member.previous_member_epoch = JOIN_EPOCH;
        Ok(position)
    }

    /// A heartbeat with the member's epoch: the member must exist (a static one under this
    /// member id) and its epoch must be the stored one.
    fn known_member(&self, request: &HeartbeatRequest) -> Result<usize, GroupError> {
        let position = self.checked_position(request)?;
        let member = self.members.get(position).ok_or(GroupError::UnknownMemberId)?;
        check_epoch(member, request.member_epoch, request.owned_partitions.as_ref())?;
        Ok(position)
    }

    /// Finds the member a request names: by instance id for a static member (FENCED_INSTANCE_ID
    /// when the instance now has another member id), else by member id.
    fn checked_position(&self, request: &HeartbeatRequest) -> Result<usize, GroupError> {
        match &request.instance_id {
            Some(instance_id) => {
                let position =
                    self.position_by_instance(instance_id).ok_or(GroupError::UnknownMemberId)?;
                let member = self.members.get(position).ok_or(GroupError::UnknownMemberId)?;
                if member.member_id != request.member_id {
                    return Err(GroupError::FencedInstanceId);
                }
                Ok(position)
            }
            None => self.position(&request.member_id).ok_or(GroupError::UnknownMemberId),
        }
    }

    /// Epoch -1: the member leaves and the others share its partitions. Epoch -2: a static
    /// member leaves for a while; it keeps its place and assignment (no new group epoch) until
    /// it comes back under a new member id or its session, counted from now, expires.
    fn leave(
        &mut self,
        request: &HeartbeatRequest,
        now_ms: i64,
    ) -> Result<HeartbeatAnswer, GroupError> {
        let position = self.checked_position(request)?;
        let answer = HeartbeatAnswer {
            member_id: request.member_id.clone(),
            member_epoch: request.member_epoch,
            ..HeartbeatAnswer::default()
        };
        if request.member_epoch == LEAVE_EPOCH {
            self.remove_member(position);
            return Ok(answer);
        }
        let Some(member) = self.members.get_mut(position) else {
            return Err(GroupError::UnknownMemberId);
        };
        member.member_epoch = LEAVE_STATIC_EPOCH;
        // It stopped consuming: what it was giving up is free for the others.
        member.pending_revocation = Assignment::default();
        member.revocation_deadline_ms = None;
        member.state = MemberState::Stable;
        member.last_heartbeat_ms = now_ms;
        Ok(answer)
    }
}

/// The request checks Kafka makes before looking at the group.
fn validate(request: &HeartbeatRequest, config: &ConsumerConfig) -> Result<(), GroupError> {
    let empty = |field: &Option<String>| field.as_deref().is_some_and(str::is_empty);
    if request.member_id.is_empty() || empty(&request.instance_id) || empty(&request.rack_id) {
        return Err(GroupError::InvalidRequest);
    }
    match request.member_epoch {
        JOIN_EPOCH => {
            let subscribes = request.subscribed_topic_names.is_some()
                || request.subscribed_topic_regex.as_deref().is_some_and(|regex| !regex.is_empty());
            let owns_nothing = request.owned_partitions.as_ref().is_some_and(Assignment::is_empty);
            if request.rebalance_timeout_ms.is_none() || !subscribes || !owns_nothing {
                return Err(GroupError::InvalidRequest);
            }
        }
        LEAVE_STATIC_EPOCH if request.instance_id.is_none() => {
            return Err(GroupError::InvalidRequest);
        }
        epoch if epoch > 0 || epoch == LEAVE_EPOCH || epoch == LEAVE_STATIC_EPOCH => {}
        _ => return Err(GroupError::InvalidRequest),
    }
    if let Some(name) = &request.server_assignor {
        if !config.assignors.iter().any(|assignor| assignor.as_str() == name) {
            return Err(GroupError::UnsupportedAssignor);
        }
    }
    match request.subscribed_topic_regex.as_deref() {
        Some(pattern) if !pattern.is_empty() => check_regex(pattern),
        _ => Ok(()),
    }
}

/// Kafka's epoch check: FENCED_MEMBER_EPOCH for any epoch but the stored one, except the
/// previous epoch from a member that owns only partitions it still has (the answer that moved
/// it on was lost).
fn check_epoch(
    member: &ConsumerMember,
    epoch: i32,
    owned: Option<&Assignment>,
) -> Result<(), GroupError> {
    if epoch == member.member_epoch {
        return Ok(());
    }
    let lost_answer = epoch < member.member_epoch
        && epoch == member.previous_member_epoch
        && owned.is_some_and(|owned| owned.is_subset(&member.assigned));
    if lost_answer {
        Ok(())
    } else {
        Err(GroupError::FencedMemberEpoch)
    }
}

/// Records what the request says about the member; returns whether its subscription changed.
fn update_member(
    member: &mut ConsumerMember,
    request: &HeartbeatRequest,
    config: &ConsumerConfig,
    now_ms: i64,
) -> bool {
    let before = (member.subscribed_topic_names.clone(), member.subscribed_topic_regex.clone());
    if let Some(rack_id) = &request.rack_id {
        member.rack_id = Some(rack_id.clone());
    }
    if let Some(timeout) = request.rebalance_timeout_ms {
        member.rebalance_timeout_ms = timeout;
    }
    if let Some(assignor) = &request.server_assignor {
        member.server_assignor = Some(assignor.clone());
    }
    if let Some(names) = &request.subscribed_topic_names {
        let mut names = names.clone();
        names.sort();
        names.dedup();
        member.subscribed_topic_names = names;
    }
    if let Some(regex) = &request.subscribed_topic_regex {
        member.subscribed_topic_regex = Some(regex.clone()).filter(|regex| !regex.is_empty());
    }
    member.client_id = request.client_id.clone();
    member.client_host = request.client_host.clone();
    // A member heartbeating with this protocol speaks it, whatever it joined with.
    member.classic = None;
    member.session_timeout_ms = config.session_timeout_ms;
    member.last_heartbeat_ms = now_ms;
    (member.subscribed_topic_names.clone(), member.subscribed_topic_regex.clone()) != before
}

/// A full request resends everything (joining, or after an error); it gets the whole
/// assignment back whether it changed or not.
fn is_full(request: &HeartbeatRequest) -> bool {
    request.member_epoch == JOIN_EPOCH
        || (request.rebalance_timeout_ms.is_some()
            && (request.subscribed_topic_names.is_some()
                || request.subscribed_topic_regex.is_some())
            && request.owned_partitions.is_some())
}
