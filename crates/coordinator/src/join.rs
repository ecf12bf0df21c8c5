//! JoinGroup: new members (KIP-394 member ids), static members (KIP-345) and rejoins, and what
//! a JoinGroup waiting for its rebalance sees each time it re-reads the group.

use crate::group::{Group, GroupState, Limits, Member, PendingMember, Protocol};
use crate::GroupError;

/// A JoinGroup request in the group's terms.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct JoinRequest {
    /// Empty for a member joining for the first time.
    pub member_id: String,
    pub instance_id: Option<String>,
    pub client_id: String,
    pub client_host: String,
    pub session_timeout_ms: i32,
    pub rebalance_timeout_ms: i32,
    pub protocol_type: String,
    pub protocols: Vec<Protocol>,
    /// JoinGroup v4+: a new dynamic member first gets MEMBER_ID_REQUIRED and an id (KIP-394).
    pub require_known_member_id: bool,
    /// JoinGroup v9+: a static leader rejoining without a rebalance is told to skip the
    /// assignment (KIP-814).
    pub supports_skip_assignment: bool,
}

/// A member as the leader sees it in its JoinGroup answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AnswerMember {
    pub member_id: String,
    pub instance_id: Option<String>,
    pub metadata: Vec<u8>,
}

/// A JoinGroup answer. `error` set means only `member_id` is meaningful (KIP-394 sends the
/// generated id with MEMBER_ID_REQUIRED).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct JoinAnswer {
    pub error: Option<GroupError>,
    pub member_id: String,
    pub generation: i32,
    pub protocol_type: Option<String>,
    pub protocol: Option<String>,
    pub leader: String,
    pub skip_assignment: bool,
    /// Every member with its metadata for the chosen protocol, for the leader only.
    pub members: Vec<AnswerMember>,
}

impl JoinAnswer {
    pub fn error(error: GroupError, member_id: &str) -> Self {
        Self {
            error: Some(error),
            member_id: member_id.to_owned(),
            generation: -1,
            ..Self::default()
        }
    }
}

/// What the JoinGroup handler does next.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum JoinOutcome {
    /// Answer at once.
    Answer(JoinAnswer),
    /// The member joined a rebalance: re-read the group (see [`Group::poll_join`]) until the
    /// generation passes `generation`.
    Wait { member_id: String, generation: i32 },
}

/// What a waiting JoinGroup learns from the group as it is now.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum JoinPoll {
    Ready(JoinAnswer),
    /// Still waiting; `generation` is the one to wait past (it moves when the member was
    /// carried into a newer rebalance).
    Waiting {
        generation: i32,
    },
    Failed(GroupError),
}

impl Group {
    /// Applies a JoinGroup. `fresh_member_id` is the id a new member gets (the caller makes
    /// it unique: client id or instance id plus a random suffix, as Kafka does).
    pub fn join(
        &mut self,
        request: JoinRequest,
        fresh_member_id: String,
        now_ms: i64,
        limits: &Limits,
    ) -> JoinOutcome {
        let refuse = |error| JoinOutcome::Answer(JoinAnswer::error(error, &request.member_id));
        if request.session_timeout_ms < limits.min_session_timeout_ms
            || request.session_timeout_ms > limits.max_session_timeout_ms
        {
            return refuse(GroupError::InvalidSessionTimeout);
        }
        if self.state == GroupState::Dead {
            return refuse(GroupError::CoordinatorNotAvailable);
        }
        if !self.accepts_protocols(&request.protocol_type, &request.protocols) {
            return refuse(GroupError::InconsistentGroupProtocol);
        }
        if request.member_id.is_empty() {
            return self.join_new(request, fresh_member_id, now_ms, limits);
        }
        if self.fenced(&request.member_id, request.instance_id.as_deref()) {
            return refuse(GroupError::FencedInstanceId);
        }
        if let Some(position) =
            self.pending.iter().position(|pending| pending.member_id == request.member_id)
        {
            self.pending.remove(position);
            let member_id = request.member_id.clone();
            return self.add_member(request, member_id, now_ms, limits);
        }
        let Some(member) = self.member(&request.member_id) else {
            return refuse(GroupError::UnknownMemberId);
        };
        let unchanged = member.protocols == request.protocols;
        match self.state {
            GroupState::Empty | GroupState::Dead => refuse(GroupError::UnknownMemberId),
            GroupState::CompletingRebalance if unchanged => {
                self.touch(&request.member_id, now_ms);
                JoinOutcome::Answer(self.current_answer(&request.member_id, false))
            }
            GroupState::Stable if unchanged && !self.is_leader(&request.member_id) => {
                self.touch(&request.member_id, now_ms);
                JoinOutcome::Answer(self.current_answer(&request.member_id, false))
            }
            _ => self.rejoin(request, now_ms),
        }
    }

    /// A join without a member id: a static member replacing its older incarnation, a new
    /// static member, or a new dynamic member (who first gets MEMBER_ID_REQUIRED on v4+).
    fn join_new(
        &mut self,
        request: JoinRequest,
        fresh_member_id: String,
        now_ms: i64,
        limits: &Limits,
    ) -> JoinOutcome {
        if let Some(instance_id) = request.instance_id.clone() {
            if self.member_by_instance(&instance_id).is_some() {
                return self.replace_static(request, &instance_id, fresh_member_id, now_ms);
            }
            return self.add_member(request, fresh_member_id, now_ms, limits);
        }
        if request.require_known_member_id {
            let expires_ms = now_ms.saturating_add(i64::from(request.session_timeout_ms));
            self.pending.push(PendingMember { member_id: fresh_member_id.clone(), expires_ms });
            return JoinOutcome::Answer(JoinAnswer::error(
                GroupError::MemberIdRequired,
                &fresh_member_id,
            ));
        }
        self.add_member(request, fresh_member_id, now_ms, limits)
    }

    fn add_member(
        &mut self,
        request: JoinRequest,
        member_id: String,
        now_ms: i64,
        limits: &Limits,
    ) -> JoinOutcome {
        if self.members.is_empty() {
            self.protocol_type = Some(request.protocol_type.clone());
        }
        self.members.push(Member {
            member_id: member_id.clone(),
            instance_id: request.instance_id,
            client_id: request.client_id,
            client_host: request.client_host,
            session_timeout_ms: request.session_timeout_ms,
            rebalance_timeout_ms: request.rebalance_timeout_ms,
            protocol_type: request.protocol_type,
            protocols: request.protocols,
            assignment: None,
            last_seen_ms: now_ms,
            joined: false,
        });
        let was_preparing = matches!(self.state, GroupState::PreparingRebalance { .. });
        self.prepare_rebalance_with(now_ms, Some(limits));
        if was_preparing {
            self.extend_initial_delay(now_ms, limits);
        }
        self.mark_joined(&member_id, now_ms)
    }

    /// A known member joining again, with possibly new protocols: it takes part in the next
    /// generation.
    fn rejoin(&mut self, request: JoinRequest, now_ms: i64) -> JoinOutcome {
        let member_id = request.member_id.clone();
        if let Some(member) = self.member_mut(&member_id) {
            member.client_id = request.client_id;
            member.client_host = request.client_host;
            member.session_timeout_ms = request.session_timeout_ms;
            member.rebalance_timeout_ms = request.rebalance_timeout_ms;
            member.protocols = request.protocols;
        }
        self.prepare_rebalance(now_ms);
        self.mark_joined(&member_id, now_ms)
    }

    fn mark_joined(&mut self, member_id: &str, now_ms: i64) -> JoinOutcome {
        let generation = self.generation;
        if let Some(member) = self.member_mut(member_id) {
            member.joined = true;
            member.last_seen_ms = now_ms;
        }
        self.try_complete(now_ms);
        JoinOutcome::Wait { member_id: member_id.to_owned(), generation }
    }

    /// KIP-345: a static member restarting takes over its old member id's place. In a stable
    /// group where its (possibly new) protocols do not change the protocol the group would
    /// select, nothing else changes: no rebalance, it keeps its assignment. That is Kafka's
    /// rule; comparing metadata bytes would rebalance every cooperative member, whose metadata
    /// carries the partitions it owns. Otherwise the group rebalances. The old member id is
    /// fenced from now on.
    fn replace_static(
        &mut self,
        request: JoinRequest,
        instance_id: &str,
        fresh_member_id: String,
        now_ms: i64,
    ) -> JoinOutcome {
        let Some(old) = self.member_by_instance(instance_id).cloned() else {
            return JoinOutcome::Answer(JoinAnswer::error(GroupError::UnknownMemberId, ""));
        };
        let was_leader = self.is_leader(&old.member_id);
        if let Some(member) = self.member_mut(&old.member_id) {
            member.member_id = fresh_member_id.clone();
            member.client_id = request.client_id.clone();
            member.client_host = request.client_host.clone();
            member.session_timeout_ms = request.session_timeout_ms;
            member.rebalance_timeout_ms = request.rebalance_timeout_ms;
            member.protocols = request.protocols.clone();
            member.last_seen_ms = now_ms;
        }
        if was_leader {
            self.leader = Some(fresh_member_id.clone());
        }
        let same_protocol = self.select_protocol() == self.protocol;
        match self.state {
            GroupState::Stable if same_protocol => {
                let skip = was_leader && request.supports_skip_assignment;
                let mut answer = self.current_answer(&fresh_member_id, skip);
                if was_leader && !skip {
                    // Before KIP-814 a client cannot be told to skip the assignment, and one
                    // that believes it leads runs its assignor over an empty member list (the
                    // librdkafka sticky assignor crashes on that). Kafka answered the old
                    // leader id: the restarted leader acts as a follower of a stable group.
                    answer.leader = old.member_id.clone();
                }
                JoinOutcome::Answer(answer)
            }
            _ => {
                let rejoin = JoinRequest { member_id: fresh_member_id, ..request };
                self.rejoin(rejoin, now_ms)
            }
        }
    }

    fn touch(&mut self, member_id: &str, now_ms: i64) {
        if let Some(member) = self.member_mut(member_id) {
            member.last_seen_ms = now_ms;
        }
    }

    /// The answer describing the current generation to `member_id`; the leader also gets the
    /// member list unless told to skip the assignment (then it gets the list too, per KIP-814,
    /// so it can still run the assignor's bookkeeping).
    pub(crate) fn current_answer(&self, member_id: &str, skip_assignment: bool) -> JoinAnswer {
        let leader = self.leader.clone().unwrap_or_default();
        let is_leader = leader == member_id;
        let members = if is_leader && (skip_assignment || self.state != GroupState::Stable) {
            self.answer_members()
        } else {
            Vec::new()
        };
        JoinAnswer {
            error: None,
            member_id: member_id.to_owned(),
            generation: self.generation,
            protocol_type: self.protocol_type.clone(),
            protocol: self.protocol.clone(),
            leader,
            skip_assignment,
            members,
        }
    }

    fn answer_members(&self) -> Vec<AnswerMember> {
        self.members
            .iter()
            .map(|member| AnswerMember {
                member_id: member.member_id.clone(),
                instance_id: member.instance_id.clone(),
                metadata: member.metadata_for(self.protocol.as_deref()).to_vec(),
            })
            .collect()
    }

    /// What a JoinGroup that joined while the group was at `generation` sees now. Once the
    /// rebalance completed, it gets the new generation. If it completed and another rebalance
    /// already began before this waiter looked, the member is carried into that one, exactly
    /// as if it had got its answer and joined again at once.
    pub fn poll_join(&mut self, member_id: &str, generation: i32, now_ms: i64) -> JoinPoll {
        let Some(member) = self.member(member_id) else {
            return JoinPoll::Failed(GroupError::UnknownMemberId);
        };
        let joined = member.joined;
        match self.state {
            GroupState::CompletingRebalance | GroupState::Stable
                if self.generation != generation =>
            {
                JoinPoll::Ready(self.current_answer(member_id, false))
            }
            GroupState::PreparingRebalance { .. } if !joined => {
                let generation = self.generation;
                if let Some(member) = self.member_mut(member_id) {
                    member.joined = true;
                    member.last_seen_ms = now_ms;
                }
                self.try_complete(now_ms);
                match self.state {
                    GroupState::PreparingRebalance { .. } => JoinPoll::Waiting { generation },
                    _ => JoinPoll::Ready(self.current_answer(member_id, false)),
                }
            }
            GroupState::PreparingRebalance { .. } => JoinPoll::Waiting { generation },
            // The generation this member waited for is still the current one: a rebalance
            // it joined cannot end in the same generation, so it was removed and re-added.
            GroupState::CompletingRebalance | GroupState::Stable => {
                JoinPoll::Failed(GroupError::RebalanceInProgress)
            }
            GroupState::Empty | GroupState::Dead => JoinPoll::Failed(GroupError::UnknownMemberId),
        }
    }
}
