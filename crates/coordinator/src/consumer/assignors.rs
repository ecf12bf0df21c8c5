//! The server-side assignors: `uniform` (balanced, sticky) and `range` (contiguous ranges per
//! topic). Both are deterministic: the same members and topics always give the same
//! assignment, whichever broker computes it.

use std::cmp::Reverse;
use std::collections::{BTreeMap, BTreeSet};

use super::group::{Assignment, AssignorName, TopicId, TopicMetadata};

/// A member as an assignor sees it.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct AssignorMember {
    pub member_id: String,
    pub instance_id: Option<String>,
    /// The topics (by name) it subscribes to, already resolved; unknown names are ignored.
    pub topics: BTreeSet<String>,
    /// Its share of the previous target assignment, which `uniform` keeps where it can.
    pub current: Assignment,
}

/// Runs the named assignor. Every member gets an entry, empty if it gets nothing.
pub fn assign(
    assignor: AssignorName,
    members: &[AssignorMember],
    topics: &BTreeMap<String, TopicMetadata>,
) -> BTreeMap<String, Assignment> {
    match assignor {
        AssignorName::Uniform => uniform(members, topics),
        AssignorName::Range => range(members, topics),
    }
}

/// Kafka's `range`: for each topic, its subscribers in order (instance id for static members,
/// so a restarted instance gets the same range, else member id) get contiguous ranges, the
/// first ones one partition more when the count does not divide.
pub fn range(
    members: &[AssignorMember],
    topics: &BTreeMap<String, TopicMetadata>,
) -> BTreeMap<String, Assignment> {
    let mut result: BTreeMap<String, Assignment> =
        members.iter().map(|member| (member.member_id.clone(), Assignment::default())).collect();
    for (name, metadata) in topics {
        let mut subscribers: Vec<&AssignorMember> =
            members.iter().filter(|member| member.topics.contains(name)).collect();
        if subscribers.is_empty() {
            continue;
        }
        subscribers.sort_by_key(|member| {
            (member.instance_id.as_deref().unwrap_or(&member.member_id), &member.member_id)
        });
        let count = i32::try_from(subscribers.len()).unwrap_or(i32::MAX);
        let partitions = metadata.partitions.max(0);
        let (each, extra) = (partitions / count, partitions % count);
        let mut next = 0;
        for (index, member) in (0..).zip(subscribers) {
            let share = each + i32::from(index < extra);
            let given = result.entry(member.member_id.clone()).or_default();
            for partition in next..next + share {
                given.insert(metadata.id, partition);
            }
            next += share;
        }
    }
    result
}

/// Kafka's `uniform`: every subscribed partition to one member, the members' counts as even
/// as their subscriptions allow, moving as few partitions as it can.
///
/// 1. Each member keeps the partitions of its current target it still subscribes to.
/// 2. The partitions no one kept go, one at a time, to the least loaded member subscribed to
///    their topic, the topics with the fewest subscribers first.
/// 3. While a member has at least two more partitions than a member that could take one of
///    them, one moves. With one subscription for all this ends with counts differing by at
///    most one; with different subscriptions it is balanced pairwise, not always optimally.
pub fn uniform(
    members: &[AssignorMember],
    topics: &BTreeMap<String, TopicMetadata>,
) -> BTreeMap<String, Assignment> {
    let mut order: Vec<&AssignorMember> = members.iter().collect();
    order.sort_by(|left, right| left.member_id.cmp(&right.member_id));
    let mut work = Uniform::new(&order, topics);
    work.keep_current(&order, topics);
    work.place_the_rest(topics);
    while work.move_one() {}
    order.iter().zip(work.given).map(|(member, given)| (member.member_id.clone(), given)).collect()
}

/// The uniform assignor's working state; members are indexes into the sorted member list.
struct Uniform<'a> {
    /// Per topic name, the members subscribed to it.
    subscribers: BTreeMap<&'a str, Vec<usize>>,
    names: BTreeMap<TopicId, &'a str>,
    given: Vec<Assignment>,
    counts: Vec<usize>,
    taken: Assignment,
}

impl<'a> Uniform<'a> {
    fn new(order: &[&AssignorMember], topics: &'a BTreeMap<String, TopicMetadata>) -> Self {
        let mut subscribers: BTreeMap<&str, Vec<usize>> = BTreeMap::new();
        for name in topics.keys() {
            let subscribed: Vec<usize> = order
                .iter()
                .enumerate()
                .filter(|(_, member)| member.topics.contains(name))
                .map(|(index, _)| index)
                .collect();
            if !subscribed.is_empty() {
                subscribers.insert(name.as_str(), subscribed);
            }
        }
        Self {
            subscribers,
            names: topics.iter().map(|(name, metadata)| (metadata.id, name.as_str())).collect(),
            given: vec![Assignment::default(); order.len()],
            counts: vec![0; order.len()],
            taken: Assignment::default(),
        }
    }

    fn give(&mut self, member: usize, topic: TopicId, partition: i32) {
        if let (Some(given), Some(count)) =
            (self.given.get_mut(member), self.counts.get_mut(member))
        {
            given.insert(topic, partition);
            *count += 1;
            self.taken.insert(topic, partition);
        }
    }

    /// Step 1: what each member had and may still have.
    fn keep_current(
        &mut self,
        order: &[&AssignorMember],
        topics: &BTreeMap<String, TopicMetadata>,
    ) {
        for (index, member) in order.iter().enumerate() {
            for (topic, partition) in member.current.pairs() {
                let Some(name) = self.names.get(&topic).copied() else { continue };
                let exists = topics
                    .get(name)
                    .is_some_and(|metadata| (0..metadata.partitions).contains(&partition));
                if exists && member.topics.contains(name) && !self.taken.contains(topic, partition)
                {
                    self.give(index, topic, partition);
                }
            }
        }
    }

    /// Step 2: every partition no one kept.
    fn place_the_rest(&mut self, topics: &BTreeMap<String, TopicMetadata>) {
        let mut names: Vec<&str> = self.subscribers.keys().copied().collect();
        names.sort_by_key(|name| (self.subscribers.get(name).map_or(0, Vec::len), *name));
        for name in names {
            let Some(metadata) = topics.get(name) else { continue };
            for partition in 0..metadata.partitions {
                if self.taken.contains(metadata.id, partition) {
                    continue;
                }
                if let Some(member) = self.least_loaded(name) {
                    self.give(member, metadata.id, partition);
                }
            }
        }
    }

    /// The subscriber of `topic` with the fewest partitions (the first in order on a tie).
    fn least_loaded(&self, topic: &str) -> Option<usize> {
        let subscribers = self.subscribers.get(topic)?;
        subscribers.iter().copied().min_by_key(|member| (self.counts[*member], *member))
    }

    /// Step 3: moves one partition from a member with at least two more than a member that
    /// can take it; false when no such move is left. Each move lowers the sum of squared
    /// counts, so the loop ends.
    fn move_one(&mut self) -> bool {
        let mut donors: Vec<usize> = (0..self.counts.len()).collect();
        donors.sort_by_key(|member| (Reverse(self.counts[*member]), *member));
        for donor in donors {
            let donor_count = self.counts[donor];
            if donor_count < 2 {
                return false;
            }
            let pairs: Vec<(TopicId, i32)> = self.given[donor].pairs().collect();
            for (topic, partition) in pairs.into_iter().rev() {
                let Some(name) = self.names.get(&topic).copied() else { continue };
                let Some(taker) = self.least_loaded(name) else { continue };
                if self.counts[taker] + 1 < donor_count {
                    self.given[donor].remove(topic, partition);
                    self.counts[donor] -= 1;
                    self.give(taker, topic, partition);
                    return true;
                }
            }
        }
        false
    }
}
