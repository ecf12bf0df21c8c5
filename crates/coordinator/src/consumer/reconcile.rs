//! Moving one member toward its target assignment (KIP-848's reconciliation).
//!
//! The rule that keeps a partition from being consumed twice: a member first gives up what it
//! must (it keeps its epoch while those partitions are pending revocation), and it is handed a
//! partition only once no other member still owns it (assigned or pending revocation). A
//! member reports what it owns in its heartbeats; that report is what acknowledges a
//! revocation.

use std::collections::BTreeMap;

use super::group::{
    Assignment, ConsumerConfig, ConsumerGroup, ConsumerMember, MemberState, TopicMetadata,
};
use super::subscription::Resolver;

impl ConsumerGroup {
    /// What every heartbeat (and a classic member's JoinGroup) does once it has recorded the
    /// member at `position`: start a new group epoch if the subscriptions (`subscription_changed`)
    /// or the subscribed topics changed, compute the target assignment if the group epoch is
    /// ahead of it, and move the member one step toward its target. `reported` is what the
    /// member says it owns. Returns the member.
    pub(crate) fn advance(
        &mut self,
        position: usize,
        subscription_changed: bool,
        reported: Option<&Assignment>,
        topics: &BTreeMap<String, TopicMetadata>,
        config: &ConsumerConfig,
        now_ms: i64,
    ) -> Option<&mut ConsumerMember> {
        let mut resolver = Resolver::new(topics);
        let subscribed = resolver.group_topics(&self.members);
        if subscription_changed || subscribed != self.subscribed_topics {
            self.subscribed_topics = subscribed;
            self.bump_epoch();
        }
        if self.group_epoch > self.assignment_epoch {
            self.compute_targets(&mut resolver, config);
        }
        let member_id = &self.members.get(position)?.member_id;
        let owned_by_others = self.owned_by_others(member_id);
        let progress = Progress {
            target_epoch: self.assignment_epoch,
            owned_by_others: &owned_by_others,
            reported,
            now_ms,
        };
        let member = self.members.get_mut(position)?;
        reconcile(member, &progress);
        Some(member)
    }
}

/// What a member's heartbeat tells the reconciliation.
struct Progress<'a> {
    /// The epoch the members' targets were computed for.
    pub(crate) target_epoch: i32,
    /// Partitions owned by the other members.
    pub(crate) owned_by_others: &'a Assignment,
    /// The partitions the member says it owns; `None` when the heartbeat did not say, which
    /// acknowledges nothing.
    pub(crate) reported: Option<&'a Assignment>,
    pub(crate) now_ms: i64,
}

/// Takes the next step from where the member is; does nothing when no step is possible yet.
fn reconcile(member: &mut ConsumerMember, progress: &Progress<'_>) {
    match member.state {
        MemberState::Stable if member.member_epoch == progress.target_epoch => {}
        MemberState::Stable | MemberState::UnreleasedPartitions => {
            let epoch = member.member_epoch;
            next_step(member, epoch, progress);
        }
        MemberState::UnrevokedPartitions => {
            if still_owns(&member.pending_revocation, progress.reported) {
                return;
            }
            // Revoked: it may move on. Should the target have moved again and ask for another
            // revocation, it does so one epoch further, so the member sees a new epoch for it.
            let epoch = member.member_epoch.saturating_add(1).min(progress.target_epoch);
            next_step(member, epoch, progress);
        }
    }
}

/// Compares what the member has with its target: partitions to give up first (staying at
/// `epoch_while_revoking`), otherwise the move to the target epoch with every target partition
/// no one else owns.
fn next_step(member: &mut ConsumerMember, epoch_while_revoking: i32, progress: &Progress<'_>) {
    let mut kept = Assignment::default();
    let mut revoke = Assignment::default();
    for (topic, partition) in member.assigned.pairs() {
        if member.target.contains(topic, partition) {
            kept.insert(topic, partition);
        } else {
            revoke.insert(topic, partition);
        }
    }
    if !revoke.is_empty() && still_owns(&revoke, progress.reported) {
        set_epoch(member, epoch_while_revoking);
        member.state = MemberState::UnrevokedPartitions;
        member.assigned = kept;
        member.pending_revocation = revoke;
        let timeout = i64::from(member.rebalance_timeout_ms.max(0));
        member.revocation_deadline_ms = Some(progress.now_ms.saturating_add(timeout));
        return;
    }
    let mut assigned = kept;
    let mut unreleased = false;
    for (topic, partition) in member.target.pairs() {
        if assigned.contains(topic, partition) {
            continue;
        }
        if progress.owned_by_others.contains(topic, partition) {
            unreleased = true;
        } else {
            assigned.insert(topic, partition);
        }
    }
    set_epoch(member, progress.target_epoch);
    member.state = if unreleased { MemberState::UnreleasedPartitions } else { MemberState::Stable };
    member.assigned = assigned;
    member.pending_revocation = Assignment::default();
    member.revocation_deadline_ms = None;
}

/// Whether the member may still hold any of `revoking`. A heartbeat that does not list what it
/// owns acknowledges nothing.
fn still_owns(revoking: &Assignment, reported: Option<&Assignment>) -> bool {
    reported.is_none_or(|owned| revoking.intersects(owned))
}

/// Kafka keeps the epoch before the last update, which a member whose answer was lost may
/// still send (see the epoch check in `heartbeat`).
fn set_epoch(member: &mut ConsumerMember, epoch: i32) {
    member.previous_member_epoch = member.member_epoch;
    member.member_epoch = epoch;
}
