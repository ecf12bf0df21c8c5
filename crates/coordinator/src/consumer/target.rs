//! Computing the group's target assignment for a new group epoch.

use super::assignors::{assign, AssignorMember};
use super::group::{AssignorName, ConsumerConfig, ConsumerGroup};
use super::subscription::Resolver;

impl ConsumerGroup {
    /// The assignor for the group, by Kafka's rule: the one most members name (among those
    /// the broker has; a tie goes to the earlier in the configured list), else the configured
    /// default, the first of the list.
    pub fn chosen_assignor(&self, config: &ConsumerConfig) -> AssignorName {
        let mut best: Option<(AssignorName, usize)> = None;
        for candidate in &config.assignors {
            let votes = self
                .members
                .iter()
                .filter(|member| member.server_assignor.as_deref() == Some(candidate.as_str()))
                .count();
            if votes > 0 && best.is_none_or(|(_, most)| votes > most) {
                best = Some((*candidate, votes));
            }
        }
        best.map(|(name, _)| name)
            .or_else(|| config.assignors.first().copied())
            .unwrap_or(AssignorName::Uniform)
    }

    /// Gives every member its target for the current group epoch, computed from the
    /// subscribed topics the group has just recorded. Static members that are away keep their
    /// place: their partitions wait for them until their session expires.
    pub(crate) fn compute_targets(&mut self, resolver: &mut Resolver<'_>, config: &ConsumerConfig) {
        let members: Vec<AssignorMember> = self
            .members
            .iter()
            .map(|member| AssignorMember {
                member_id: member.member_id.clone(),
                instance_id: member.instance_id.clone(),
                topics: resolver.topics_of(member),
                current: member.target.clone(),
            })
            .collect();
        let mut targets = assign(self.chosen_assignor(config), &members, &self.subscribed_topics);
        for member in &mut self.members {
            member.target = targets.remove(&member.member_id).unwrap_or_default();
        }
        self.assignment_epoch = self.group_epoch;
    }
}
