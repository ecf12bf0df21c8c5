//! SyncGroup, Heartbeat, LeaveGroup, and the member checks of OffsetCommit, in Kafka's order
//! of checks so clients get the error they expect.

use crate::group::{Group, GroupState};
use crate::GroupError;

/// A SyncGroup request in the group's terms.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct SyncRequest {
    pub member_id: String,
    pub instance_id: Option<String>,
    pub generation: i32,
    /// v5+: checked against the group's when present.
    pub protocol_type: Option<String>,
    pub protocol: Option<String>,
    /// The leader's assignment: (member id, assignment); ignored from followers.
    pub assignments: Vec<(String, Vec<u8>)>,
}

/// What the SyncGroup handler does next.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SyncOutcome {
    /// This member's assignment.
    Assigned(Vec<u8>),
    /// A follower before the leader's assignment: re-read with [`Group::poll_sync`].
    Wait,
    Failed(GroupError),
}

/// What a waiting SyncGroup learns from the group as it is now.
pub type SyncPoll = SyncOutcome;

/// One member leaving (LeaveGroup v3+ names several, by member id or instance id).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LeaveMember {
    pub member_id: String,
    pub instance_id: Option<String>,
}

impl Group {
    /// The checks every member request starts with.
    fn check_member(
        &self,
        member_id: &str,
        instance_id: Option<&str>,
        generation: i32,
    ) -> Result<(), GroupError> {
        self.checks(member_id, instance_id, generation, true)
    }

    /// Applies a SyncGroup: the leader's call stores every member's assignment (members it
    /// left out get an empty one) and makes the group Stable.
    pub fn sync(&mut self, request: SyncRequest, now_ms: i64) -> SyncOutcome {
        if let Err(error) = self.check_member(
            &request.member_id,
            request.instance_id.as_deref(),
            request.generation,
        ) {
            return SyncOutcome::Failed(error);
        }
        let type_differs = request
            .protocol_type
            .as_ref()
            .is_some_and(|wanted| self.protocol_type.as_ref() != Some(wanted));
        let name_differs =
            request.protocol.as_ref().is_some_and(|wanted| self.protocol.as_ref() != Some(wanted));
        if type_differs || name_differs {
            return SyncOutcome::Failed(GroupError::InconsistentGroupProtocol);
        }
        if let Some(member) = self.member_mut(&request.member_id) {
            member.last_seen_ms = now_ms;
        }
        match self.state {
            GroupState::CompletingRebalance if self.is_leader(&request.member_id) => {
                for member in &mut self.members {
                    let given = request
                        .assignments
                        .iter()
                        .find(|(member_id, _)| *member_id == member.member_id)
                        .map(|(_, assignment)| assignment.clone());
                    member.assignment = Some(given.unwrap_or_default());
                }
                self.state = GroupState::Stable;
                self.poll_sync(&request.member_id, request.generation)
            }
            _ => self.poll_sync(&request.member_id, request.generation),
        }
    }

    /// What a SyncGroup of `member_id` for `generation` gets from the group as it is now.
    pub fn poll_sync(&self, member_id: &str, generation: i32) -> SyncPoll {
        let Some(member) = self.member(member_id) else {
            return SyncOutcome::Failed(GroupError::UnknownMemberId);
        };
        if self.generation != generation {
            return SyncOutcome::Failed(GroupError::RebalanceInProgress);
        }
        match self.state {
            GroupState::Stable => {
                SyncOutcome::Assigned(member.assignment.clone().unwrap_or_default())
            }
            GroupState::CompletingRebalance => SyncOutcome::Wait,
            // The leader stored this generation's assignment and a new rebalance began since
            // (a cooperative leader rejoins at once for its second round). The member asked
            // while its generation was current, so it gets what the leader gave it; Kafka
            // answers a SyncGroup waiting at that moment the same way. It learns about the new
            // rebalance from its next heartbeat.
            GroupState::PreparingRebalance { .. } => match &member.assignment {
                Some(assignment) => SyncOutcome::Assigned(assignment.clone()),
                None => SyncOutcome::Failed(GroupError::RebalanceInProgress),
            },
            GroupState::Empty | GroupState::Dead => {
                SyncOutcome::Failed(GroupError::UnknownMemberId)
            }
        }
    }

    /// Applies a Heartbeat: keeps the session alive and tells the member whether to rejoin.
    pub fn heartbeat(
        &mut self,
        member_id: &str,
        instance_id: Option<&str>,
        generation: i32,
        now_ms: i64,
    ) -> Result<(), GroupError> {
        self.check_member(member_id, instance_id, generation)?;
        if let Some(member) = self.member_mut(member_id) {
            member.last_seen_ms = now_ms;
        }
        match self.state {
            GroupState::PreparingRebalance { .. } => Err(GroupError::RebalanceInProgress),
            GroupState::Empty | GroupState::Dead => Err(GroupError::UnknownMemberId),
            GroupState::CompletingRebalance | GroupState::Stable => Ok(()),
        }
    }

    /// Applies a LeaveGroup; one result per leaving member, in order. The others rebalance.
    pub fn leave(&mut self, leaving: &[LeaveMember], now_ms: i64) -> Vec<Result<(), GroupError>> {
        let mut results = Vec::with_capacity(leaving.len());
        let mut removed = false;
        for member in leaving {
            let result = self.leave_one(member);
            removed |= result.is_ok();
            results.push(result);
        }
        if removed {
            self.members_removed(now_ms);
            self.try_complete(now_ms);
        }
        results
    }

    fn leave_one(&mut self, leaving: &LeaveMember) -> Result<(), GroupError> {
        if self.state == GroupState::Dead {
            return Err(GroupError::CoordinatorNotAvailable);
        }
        let position = match &leaving.instance_id {
            Some(instance_id) => {
                let position = self
                    .members
                    .iter()
                    .position(|member| member.instance_id.as_deref() == Some(instance_id.as_str()))
                    .ok_or(GroupError::UnknownMemberId)?;
                // An empty member id means "whoever this instance is now" (admin removal).
                let current = &self.members[position].member_id;
                if !leaving.member_id.is_empty() && *current != leaving.member_id {
                    return Err(GroupError::FencedInstanceId);
                }
                position
            }
            None => self
                .members
                .iter()
                .position(|member| member.member_id == leaving.member_id)
                .ok_or(GroupError::UnknownMemberId)?,
        };
        self.members.remove(position);
        Ok(())
    }

    /// Whether an OffsetCommit with this generation and member may commit, in Kafka's order of
    /// checks. Generation -1 with no member is a "simple" consumer managing its own
    /// partitions, allowed only while no members are active. A member of the current
    /// generation may commit while a rebalance is in preparation (clients commit in their
    /// rebalance callbacks before giving partitions up); only between the join and the
    /// leader's assignment is it told REBALANCE_IN_PROGRESS, and an old generation gets
    /// ILLEGAL_GENERATION whatever the state.
    pub fn check_commit(
        &self,
        member_id: &str,
        instance_id: Option<&str>,
        generation: i32,
    ) -> Result<(), GroupError> {
        if self.state == GroupState::Dead {
            return Err(GroupError::CoordinatorNotAvailable);
        }
        if generation < 0 && self.members.is_empty() {
            return Ok(());
        }
        if generation < 0 && member_id.is_empty() && instance_id.is_none() {
            return Err(GroupError::UnknownMemberId);
        }
        self.check_member(member_id, instance_id, generation)?;
        if self.state == GroupState::CompletingRebalance {
            return Err(GroupError::RebalanceInProgress);
        }
        Ok(())
    }

    /// Whether a TxnOffsetCommit (v3+, KIP-447) may commit: laxer than OffsetCommit, as Kafka
    /// is: an empty member id skips the member check and generation -1 the generation check,
    /// but a fenced static instance, an unknown member or an old generation are refused, so a
    /// zombie producer that lost its partitions cannot commit their offsets.
    pub fn check_txn_commit(
        &self,
        member_id: &str,
        instance_id: Option<&str>,
        generation: i32,
    ) -> Result<(), GroupError> {
        self.checks(member_id, instance_id, generation, false)
    }

    /// Kafka's order of member checks. `strict` requires a known member and the current
    /// generation; otherwise an empty member id or generation -1 skips that check.
    fn checks(
        &self,
        member_id: &str,
        instance_id: Option<&str>,
        generation: i32,
        strict: bool,
    ) -> Result<(), GroupError> {
        if self.state == GroupState::Dead {
            return Err(GroupError::CoordinatorNotAvailable);
        }
        if self.fenced(member_id, instance_id) {
            return Err(GroupError::FencedInstanceId);
        }
        if (strict || !member_id.is_empty()) && self.member(member_id).is_none() {
            return Err(GroupError::UnknownMemberId);
        }
        if (strict || generation >= 0) && generation != self.generation {
            return Err(GroupError::IllegalGeneration);
        }
        Ok(())
    }
}
