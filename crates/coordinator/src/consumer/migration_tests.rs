//! Groups changing protocol with members in them: a classic group upgraded by a
//! consumer-protocol member, classic members moved through JoinGroup/SyncGroup/Heartbeat,
//! and the downgrade when the last consumer-protocol member goes. Classic clients are
//! simulated as librdkafka's cooperative ones behave.

use std::collections::BTreeMap;

use super::*;
use crate::{AnyGroup, Group, GroupError, GroupState, JoinRequest, Limits, Member, Protocol};

const TOPIC: &str = "orders";

fn id(name: &str) -> TopicId {
    let mut bytes = [0; 16];
    for (slot, byte) in bytes.iter_mut().zip(name.bytes()) {
        *slot = byte;
    }
    TopicId(bytes)
}

fn topics() -> BTreeMap<String, TopicMetadata> {
    BTreeMap::from([(TOPIC.to_owned(), TopicMetadata { id: id(TOPIC), partitions: 6 })])
}

fn partitions(list: &[i32]) -> Assignment {
    Assignment::from_pairs(list.iter().map(|partition| (id(TOPIC), *partition)))
}

/// The tests' stand-in for the embedded consumer protocol: metadata is a topic name, an
/// assignment one byte per partition of that topic.
fn decode(metadata: &[u8], assignment: Option<&[u8]>) -> Option<(ClassicSubscription, Assignment)> {
    let topic = std::str::from_utf8(metadata).ok()?.to_owned();
    let owned = partitions(
        &assignment.unwrap_or_default().iter().map(|byte| i32::from(*byte)).collect::<Vec<_>>(),
    );
    let subscription = ClassicSubscription { topics: vec![topic], ..Default::default() };
    Some((subscription, owned))
}

fn classic_member(member_id: &str, owned: &[u8]) -> Member {
    Member {
        member_id: member_id.to_owned(),
        instance_id: None,
        client_id: "classic".into(),
        client_host: "/127.0.0.1".into(),
        session_timeout_ms: 10_000,
        rebalance_timeout_ms: 30_000,
        protocol_type: CONSUMER_PROTOCOL_TYPE.into(),
        protocols: vec![Protocol { name: "cooperative-sticky".into(), metadata: TOPIC.into() }],
        assignment: Some(owned.to_vec()),
        last_seen_ms: 0,
        joined: false,
    }
}

/// A running classic group: two cooperative members with three partitions each.
fn stable_classic_group() -> Group {
    let mut group = Group {
        state: GroupState::Stable,
        generation: 3,
        protocol_type: Some(CONSUMER_PROTOCOL_TYPE.into()),
        protocol: Some("cooperative-sticky".into()),
        leader: Some("a".into()),
        members: vec![classic_member("a", &[0, 1, 2]), classic_member("b", &[3, 4, 5])],
        pending: Vec::new(),
    };
    group.members[0].last_seen_ms = 1_000;
    group.members[1].last_seen_ms = 1_000;
    group
}

/// A classic consumer as librdkafka's cooperative protocol drives it: it joins, syncs, and
/// when its assignment lost partitions it has revoked them and joins again.
struct ClassicClient {
    member_id: String,
    generation: i32,
    owned: Assignment,
}

impl ClassicClient {
    fn new(member_id: &str, owned: &[i32], generation: i32) -> Self {
        Self { member_id: member_id.into(), generation, owned: partitions(owned) }
    }

    fn join_request(&self) -> JoinRequest {
        JoinRequest {
            member_id: self.member_id.clone(),
            instance_id: None,
            client_id: "classic".into(),
            client_host: "/127.0.0.1".into(),
            session_timeout_ms: 10_000,
            rebalance_timeout_ms: 30_000,
            protocol_type: CONSUMER_PROTOCOL_TYPE.into(),
            protocols: vec![Protocol { name: "cooperative-sticky".into(), metadata: TOPIC.into() }],
            require_known_member_id: true,
            supports_skip_assignment: true,
        }
    }

    fn heartbeat(&self, group: &mut ConsumerGroup, now_ms: i64) -> Result<(), GroupError> {
        group.classic_heartbeat(&self.member_id, None, self.generation, now_ms)
    }

    /// One JoinGroup and its SyncGroup; returns whether partitions were taken away (then a
    /// cooperative client joins again at once).
    fn join_and_sync(&mut self, group: &mut ConsumerGroup, now_ms: i64) -> bool {
        let subscription = ClassicSubscription {
            topics: vec![TOPIC.into()],
            owned: self.owned.clone(),
            rack_id: None,
        };
        let answer = group.classic_join(
            &self.join_request(),
            &subscription,
            "fresh",
            &topics(),
            &ConsumerConfig::default(),
            &Limits::default(),
            now_ms,
        );
        assert_eq!(answer.error, None, "join of {}", self.member_id);
        assert_eq!(answer.protocol.as_deref(), Some("cooperative-sticky"));
        assert!(answer.leader.is_empty() && answer.members.is_empty(), "the broker assigns");
        self.member_id = answer.member_id;
        self.generation = answer.generation;
        let assigned = group
            .classic_sync(&self.member_id, None, self.generation, Some("consumer"), None, now_ms)
            .expect("sync accepted");
        let revoked = !self.owned.is_subset(&assigned);
        self.owned = assigned;
        revoked
    }

    /// What a cooperative client does after REBALANCE_IN_PROGRESS: join (again, if it had to
    /// revoke).
    fn rebalance(&mut self, group: &mut ConsumerGroup, now_ms: i64) {
        for _ in 0..3 {
            if !self.join_and_sync(group, now_ms) {
                return;
            }
        }
        panic!("{} kept revoking", self.member_id);
    }
}

/// A consumer-protocol member that owns what its answers gave it.
struct Modern {
    member_id: String,
    epoch: i32,
    owned: Assignment,
}

impl Modern {
    fn new(member_id: &str) -> Self {
        Self { member_id: member_id.into(), epoch: JOIN_EPOCH, owned: Assignment::default() }
    }

    fn beat(&mut self, group: &mut ConsumerGroup, now_ms: i64) -> HeartbeatAnswer {
        let joining = self.epoch == JOIN_EPOCH;
        let request = HeartbeatRequest {
            member_id: self.member_id.clone(),
            member_epoch: self.epoch,
            rebalance_timeout_ms: joining.then_some(30_000),
            subscribed_topic_names: joining.then(|| vec![TOPIC.to_owned()]),
            owned_partitions: Some(self.owned.clone()),
            ..HeartbeatRequest::default()
        };
        let answer =
            group.heartbeat(request, &topics(), &ConsumerConfig::default(), now_ms).expect("beat");
        self.epoch = answer.member_epoch;
        if let Some(assignment) = &answer.assignment {
            self.owned = assignment.clone();
        }
        answer
    }
}

fn assert_no_partition_twice(owners: &[&Assignment]) {
    let mut seen = Assignment::default();
    for owned in owners {
        for (topic, partition) in owned.pairs() {
            assert!(!seen.contains(topic, partition), "partition {partition} owned twice");
            seen.insert(topic, partition);
        }
    }
}

fn upgraded() -> ConsumerGroup {
    ConsumerGroup::from_classic(&stable_classic_group(), decode).expect("upgrades")
}

#[test]
fn an_upgraded_group_keeps_its_classic_members_and_what_they_own() {
    let group = upgraded();
    assert_eq!((group.group_epoch, group.assignment_epoch), (3, 3));
    assert_eq!(group.members.len(), 2);
    let a = group.member("a").expect("a stays");
    assert!(a.is_classic());
    assert_eq!((a.member_epoch, a.state), (3, MemberState::Stable));
    assert_eq!(a.assigned, partitions(&[0, 1, 2]));
    assert_eq!(a.target, a.assigned);
    assert_eq!(a.session_timeout_ms, 10_000);
    assert_eq!(a.subscribed_topic_names, vec![TOPIC.to_owned()]);
    // Nothing moves until someone changes the group: the members heartbeat as before.
    let mut group = group;
    assert_eq!(group.classic_heartbeat("a", None, 3, 2_000), Ok(()));
    assert_eq!(group.classic_heartbeat("a", None, 2, 2_000), Err(GroupError::IllegalGeneration));
}

#[test]
fn only_groups_that_embed_the_consumer_protocol_upgrade() {
    let mut connect = stable_classic_group();
    connect.protocol_type = Some("connect".into());
    assert_eq!(ConsumerGroup::from_classic(&connect, decode), Err(GroupError::OtherProtocol));
    let undecodable = ConsumerGroup::from_classic(&stable_classic_group(), |_, _| None);
    assert_eq!(undecodable, Err(GroupError::OtherProtocol));
}

#[test]
fn classic_members_hand_partitions_over_to_a_consumer_member_without_sharing_any() {
    let mut group = upgraded();
    let mut a = ClassicClient::new("a", &[0, 1, 2], 3);
    let mut b = ClassicClient::new("b", &[3, 4, 5], 3);
    let mut c = Modern::new("c");

    // The newcomer starts a new group epoch; everything it should get is still owned.
    let answer = c.beat(&mut group, 2_000);
    assert!(c.owned.is_empty());
    assert_eq!(answer.heartbeat_interval_ms, WAITING_HEARTBEAT_INTERVAL_MS);
    assert_eq!(group.group_epoch, 4);

    // Each classic member is told to rejoin, gives one partition up, and moves on.
    for client in [&mut a, &mut b] {
        assert_eq!(client.heartbeat(&mut group, 2_100), Err(GroupError::RebalanceInProgress));
        client.rebalance(&mut group, 2_100);
        assert_eq!(client.owned.len(), 2, "{} keeps two", client.member_id);
        assert_eq!(client.generation, 4);
        assert_no_partition_twice(&[&a_owned(&group), &c.owned]);
    }
    assert_no_partition_twice(&[&a.owned, &b.owned, &c.owned]);

    // The consumer member gets what they released; everyone is stable at epoch 4.
    c.beat(&mut group, 2_200);
    assert_eq!(c.owned.len(), 2);
    assert_no_partition_twice(&[&a.owned, &b.owned, &c.owned]);
    assert_eq!(a.owned.len() + b.owned.len() + c.owned.len(), 6);
    assert_eq!(a.heartbeat(&mut group, 2_300), Ok(()));
    assert_eq!(b.heartbeat(&mut group, 2_300), Ok(()));
    assert_eq!(group.state_name(), "Stable");
}

/// What member "a" owns in the group (assigned or still being revoked).
fn a_owned(group: &ConsumerGroup) -> Assignment {
    let a = group.member("a").expect("a");
    Assignment::from_pairs(a.assigned.pairs().chain(a.pending_revocation.pairs()))
}

#[test]
fn a_classic_member_waiting_for_released_partitions_is_told_to_rejoin_once_they_are_free() {
    // A consumer-protocol group with one member owning everything; a classic member joins.
    let mut group = ConsumerGroup::default();
    let mut c = Modern::new("c");
    c.beat(&mut group, 1_000);
    assert_eq!(c.owned.len(), 6);

    // JoinGroup v4+ without an id: MEMBER_ID_REQUIRED and an id, nothing stored.
    let mut a = ClassicClient::new("", &[], 0);
    let before = group.clone();
    let mut request = a.join_request();
    request.member_id.clear();
    let answer = group.classic_join(
        &request,
        &ClassicSubscription { topics: vec![TOPIC.into()], ..Default::default() },
        "a-1",
        &topics(),
        &ConsumerConfig::default(),
        &Limits::default(),
        1_100,
    );
    assert_eq!(answer.error, Some(GroupError::MemberIdRequired));
    assert_eq!(answer.member_id, "a-1");
    assert_eq!(group, before);

    a.member_id = answer.member_id;
    a.rebalance(&mut group, 1_200);
    assert!(a.owned.is_empty(), "its partitions are still the consumer member's");
    assert_eq!(a.heartbeat(&mut group, 1_300), Ok(()), "nothing to do yet");

    c.beat(&mut group, 1_400); // revokes three
    assert_eq!(c.owned.len(), 3);
    c.beat(&mut group, 1_500); // acknowledges the revocation
    assert_eq!(a.heartbeat(&mut group, 1_600), Err(GroupError::RebalanceInProgress));
    a.rebalance(&mut group, 1_600);
    assert_eq!(a.owned.len(), 3);
    assert_no_partition_twice(&[&a.owned, &c.owned]);
    assert_eq!(a.heartbeat(&mut group, 1_700), Ok(()));
}

#[test]
fn the_group_turns_classic_again_when_its_last_consumer_member_leaves() {
    let mut group = upgraded();
    let mut a = ClassicClient::new("a", &[0, 1, 2], 3);
    let mut b = ClassicClient::new("b", &[3, 4, 5], 3);
    let mut c = Modern::new("c");
    c.beat(&mut group, 2_000);
    a.rebalance(&mut group, 2_100);
    b.rebalance(&mut group, 2_100);
    c.beat(&mut group, 2_200);

    let leave = HeartbeatRequest {
        member_id: "c".into(),
        member_epoch: LEAVE_EPOCH,
        ..HeartbeatRequest::default()
    };
    group.heartbeat(leave, &topics(), &ConsumerConfig::default(), 2_300).expect("leaves");
    let mut any = AnyGroup::Consumer(group);
    any.settle(2_300);
    let AnyGroup::Classic(classic) = any else { panic!("still a consumer group") };
    assert_eq!(classic.generation, 4, "the epoch the classic members have");
    assert!(matches!(classic.state, GroupState::PreparingRebalance { .. }));
    assert_eq!(classic.protocol_type.as_deref(), Some(CONSUMER_PROTOCOL_TYPE));
    assert_eq!(classic.protocol.as_deref(), Some("cooperative-sticky"));
    let ids: Vec<&str> = classic.members.iter().map(|m| m.member_id.as_str()).collect();
    assert_eq!(ids, ["a", "b"]);
    // The classic members learn of the rebalance from their next heartbeat, as usual.
    let mut classic = classic;
    assert_eq!(classic.heartbeat("a", None, 4, 2_400), Err(GroupError::RebalanceInProgress));
}

#[test]
fn a_consumer_member_whose_session_expires_takes_the_consumer_protocol_with_it() {
    let mut group = upgraded();
    let mut c = Modern::new("c");
    c.beat(&mut group, 2_000);
    let mut a = ClassicClient::new("a", &[0, 1, 2], 3);
    let mut b = ClassicClient::new("b", &[3, 4, 5], 3);
    a.rebalance(&mut group, 2_100);
    b.rebalance(&mut group, 2_100);
    // The classic members keep heartbeating; the consumer member goes silent.
    let late = 2_100 + i64::from(ConsumerConfig::default().session_timeout_ms) + 1;
    for member in &mut group.members {
        if member.is_classic() {
            member.last_heartbeat_ms = late;
        }
    }
    let mut any = AnyGroup::Consumer(group);
    any.tick(late);
    assert!(matches!(any, AnyGroup::Classic(_)), "{any:?}");
    assert_eq!(any.type_name(), crate::CLASSIC);
}

#[test]
fn classic_requests_are_checked_as_kafka_checks_them() {
    let mut group = upgraded();
    let mut c = Modern::new("c");
    c.beat(&mut group, 2_000);
    // A consumer-protocol member is not a classic one.
    assert_eq!(group.classic_heartbeat("c", None, 4, 2_000), Err(GroupError::UnknownMemberId));
    assert_eq!(group.classic_heartbeat("x", None, 3, 2_000), Err(GroupError::UnknownMemberId));
    let sync = |group: &mut ConsumerGroup, generation, protocol: Option<&str>| {
        group.classic_sync("a", None, generation, Some("consumer"), protocol, 2_000)
    };
    assert_eq!(sync(&mut group, 2, None), Err(GroupError::IllegalGeneration));
    assert_eq!(sync(&mut group, 3, Some("range")), Err(GroupError::InconsistentGroupProtocol));
    // Its generation is current but the group moved on: it must join first.
    assert_eq!(sync(&mut group, 3, None), Err(GroupError::RebalanceInProgress));

    let mut request = ClassicClient::new("a", &[0, 1, 2], 3).join_request();
    request.protocol_type = "connect".into();
    let answer = group.classic_join(
        &request,
        &ClassicSubscription::default(),
        "fresh",
        &topics(),
        &ConsumerConfig::default(),
        &Limits::default(),
        2_000,
    );
    assert_eq!(answer.error, Some(GroupError::InconsistentGroupProtocol));

    // Offsets: a classic member commits with its epoch as generation, with any version.
    assert_eq!(group.check_commit("a", 3, false), Ok(()));
    assert_eq!(group.check_commit("a", 2, false), Err(GroupError::IllegalGeneration));
    assert_eq!(group.check_commit("c", 4, false), Err(GroupError::UnsupportedVersion));

    // LeaveGroup removes classic members only.
    let leaving = [
        crate::LeaveMember { member_id: "a".into(), instance_id: None },
        crate::LeaveMember { member_id: "c".into(), instance_id: None },
    ];
    assert_eq!(group.classic_leave(&leaving), vec![Ok(()), Err(GroupError::UnknownMemberId)]);
    assert!(group.member("a").is_none() && group.member("c").is_some());
}
