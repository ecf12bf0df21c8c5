//! The consumer protocol driven by simulated clients, step by step (unit tests) and by random
//! sequences of joins, leaves, crashes, heartbeats and topic changes (proptest).

use std::collections::{BTreeMap, BTreeSet};

use proptest::prelude::*;

use super::*;
use crate::GroupError;

const REBALANCE_TIMEOUT_MS: i32 = 30_000;

fn config() -> ConsumerConfig {
    ConsumerConfig::default()
}

fn id(name: &str) -> TopicId {
    let mut bytes = [0; 16];
    for (slot, byte) in bytes.iter_mut().zip(name.bytes()) {
        *slot = byte;
    }
    TopicId(bytes)
}

fn topics(list: &[(&str, i32)]) -> BTreeMap<String, TopicMetadata> {
    list.iter()
        .map(|(name, partitions)| {
            ((*name).to_owned(), TopicMetadata { id: id(name), partitions: *partitions })
        })
        .collect()
}

fn partitions(topic: &str, list: &[i32]) -> Assignment {
    Assignment::from_pairs(list.iter().map(|partition| (id(topic), *partition)))
}

/// A consumer as the tests drive it: it owns what its last answer with an assignment gave it,
/// and gives up revoked partitions at once.
#[derive(Debug, Clone)]
struct Client {
    member_id: String,
    instance_id: Option<String>,
    names: Vec<String>,
    regex: Option<String>,
    assignor: Option<String>,
    epoch: i32,
    owned: Assignment,
}

impl Client {
    fn new(member_id: &str, names: &[&str]) -> Self {
        Self {
            member_id: member_id.to_owned(),
            instance_id: None,
            names: names.iter().map(|name| (*name).to_owned()).collect(),
            regex: None,
            assignor: None,
            epoch: JOIN_EPOCH,
            owned: Assignment::default(),
        }
    }

    fn static_member(member_id: &str, instance_id: &str, names: &[&str]) -> Self {
        Self { instance_id: Some(instance_id.to_owned()), ..Self::new(member_id, names) }
    }

    /// A join sends everything; later heartbeats only the epoch and what it owns, as the Java
    /// client does when nothing changed.
    fn request(&self) -> HeartbeatRequest {
        let joining = self.epoch == JOIN_EPOCH;
        HeartbeatRequest {
            member_id: self.member_id.clone(),
            member_epoch: self.epoch,
            instance_id: self.instance_id.clone(),
            rebalance_timeout_ms: joining.then_some(REBALANCE_TIMEOUT_MS),
            client_id: "client".into(),
            client_host: "/127.0.0.1".into(),
            subscribed_topic_names: joining.then(|| self.names.clone()),
            subscribed_topic_regex: if joining { self.regex.clone() } else { None },
            server_assignor: if joining { self.assignor.clone() } else { None },
            owned_partitions: Some(self.owned.clone()),
            ..HeartbeatRequest::default()
        }
    }

    fn heartbeat(
        &mut self,
        group: &mut ConsumerGroup,
        topics: &BTreeMap<String, TopicMetadata>,
        now_ms: i64,
    ) -> Result<HeartbeatAnswer, GroupError> {
        let answer = group.heartbeat(self.request(), topics, &config(), now_ms)?;
        self.epoch = answer.member_epoch;
        if let Some(assignment) = &answer.assignment {
            self.owned = assignment.clone();
        }
        Ok(answer)
    }

    fn beat(
        &mut self,
        group: &mut ConsumerGroup,
        topics: &BTreeMap<String, TopicMetadata>,
        now_ms: i64,
    ) -> HeartbeatAnswer {
        self.heartbeat(group, topics, now_ms).expect("heartbeat accepted")
    }

    fn leave(&mut self, group: &mut ConsumerGroup, epoch: i32, now_ms: i64) {
        let request = HeartbeatRequest { member_epoch: epoch, ..self.request() };
        let answer = group.heartbeat(request, &BTreeMap::new(), &config(), now_ms);
        assert_eq!(answer.expect("leave accepted").member_epoch, epoch);
        self.epoch = JOIN_EPOCH;
        self.owned = Assignment::default();
    }
}

/// No partition is owned by two members, neither in the group (assigned or pending
/// revocation) nor as the clients see it.
fn assert_exclusive(group: &ConsumerGroup, clients: &[&Client]) {
    let mut seen = Assignment::default();
    for member in &group.members {
        for (topic, partition) in member.assigned.pairs().chain(member.pending_revocation.pairs()) {
            assert!(!seen.contains(topic, partition), "{partition} of {topic} owned twice");
            seen.insert(topic, partition);
        }
    }
    let mut seen = Assignment::default();
    for client in clients {
        for (topic, partition) in client.owned.pairs() {
            assert!(!seen.contains(topic, partition), "{partition} of {topic} consumed twice");
            seen.insert(topic, partition);
        }
    }
}

/// Heartbeats every client in turn, checking exclusivity after each one, until a whole round
/// changes nothing. Returns how many rounds it took.
fn settle(
    group: &mut ConsumerGroup,
    clients: &mut [Client],
    topics: &BTreeMap<String, TopicMetadata>,
    now_ms: i64,
) -> usize {
    for round in 1..=20 {
        let before = group.clone();
        for index in 0..clients.len() {
            clients[index].beat(group, topics, now_ms);
            assert_exclusive(group, &clients.iter().collect::<Vec<_>>());
        }
        if *group == before {
            return round;
        }
    }
    panic!("the group did not settle: {group:#?}");
}

fn all_partitions(topics: &BTreeMap<String, TopicMetadata>) -> Assignment {
    Assignment::from_pairs(
        topics.values().flat_map(|topic| (0..topic.partitions).map(move |p| (topic.id, p))),
    )
}

fn assert_complete_and_balanced(
    group: &ConsumerGroup,
    clients: &[Client],
    topics: &BTreeMap<String, TopicMetadata>,
) {
    let mut union = Assignment::default();
    for client in clients {
        union = Assignment::from_pairs(union.pairs().chain(client.owned.pairs()));
    }
    assert_eq!(union, all_partitions(topics), "every partition is consumed");
    let counts: Vec<usize> = clients.iter().map(|client| client.owned.len()).collect();
    let (least, most) = (counts.iter().min(), counts.iter().max());
    assert!(most.zip(least).is_some_and(|(most, least)| most - least <= 1), "{counts:?}");
    for member in &group.members {
        assert_eq!(member.state, MemberState::Stable);
        assert_eq!(member.member_epoch, group.group_epoch);
        assert_eq!(member.assigned, member.target);
    }
    assert_eq!(group.assignment_epoch, group.group_epoch);
}

#[test]
fn a_first_member_gets_every_partition_at_once() {
    let topics = topics(&[("orders", 3)]);
    let mut group = ConsumerGroup::default();
    let mut a = Client::new("a", &["orders"]);
    let answer = a.beat(&mut group, &topics, 0);
    assert_eq!(answer.member_id, "a");
    assert_eq!(answer.member_epoch, 1);
    assert_eq!(answer.heartbeat_interval_ms, 5000);
    assert_eq!(answer.assignment, Some(partitions("orders", &[0, 1, 2])));
    assert_eq!((group.group_epoch, group.assignment_epoch), (1, 1));
}

#[test]
fn three_members_share_six_partitions_evenly() {
    let topics = topics(&[("orders", 6)]);
    let mut group = ConsumerGroup::default();
    let mut clients: Vec<Client> =
        ["a", "b", "c"].iter().map(|name| Client::new(name, &["orders"])).collect();
    for client in &mut clients {
        client.beat(&mut group, &topics, 0);
    }
    settle(&mut group, &mut clients, &topics, 100);
    assert_complete_and_balanced(&group, &clients, &topics);
    assert!(clients.iter().all(|client| client.owned.len() == 2));
}

#[test]
fn a_joining_member_gets_partitions_only_after_they_are_revoked() {
    let topics = topics(&[("orders", 6)]);
    let mut group = ConsumerGroup::default();
    let mut a = Client::new("a", &["orders"]);
    a.beat(&mut group, &topics, 0);
    assert_eq!(a.owned.len(), 6);

    let mut b = Client::new("b", &["orders"]);
    let answer = b.beat(&mut group, &topics, 10);
    assert_eq!(group.group_epoch, 2);
    assert_eq!(answer.member_epoch, 2, "b moves to the new epoch");
    assert_eq!(answer.assignment, Some(Assignment::default()), "its partitions are still a's");
    assert_eq!(group.member("b").map(|m| m.state), Some(MemberState::UnreleasedPartitions));
    assert_eq!(answer.heartbeat_interval_ms, 500, "it asks again soon while it waits");
    assert_exclusive(&group, &[&a, &b]);

    // a is told to give up three partitions and keeps its epoch until it has.
    let answer = a.beat(&mut group, &topics, 20);
    assert_eq!(answer.member_epoch, 1);
    assert_eq!(answer.assignment.as_ref().map(Assignment::len), Some(3));
    let a_member = group.member("a").expect("a");
    assert_eq!(a_member.state, MemberState::UnrevokedPartitions);
    assert_eq!(a_member.pending_revocation.len(), 3);
    assert_exclusive(&group, &[&a, &b]);

    // b asks again before a acknowledged: still nothing.
    let answer = b.beat(&mut group, &topics, 30);
    assert_eq!(answer.assignment, None, "nothing changed, nothing sent");
    assert!(b.owned.is_empty());
    assert_exclusive(&group, &[&a, &b]);

    // a no longer lists them: it moves to epoch 2.
    let answer = a.beat(&mut group, &topics, 40);
    assert_eq!(answer.member_epoch, 2);
    assert_eq!(group.member("a").map(|m| m.state), Some(MemberState::Stable));
    assert_exclusive(&group, &[&a, &b]);

    // Now b gets them, and goes back to the configured interval.
    let answer = b.beat(&mut group, &topics, 50);
    assert_eq!(answer.assignment.as_ref().map(Assignment::len), Some(3));
    assert_eq!(group.member("b").map(|m| m.state), Some(MemberState::Stable));
    assert_eq!(answer.heartbeat_interval_ms, 5000);
    assert_exclusive(&group, &[&a, &b]);
    assert_complete_and_balanced(&group, &[a, b], &topics);
}

#[test]
fn a_revocation_is_not_acknowledged_by_a_heartbeat_that_does_not_list_partitions() {
    let topics = topics(&[("orders", 4)]);
    let mut group = ConsumerGroup::default();
    let mut a = Client::new("a", &["orders"]);
    a.beat(&mut group, &topics, 0);
    Client::new("b", &["orders"]).beat(&mut group, &topics, 1);
    a.beat(&mut group, &topics, 2);
    let request = HeartbeatRequest { owned_partitions: None, ..a.request() };
    group.heartbeat(request, &topics, &config(), 3).expect("accepted");
    assert_eq!(group.member("a").map(|m| m.state), Some(MemberState::UnrevokedPartitions));
}

#[test]
fn a_leaving_member_s_partitions_go_to_the_others() {
    let topics = topics(&[("orders", 6)]);
    let mut group = ConsumerGroup::default();
    let mut clients: Vec<Client> =
        ["a", "b", "c"].iter().map(|name| Client::new(name, &["orders"])).collect();
    for client in &mut clients {
        client.beat(&mut group, &topics, 0);
    }
    settle(&mut group, &mut clients, &topics, 1);
    let epoch = group.group_epoch;
    let mut c = clients.pop().expect("c");
    c.leave(&mut group, LEAVE_EPOCH, 2);
    assert!(group.member("c").is_none());
    assert_eq!(group.group_epoch, epoch + 1);
    settle(&mut group, &mut clients, &topics, 3);
    assert_complete_and_balanced(&group, &clients, &topics);
    assert!(clients.iter().all(|client| client.owned.len() == 3));
}

#[test]
fn epochs_are_checked_and_a_lost_answer_is_tolerated() {
    let topics = topics(&[("orders", 4)]);
    let mut group = ConsumerGroup::default();
    let mut a = Client::new("a", &["orders"]);
    a.beat(&mut group, &topics, 0);
    let mut b = Client::new("b", &["orders"]);
    b.beat(&mut group, &topics, 1);
    let mut clients = vec![a, b];
    settle(&mut group, &mut clients, &topics, 2);
    let a = &clients[0];
    let member = group.member("a").expect("a").clone();
    assert_eq!((member.member_epoch, member.previous_member_epoch), (2, 1));

    let with_epoch = |epoch, owned: Option<Assignment>| HeartbeatRequest {
        member_epoch: epoch,
        owned_partitions: owned,
        ..a.request()
    };
    let before = group.clone();
    let ahead = group.heartbeat(with_epoch(3, Some(a.owned.clone())), &topics, &config(), 3);
    assert_eq!(ahead, Err(GroupError::FencedMemberEpoch));
    let stale = group.heartbeat(with_epoch(1, None), &topics, &config(), 3);
    assert_eq!(stale, Err(GroupError::FencedMemberEpoch), "previous epoch without partitions");
    assert_eq!(group, before, "a refused heartbeat changes nothing");

    // The previous epoch with partitions it still has: the answer moving it on was lost.
    let answer = group
        .heartbeat(with_epoch(1, Some(a.owned.clone())), &topics, &config(), 3)
        .expect("previous epoch accepted");
    assert_eq!(answer.member_epoch, 2);
    // ... but not with a partition it no longer has.
    let mut more = a.owned.clone();
    more.insert(id("orders"), 99);
    let stale = group.heartbeat(with_epoch(1, Some(more)), &topics, &config(), 3);
    assert_eq!(stale, Err(GroupError::FencedMemberEpoch));

    let unknown = HeartbeatRequest { member_id: "zzz".into(), ..with_epoch(2, None) };
    assert_eq!(group.heartbeat(unknown, &topics, &config(), 3), Err(GroupError::UnknownMemberId));
}

#[test]
fn a_fenced_member_rejoins_with_its_id_and_epoch_zero() {
    let topics = topics(&[("orders", 2)]);
    let mut group = ConsumerGroup::default();
    let mut a = Client::new("a", &["orders"]);
    a.beat(&mut group, &topics, 0);
    // It lost track of its epoch, abandons its partitions and joins again (KAFKA-19233).
    a.epoch = JOIN_EPOCH;
    a.owned = Assignment::default();
    let answer = a.beat(&mut group, &topics, 1);
    assert_eq!(answer.member_epoch, 1);
    assert_eq!(answer.assignment, Some(partitions("orders", &[0, 1])));
    assert_eq!(group.members.len(), 1);
    assert_eq!(group.group_epoch, 1, "nothing about the group changed");
}

#[test]
fn the_assignment_is_sent_when_it_changed_or_when_asked_in_full() {
    let topics = topics(&[("orders", 2)]);
    let mut group = ConsumerGroup::default();
    let mut a = Client::new("a", &["orders"]);
    a.beat(&mut group, &topics, 0);
    assert_eq!(a.beat(&mut group, &topics, 1).assignment, None);
    let full = HeartbeatRequest {
        rebalance_timeout_ms: Some(REBALANCE_TIMEOUT_MS),
        subscribed_topic_names: Some(vec!["orders".into()]),
        ..a.request()
    };
    let answer = group.heartbeat(full, &topics, &config(), 2).expect("accepted");
    assert_eq!(answer.assignment, Some(partitions("orders", &[0, 1])));
}

#[test]
fn a_static_member_leaving_for_a_while_keeps_its_partitions() {
    let topics = topics(&[("orders", 4)]);
    let mut group = ConsumerGroup::default();
    let mut clients = vec![
        Client::static_member("a1", "instance-a", &["orders"]),
        Client::static_member("b1", "instance-b", &["orders"]),
    ];
    for client in &mut clients {
        client.beat(&mut group, &topics, 0);
    }
    settle(&mut group, &mut clients, &topics, 1);
    let kept = clients[0].owned.clone();
    let epoch = group.group_epoch;

    let mut a = clients.remove(0);
    a.leave(&mut group, LEAVE_STATIC_EPOCH, 2);
    assert_eq!(group.group_epoch, epoch, "no rebalance");
    assert_eq!(group.member("a1").map(|m| m.member_epoch), Some(LEAVE_STATIC_EPOCH));
    settle(&mut group, &mut clients, &topics, 3);
    assert_eq!(clients[0].owned.len(), 2, "b does not get a's partitions");

    // It restarts under a new member id and gets its partitions back, still no rebalance.
    let mut restarted = Client::static_member("a2", "instance-a", &["orders"]);
    let answer = restarted.beat(&mut group, &topics, 4);
    assert_eq!(answer.member_epoch, epoch);
    assert_eq!(answer.assignment, Some(kept));
    assert_eq!(group.group_epoch, epoch);
    assert!(group.member("a1").is_none());

    // The old incarnation is fenced.
    let old = HeartbeatRequest { member_epoch: epoch, ..a.request() };
    assert_eq!(group.heartbeat(old, &topics, &config(), 5), Err(GroupError::FencedInstanceId));
}

#[test]
fn a_static_member_may_come_back_under_its_own_member_id() {
    let topics = topics(&[("orders", 2)]);
    let mut group = ConsumerGroup::default();
    let mut a = Client::static_member("a1", "instance-a", &["orders"]);
    a.beat(&mut group, &topics, 0);
    let epoch = group.group_epoch;
    a.leave(&mut group, LEAVE_STATIC_EPOCH, 1);
    let answer = a.beat(&mut group, &topics, 2);
    assert_eq!(answer.member_epoch, epoch);
    assert_eq!(answer.assignment, Some(partitions("orders", &[0, 1])));
    assert_eq!(group.group_epoch, epoch);
    // A member id keeps its instance id.
    let mut renamed = Client::static_member("a1", "instance-b", &["orders"]);
    assert_eq!(
        renamed.heartbeat(&mut group, &topics, 3).map(|answer| answer.member_epoch),
        Err(GroupError::InvalidRequest)
    );
}

#[test]
fn a_static_instance_in_use_is_not_released_to_another_member() {
    let topics = topics(&[("orders", 2)]);
    let mut group = ConsumerGroup::default();
    Client::static_member("a1", "instance-a", &["orders"]).beat(&mut group, &topics, 0);
    let mut duplicate = Client::static_member("a2", "instance-a", &["orders"]);
    assert_eq!(
        duplicate.heartbeat(&mut group, &topics, 1).map(|answer| answer.member_epoch),
        Err(GroupError::UnreleasedInstanceId)
    );
    let unknown = HeartbeatRequest {
        member_epoch: 1,
        ..Client::static_member("x", "instance-x", &["orders"]).request()
    };
    assert_eq!(group.heartbeat(unknown, &topics, &config(), 2), Err(GroupError::UnknownMemberId));
    let leave = HeartbeatRequest { member_epoch: LEAVE_EPOCH, ..duplicate.request() };
    assert_eq!(group.heartbeat(leave, &topics, &config(), 2), Err(GroupError::FencedInstanceId));
}

#[test]
fn a_static_member_that_does_not_come_back_expires() {
    let topics = topics(&[("orders", 4)]);
    let mut group = ConsumerGroup::default();
    let mut a = Client::static_member("a1", "instance-a", &["orders"]);
    let mut clients = vec![a.clone(), Client::new("b", &["orders"])];
    for client in &mut clients {
        client.beat(&mut group, &topics, 0);
    }
    settle(&mut group, &mut clients, &topics, 1);
    a.epoch = clients[0].epoch;
    a.leave(&mut group, LEAVE_STATIC_EPOCH, 1_000);
    let mut b = clients.remove(1);
    // b keeps heartbeating; a's session runs out 45 s after it left.
    b.beat(&mut group, &topics, 40_000);
    assert!(!group.tick(46_000));
    b.beat(&mut group, &topics, 46_000);
    assert!(group.tick(46_001));
    assert!(group.member("a1").is_none());
    let mut clients = vec![b];
    settle(&mut group, &mut clients, &topics, 46_002);
    assert_eq!(clients[0].owned.len(), 4);
}

#[test]
fn a_silent_member_expires_and_its_partitions_move() {
    let topics = topics(&[("orders", 4)]);
    let mut group = ConsumerGroup::default();
    let mut clients = vec![Client::new("a", &["orders"]), Client::new("b", &["orders"])];
    for client in &mut clients {
        client.beat(&mut group, &topics, 0);
    }
    settle(&mut group, &mut clients, &topics, 0);
    clients.pop();
    clients[0].beat(&mut group, &topics, 30_000);
    assert!(!group.tick(45_000), "b's session lasts 45 s");
    let epoch = group.group_epoch;
    assert!(group.tick(45_001));
    assert!(group.member("b").is_none());
    assert_eq!(group.group_epoch, epoch + 1);
    settle(&mut group, &mut clients, &topics, 45_002);
    assert_eq!(clients[0].owned.len(), 4);
}

#[test]
fn a_member_that_does_not_revoke_in_time_is_removed() {
    let topics = topics(&[("orders", 4)]);
    let mut group = ConsumerGroup::default();
    let mut a = Client::new("a", &["orders"]);
    a.beat(&mut group, &topics, 0);
    let mut b = Client::new("b", &["orders"]);
    b.beat(&mut group, &topics, 0);
    // a is asked to revoke but keeps listing the partitions.
    let stubborn = a.request();
    group.heartbeat(stubborn.clone(), &topics, &config(), 1_000).expect("accepted");
    group.heartbeat(stubborn, &topics, &config(), 20_000).expect("accepted");
    b.beat(&mut group, &topics, 25_000);
    assert!(!group.tick(31_000));
    assert!(group.tick(31_001), "30 s rebalance timeout from the revocation request");
    assert!(group.member("a").is_none());
    let mut clients = vec![b];
    settle(&mut group, &mut clients, &topics, 31_002);
    assert_eq!(clients[0].owned.len(), 4);
}

#[test]
fn a_subscription_change_starts_a_new_epoch() {
    let topics = topics(&[("orders", 2), ("payments", 2)]);
    let mut group = ConsumerGroup::default();
    let mut a = Client::new("a", &["orders"]);
    a.beat(&mut group, &topics, 0);
    let epoch = group.group_epoch;
    let request = HeartbeatRequest {
        subscribed_topic_names: Some(vec!["payments".into(), "orders".into()]),
        ..a.request()
    };
    let answer = group.heartbeat(request, &topics, &config(), 1).expect("accepted");
    assert_eq!(answer.member_epoch, epoch + 1);
    assert_eq!(answer.assignment.map(|assignment| assignment.len()), Some(4));
    // The same subscription in another order is no change.
    let request = HeartbeatRequest {
        member_epoch: epoch + 1,
        subscribed_topic_names: Some(vec!["orders".into(), "payments".into()]),
        ..a.request()
    };
    group.heartbeat(request, &topics, &config(), 2).expect("accepted");
    assert_eq!(group.group_epoch, epoch + 1);
}

#[test]
fn a_regex_subscription_picks_up_a_topic_created_later() {
    let mut topics = topics(&[("orders-eu", 2), ("xorders-us", 1), ("payments", 1)]);
    let mut group = ConsumerGroup::default();
    let mut a = Client::new("a", &[]);
    a.names = Vec::new();
    a.regex = Some("orders-.*".into());
    a.beat(&mut group, &topics, 0);
    assert_eq!(a.owned, partitions("orders-eu", &[0, 1]), "whole names only");
    let epoch = group.group_epoch;

    topics.insert("orders-us".into(), TopicMetadata { id: id("orders-us"), partitions: 3 });
    let answer = a.beat(&mut group, &topics, 1);
    assert_eq!(group.group_epoch, epoch + 1);
    assert_eq!(answer.member_epoch, epoch + 1);
    assert_eq!(a.owned.len(), 5);
    assert!(a.owned.contains(id("orders-us"), 2));
}

#[test]
fn an_invalid_regex_is_refused() {
    let topics = topics(&[("orders", 1)]);
    let mut group = ConsumerGroup::default();
    for pattern in ["orders-(", "a)|(b", "[z-a]"] {
        let mut a = Client::new("a", &[]);
        a.regex = Some(pattern.into());
        assert_eq!(
            a.heartbeat(&mut group, &topics, 0).map(|answer| answer.member_epoch),
            Err(GroupError::InvalidRegularExpression),
            "{pattern}"
        );
    }
    assert_eq!(group, ConsumerGroup::default());
}

#[test]
fn more_partitions_start_a_new_epoch_and_get_assigned() {
    let mut topics = topics(&[("orders", 2)]);
    let mut group = ConsumerGroup::default();
    let mut clients = vec![Client::new("a", &["orders"]), Client::new("b", &["orders"])];
    for client in &mut clients {
        client.beat(&mut group, &topics, 0);
    }
    settle(&mut group, &mut clients, &topics, 0);
    let epoch = group.group_epoch;
    topics.insert("orders".into(), TopicMetadata { id: id("orders"), partitions: 4 });
    settle(&mut group, &mut clients, &topics, 1);
    assert_eq!(group.group_epoch, epoch + 1);
    assert_complete_and_balanced(&group, &clients, &topics);
}

#[test]
fn a_deleted_topic_is_revoked() {
    let mut topics = topics(&[("orders", 2), ("payments", 2)]);
    let mut group = ConsumerGroup::default();
    let mut clients = vec![Client::new("a", &["orders", "payments"])];
    settle(&mut group, &mut clients, &topics, 0);
    assert_eq!(clients[0].owned.len(), 4);
    topics.remove("payments");
    settle(&mut group, &mut clients, &topics, 1);
    assert_eq!(clients[0].owned, partitions("orders", &[0, 1]));
}

#[test]
fn the_assignor_is_the_one_members_name_else_the_default() {
    let topics = topics(&[("orders", 4)]);
    let mut group = ConsumerGroup::default();
    let mut a = Client::new("a", &["orders"]);
    a.beat(&mut group, &topics, 0);
    assert_eq!(group.chosen_assignor(&config()), AssignorName::Uniform);
    let mut b = Client::new("b", &["orders"]);
    b.assignor = Some("range".into());
    b.beat(&mut group, &topics, 0);
    assert_eq!(group.chosen_assignor(&config()), AssignorName::Range);
    let range_first =
        ConsumerConfig { assignors: vec![AssignorName::Range, AssignorName::Uniform], ..config() };
    assert_eq!(ConsumerGroup::default().chosen_assignor(&range_first), AssignorName::Range);

    let mut c = Client::new("c", &["orders"]);
    c.assignor = Some("sticky".into());
    assert_eq!(
        c.heartbeat(&mut group, &topics, 0).map(|answer| answer.member_epoch),
        Err(GroupError::UnsupportedAssignor)
    );
}

#[test]
fn malformed_requests_are_invalid() {
    let topics = topics(&[("orders", 1)]);
    let mut group = ConsumerGroup::default();
    let join = Client::new("a", &["orders"]).request();
    let cases = [
        HeartbeatRequest { member_id: String::new(), ..join.clone() },
        HeartbeatRequest { instance_id: Some(String::new()), ..join.clone() },
        HeartbeatRequest { rack_id: Some(String::new()), ..join.clone() },
        HeartbeatRequest { member_epoch: -3, ..join.clone() },
        HeartbeatRequest { rebalance_timeout_ms: None, ..join.clone() },
        HeartbeatRequest { subscribed_topic_names: None, ..join.clone() },
        HeartbeatRequest { owned_partitions: Some(partitions("orders", &[0])), ..join.clone() },
        HeartbeatRequest { member_epoch: LEAVE_STATIC_EPOCH, ..join.clone() },
    ];
    for request in cases {
        let refused = group.heartbeat(request.clone(), &topics, &config(), 0);
        assert_eq!(refused, Err(GroupError::InvalidRequest), "{request:?}");
    }
    assert_eq!(group, ConsumerGroup::default());
}

#[test]
fn a_full_group_refuses_new_members() {
    let topics = topics(&[("orders", 1)]);
    let config = ConsumerConfig { max_size: 1, ..config() };
    let mut group = ConsumerGroup::default();
    let a = Client::new("a", &["orders"]);
    group.heartbeat(a.request(), &topics, &config, 0).expect("first fits");
    let b = Client::new("b", &["orders"]);
    assert_eq!(
        group.heartbeat(b.request(), &topics, &config, 0),
        Err(GroupError::GroupMaxSizeReached)
    );
}

#[test]
fn the_group_round_trips_through_json() {
    let topics = topics(&[("orders", 3)]);
    let mut group = ConsumerGroup::default();
    let mut a = Client::static_member("a", "instance-a", &["orders"]);
    a.regex = Some("pay.*".into());
    a.beat(&mut group, &topics, 0);
    let json = group.to_json();
    let text = String::from_utf8(json.clone()).expect("utf-8");
    assert!(text.contains("\"group_epoch\":1"), "{text}");
    assert!(text.contains("\"subscribed_topic_regex\":\"pay.*\""), "{text}");
    assert_eq!(ConsumerGroup::from_json(&json), Ok(group));
    assert_eq!(ConsumerGroup::from_json(b"{"), Err(GroupError::Corrupt));
}

fn member(member_id: &str, topics: &[&str], current: Assignment) -> AssignorMember {
    AssignorMember {
        member_id: member_id.into(),
        instance_id: None,
        topics: topics.iter().map(|topic| (*topic).to_owned()).collect(),
        current,
    }
}

#[test]
fn range_gives_contiguous_ranges_per_topic() {
    let topics = topics(&[("orders", 5), ("payments", 2)]);
    let members = [member("b", &["orders", "payments"], Assignment::default()), {
        let mut a = member("a", &["orders"], Assignment::default());
        a.instance_id = Some("zz".into());
        a
    }];
    let result = range(&members, &topics);
    // Ordered by instance id, else member id: "b" before "zz".
    let mut b = partitions("orders", &[0, 1, 2]);
    b.insert(id("payments"), 0);
    b.insert(id("payments"), 1);
    assert_eq!(result.get("b"), Some(&b));
    assert_eq!(result.get("a"), Some(&partitions("orders", &[3, 4])));
}

#[test]
fn uniform_moves_as_few_partitions_as_balance_needs() {
    let topics = topics(&[("orders", 6)]);
    let before = [
        member("a", &["orders"], partitions("orders", &[0, 1, 2])),
        member("b", &["orders"], partitions("orders", &[3, 4, 5])),
        member("c", &["orders"], Assignment::default()),
    ];
    let after = uniform(&before, &topics);
    let kept: usize = before
        .iter()
        .map(|member| {
            let given = after.get(&member.member_id).cloned().unwrap_or_default();
            member.current.pairs().filter(|(t, p)| given.contains(*t, *p)).count()
        })
        .sum();
    assert_eq!(kept, 4, "two partitions move, no more");
    assert!(after.values().all(|given| given.len() == 2));
}

#[test]
fn uniform_balances_different_subscriptions() {
    let topics = topics(&[("orders", 4), ("payments", 4)]);
    let members = [
        member("a", &["orders"], Assignment::default()),
        member("b", &["orders", "payments"], Assignment::default()),
        member("c", &["payments"], Assignment::default()),
    ];
    let result = uniform(&members, &topics);
    let counts: Vec<usize> = result.values().map(Assignment::len).collect();
    assert_eq!(counts.iter().sum::<usize>(), 8);
    assert!(counts.iter().all(|count| (2..=3).contains(count)), "{counts:?}");
    assert!(result.get("a").is_some_and(|a| a.0.keys().all(|topic| *topic == id("orders"))));
}

/// One step of a random run.
#[derive(Debug, Clone)]
enum Step {
    Join(usize),
    Heartbeat(usize),
    Leave(usize),
    /// The process dies: it stops heartbeating and consuming; its session expires later.
    Crash(usize),
    /// 20 s pass; every live client heartbeats.
    Advance,
    /// `payments` gets one more partition.
    Grow,
}

fn step() -> impl Strategy<Value = Step> {
    prop_oneof![
        3 => (0..5usize).prop_map(Step::Join),
        6 => (0..5usize).prop_map(Step::Heartbeat),
        1 => (0..5usize).prop_map(Step::Leave),
        1 => (0..5usize).prop_map(Step::Crash),
        1 => Just(Step::Advance),
        1 => Just(Step::Grow),
    ]
}

/// The random run's world: up to five client slots, the topics and the clock.
struct World {
    group: ConsumerGroup,
    slots: Vec<Option<Client>>,
    topics: BTreeMap<String, TopicMetadata>,
    now_ms: i64,
    joins: usize,
    assignor: Option<String>,
}

impl World {
    fn live(&self) -> Vec<&Client> {
        self.slots.iter().flatten().collect()
    }

    fn heartbeat(&mut self, slot: usize) {
        let Some(client) = self.slots.get_mut(slot).and_then(Option::as_mut) else { return };
        let answer = client.heartbeat(&mut self.group, &self.topics, self.now_ms);
        assert!(answer.is_ok(), "a live client is never refused: {answer:?}");
    }

    fn apply(&mut self, step: &Step) {
        match *step {
            Step::Join(slot) if self.slots[slot].is_none() => {
                self.joins += 1;
                let mut client = Client::new(&format!("m{}", self.joins), &["orders", "payments"]);
                client.assignor = self.assignor.clone();
                self.slots[slot] = Some(client);
                self.heartbeat(slot);
            }
            Step::Join(slot) | Step::Heartbeat(slot) => self.heartbeat(slot),
            Step::Leave(slot) => {
                if let Some(mut client) = self.slots[slot].take() {
                    client.leave(&mut self.group, LEAVE_EPOCH, self.now_ms);
                }
            }
            Step::Crash(slot) => self.slots[slot] = None,
            Step::Advance => self.advance(20_000),
            Step::Grow => {
                if let Some(payments) = self.topics.get_mut("payments") {
                    payments.partitions = (payments.partitions + 1).min(8);
                }
            }
        }
        self.check();
    }

    fn advance(&mut self, ms: i64) {
        self.now_ms += ms;
        self.group.tick(self.now_ms);
        for slot in 0..self.slots.len() {
            self.heartbeat(slot);
        }
    }

    /// What the group says each member owns covers what its client consumes, and no
    /// partition is anyone's twice.
    fn check(&self) {
        assert_exclusive(&self.group, &self.live());
        for client in self.live() {
            let member = self.group.member(&client.member_id).expect("live client is a member");
            let owned = Assignment::from_pairs(
                member.assigned.pairs().chain(member.pending_revocation.pairs()),
            );
            assert!(client.owned.is_subset(&owned), "{client:?} consumes what it does not own");
        }
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(200))]

    #[test]
    fn random_runs_never_share_a_partition_and_converge(
        steps in prop::collection::vec(step(), 1..60),
        range_assignor in any::<bool>(),
    ) {
        let mut world = World {
            group: ConsumerGroup::default(),
            slots: vec![None, None, None, None, None],
            topics: topics(&[("orders", 6), ("payments", 3)]),
            now_ms: 0,
            joins: 0,
            assignor: range_assignor.then(|| "range".to_owned()),
        };
        for step in &steps {
            world.apply(step);
        }
        // Crashed members expire; then every live client heartbeats until nothing changes.
        world.advance(30_000);
        world.advance(30_000);
        let mut clients: Vec<Client> = world.slots.iter().flatten().cloned().collect();
        let now_ms = world.now_ms;
        settle(&mut world.group, &mut clients, &world.topics, now_ms);
        let members: BTreeSet<&str> =
            world.group.members.iter().map(|member| member.member_id.as_str()).collect();
        let live: BTreeSet<&str> = clients.iter().map(|client| client.member_id.as_str()).collect();
        prop_assert_eq!(members, live);
        if !clients.is_empty() {
            if range_assignor {
                let mut union = Assignment::default();
                for client in &clients {
                    union = Assignment::from_pairs(union.pairs().chain(client.owned.pairs()));
                }
                prop_assert_eq!(union, all_partitions(&world.topics));
            } else {
                assert_complete_and_balanced(&world.group, &clients, &world.topics);
            }
        }
    }
}
