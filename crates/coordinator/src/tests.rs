//! The state machine driven by hand (unit tests) and by random request sequences (proptest).

use proptest::prelude::*;

use crate::*;

const LIMITS: Limits = Limits {
    initial_rebalance_delay_ms: 0,
    initial_rebalance_quiet_ms: 0,
    min_session_timeout_ms: 6000,
    max_session_timeout_ms: 1_800_000,
};

fn protocols(names: &[&str]) -> Vec<Protocol> {
    names
        .iter()
        .map(|name| Protocol { name: (*name).into(), metadata: name.as_bytes().to_vec() })
        .collect()
}

fn request(member_id: &str, instance_id: Option<&str>, names: &[&str]) -> JoinRequest {
    JoinRequest {
        member_id: member_id.into(),
        instance_id: instance_id.map(Into::into),
        client_id: "client".into(),
        client_host: "/127.0.0.1".into(),
        session_timeout_ms: 10_000,
        rebalance_timeout_ms: 30_000,
        protocol_type: "consumer".into(),
        protocols: protocols(names),
        require_known_member_id: true,
        supports_skip_assignment: true,
    }
}

/// A dynamic member through MEMBER_ID_REQUIRED and its real join.
fn join_dynamic(group: &mut Group, id: &str, now: i64) -> JoinOutcome {
    let first = group.join(request("", None, &["range"]), id.into(), now, &LIMITS);
    assert_eq!(
        first,
        JoinOutcome::Answer(JoinAnswer::error(GroupError::MemberIdRequired, id)),
        "first join hands out the id"
    );
    group.join(request(id, None, &["range"]), "unused".into(), now, &LIMITS)
}

fn ready(poll: JoinPoll) -> JoinAnswer {
    match poll {
        JoinPoll::Ready(answer) => answer,
        other => panic!("not ready: {other:?}"),
    }
}

fn sync_leader(group: &mut Group, leader: &str, now: i64) {
    let assignments = group
        .members
        .iter()
        .map(|member| (member.member_id.clone(), format!("for-{}", member.member_id).into_bytes()))
        .collect();
    let request = SyncRequest {
        member_id: leader.into(),
        generation: group.generation,
        assignments,
        ..Default::default()
    };
    assert!(matches!(group.sync(request, now), SyncOutcome::Assigned(_)));
}

#[test]
fn a_single_member_forms_a_group_at_once() {
    let mut group = Group::default();
    let outcome = join_dynamic(&mut group, "a", 0);
    assert_eq!(outcome, JoinOutcome::Wait { member_id: "a".into(), generation: 0 });
    assert_eq!(group.state, GroupState::CompletingRebalance);
    let answer = ready(group.poll_join("a", 0, 0));
    assert_eq!((answer.generation, answer.leader.as_str()), (1, "a"));
    assert_eq!(answer.members.len(), 1);
    assert_eq!(answer.protocol.as_deref(), Some("range"));
    sync_leader(&mut group, "a", 1);
    assert_eq!(group.state, GroupState::Stable);
    assert_eq!(group.poll_sync("a", 1), SyncOutcome::Assigned(b"for-a".to_vec()));
}

#[test]
fn the_initial_delay_holds_the_first_rebalance() {
    // A quiet time as long as the delay is Kafka's rule: each newcomer restarts the wait.
    let limits =
        Limits { initial_rebalance_delay_ms: 3000, initial_rebalance_quiet_ms: 3000, ..LIMITS };
    let mut group = Group::default();
    group.join(request("", Some("i1"), &["range"]), "a".into(), 0, &limits);
    assert!(matches!(group.state, GroupState::PreparingRebalance { .. }));
    group.join(request("", Some("i2"), &["range"]), "b".into(), 1000, &limits);
    assert!(!group.tick(2999));
    assert!(group.tick(3000), "never past the delay after the first member");
    assert_eq!(group.state, GroupState::CompletingRebalance);
    assert_eq!(group.members.len(), 2);
}

#[test]
fn the_first_rebalance_completes_once_newcomers_stop_arriving() {
    let limits =
        Limits { initial_rebalance_delay_ms: 3000, initial_rebalance_quiet_ms: 1000, ..LIMITS };
    let mut group = Group::default();
    group.join(request("", Some("i1"), &["range"]), "a".into(), 0, &limits);
    group.join(request("", Some("i2"), &["range"]), "b".into(), 100, &limits);
    group.join(request("", Some("i3"), &["range"]), "c".into(), 150, &limits);
    assert!(!group.tick(1149), "quiet time restarted by the last newcomer");
    assert!(group.tick(1150));
    assert_eq!((group.state, group.members.len()), (GroupState::CompletingRebalance, 3));

    // Newcomers that keep arriving cannot hold it past the delay.
    let mut group = Group::default();
    for (index, at) in [0, 900, 1800, 2700].into_iter().enumerate() {
        let instance = format!("i{index}");
        group.join(request("", Some(&instance), &["range"]), instance.clone(), at, &limits);
    }
    assert!(!group.tick(2999));
    assert!(group.tick(3000));
    assert_eq!(group.members.len(), 4);

    // Later rebalances do not wait at all.
    sync_leader(&mut group, "i0", 3001);
    group.join(request("", Some("i9"), &["range"]), "i9".into(), 3002, &limits);
    assert!(matches!(
        group.state,
        GroupState::PreparingRebalance { initial_delay_until_ms: 3002, .. }
    ));
}

#[test]
fn a_second_member_triggers_a_rebalance_that_waits_for_the_first() {
    let mut group = Group::default();
    join_dynamic(&mut group, "a", 0);
    sync_leader(&mut group, "a", 0);
    assert!(matches!(join_dynamic(&mut group, "b", 10), JoinOutcome::Wait { generation: 1, .. }));
    assert!(matches!(group.state, GroupState::PreparingRebalance { .. }));
    assert_eq!(group.heartbeat("a", None, 1, 20), Err(GroupError::RebalanceInProgress));
    assert_eq!(group.poll_join("b", 1, 20), JoinPoll::Waiting { generation: 1 });
    // a rejoins: everyone is in, generation 2 forms with a still the leader.
    assert!(matches!(
        group.join(request("a", None, &["range"]), "x".into(), 30, &LIMITS),
        JoinOutcome::Wait { .. }
    ));
    let leader = ready(group.poll_join("a", 1, 30));
    let follower = ready(group.poll_join("b", 1, 30));
    assert_eq!((leader.generation, leader.leader.as_str(), leader.members.len()), (2, "a", 2));
    assert!(follower.members.is_empty());
    assert_eq!(
        group.sync(SyncRequest { member_id: "b".into(), generation: 2, ..Default::default() }, 40),
        SyncOutcome::Wait
    );
    sync_leader(&mut group, "a", 50);
    assert_eq!(group.poll_sync("b", 2), SyncOutcome::Assigned(b"for-b".to_vec()));
}

#[test]
fn the_deadline_drops_members_that_did_not_rejoin() {
    let mut group = Group::default();
    join_dynamic(&mut group, "a", 0);
    sync_leader(&mut group, "a", 0);
    join_dynamic(&mut group, "b", 100);
    // a keeps heartbeating (and is told to rejoin) but never rejoins.
    for at in [9_000, 18_000, 27_000] {
        assert_eq!(group.heartbeat("a", None, 1, at), Err(GroupError::RebalanceInProgress));
    }
    assert!(!group.tick(100 + 29_999));
    assert!(group.tick(100 + 30_000));
    assert_eq!(group.generation, 2);
    assert_eq!(group.members.iter().map(|m| m.member_id.as_str()).collect::<Vec<_>>(), ["b"]);
    assert_eq!(group.leader.as_deref(), Some("b"));
}

#[test]
fn sessions_expire_lazily() {
    let mut group = Group::default();
    join_dynamic(&mut group, "a", 0);
    sync_leader(&mut group, "a", 0);
    assert!(!group.tick(10_000));
    assert!(group.tick(10_001));
    assert_eq!((group.state, group.generation, group.members.len()), (GroupState::Empty, 2, 0));
}

#[test]
fn unknown_members_and_old_generations_are_refused() {
    let mut group = Group::default();
    assert_eq!(
        group.join(request("ghost", None, &["range"]), "x".into(), 0, &LIMITS),
        JoinOutcome::Answer(JoinAnswer::error(GroupError::UnknownMemberId, "ghost"))
    );
    join_dynamic(&mut group, "a", 0);
    sync_leader(&mut group, "a", 0);
    assert_eq!(group.heartbeat("ghost", None, 1, 1), Err(GroupError::UnknownMemberId));
    assert_eq!(group.heartbeat("a", None, 0, 1), Err(GroupError::IllegalGeneration));
    assert_eq!(group.heartbeat("a", None, 1, 1), Ok(()));
    assert_eq!(group.check_commit("a", None, 0), Err(GroupError::IllegalGeneration));
    assert_eq!(group.check_commit("", None, -1), Err(GroupError::UnknownMemberId));
    assert_eq!(Group::default().check_commit("", None, -1), Ok(()));
}

/// Two members a (leader) and b in generation 2, both joined, waiting for the leader's sync.
fn two_members_completing() -> Group {
    let mut group = Group::default();
    join_dynamic(&mut group, "a", 0);
    sync_leader(&mut group, "a", 0);
    join_dynamic(&mut group, "b", 10);
    group.join(request("a", None, &["range"]), "x".into(), 20, &LIMITS);
    assert_eq!((group.state, group.generation), (GroupState::CompletingRebalance, 2));
    group
}

#[test]
fn commits_follow_kafkas_order_of_checks() {
    let mut group = two_members_completing();
    // Between the join and the leader's assignment: the current generation must wait, an old
    // one is simply illegal.
    assert_eq!(group.check_commit("b", None, 2), Err(GroupError::RebalanceInProgress));
    assert_eq!(group.check_commit("b", None, 1), Err(GroupError::IllegalGeneration));
    assert_eq!(group.check_commit("ghost", None, 2), Err(GroupError::UnknownMemberId));
    sync_leader(&mut group, "a", 30);
    assert_eq!(group.check_commit("b", None, 2), Ok(()));
    // A rebalance in preparation: the current generation commits (rebalance callbacks do).
    join_dynamic(&mut group, "c", 40);
    assert!(matches!(group.state, GroupState::PreparingRebalance { .. }));
    assert_eq!(group.check_commit("b", None, 2), Ok(()));
    assert_eq!(group.check_commit("a", None, 2), Ok(()));
    assert_eq!(group.check_commit("b", None, 1), Err(GroupError::IllegalGeneration));
    assert_eq!(group.check_commit("", None, -1), Err(GroupError::UnknownMemberId));
    assert_eq!(group.check_commit("b", None, -1), Err(GroupError::IllegalGeneration));
}

#[test]
fn a_sync_for_a_generation_already_assigned_gets_its_assignment_after_the_leader_rejoined() {
    let mut group = two_members_completing();
    // The follower's SyncGroup arrives (or re-reads the group) only after the leader stored
    // the assignment and at once rejoined for a second, incremental round.
    sync_leader(&mut group, "a", 30);
    group.join(request("a", None, &["range"]), "x".into(), 31, &LIMITS);
    assert!(matches!(group.state, GroupState::PreparingRebalance { .. }));
    assert_eq!(group.poll_sync("b", 2), SyncOutcome::Assigned(b"for-b".to_vec()));
    let request = SyncRequest { member_id: "b".into(), generation: 2, ..Default::default() };
    assert_eq!(group.sync(request, 32), SyncOutcome::Assigned(b"for-b".to_vec()));
    // A member that joined only in this rebalance has nothing for generation 2.
    join_dynamic(&mut group, "c", 33);
    assert_eq!(group.poll_sync("c", 2), SyncOutcome::Failed(GroupError::RebalanceInProgress));
    // The next generation forgets the old assignments.
    group.join(request_for("b"), "x".into(), 34, &LIMITS);
    assert_eq!((group.state, group.generation), (GroupState::CompletingRebalance, 3));
    assert_eq!(group.poll_sync("b", 3), SyncOutcome::Wait);
}

#[test]
fn a_leader_that_did_not_sync_before_the_next_rebalance_leaves_nothing_to_hand_out() {
    let mut group = two_members_completing();
    join_dynamic(&mut group, "c", 30);
    assert!(matches!(group.state, GroupState::PreparingRebalance { .. }));
    assert_eq!(group.poll_sync("b", 2), SyncOutcome::Failed(GroupError::RebalanceInProgress));
}

fn request_for(member_id: &str) -> JoinRequest {
    request(member_id, None, &["range"])
}

#[test]
fn transactional_commits_check_only_what_they_name() {
    let mut group = Group::default();
    join_dynamic(&mut group, "a", 0);
    sync_leader(&mut group, "a", 0);
    assert_eq!(group.check_txn_commit("", None, -1), Ok(()));
    assert_eq!(group.check_txn_commit("a", None, 1), Ok(()));
    assert_eq!(group.check_txn_commit("a", None, -1), Ok(()));
    assert_eq!(group.check_txn_commit("ghost", None, 1), Err(GroupError::UnknownMemberId));
    assert_eq!(group.check_txn_commit("a", None, 0), Err(GroupError::IllegalGeneration));
}

#[test]
fn protocols_must_be_shared() {
    let mut group = Group::default();
    join_dynamic(&mut group, "a", 0);
    let mut other = request("", None, &["roundrobin"]);
    assert!(matches!(
        group.join(other.clone(), "b".into(), 0, &LIMITS),
        JoinOutcome::Answer(JoinAnswer { error: Some(GroupError::InconsistentGroupProtocol), .. })
    ));
    other.protocols = protocols(&["range"]);
    other.protocol_type = "connect".into();
    assert!(matches!(
        group.join(other, "b".into(), 0, &LIMITS),
        JoinOutcome::Answer(JoinAnswer { error: Some(GroupError::InconsistentGroupProtocol), .. })
    ));
}

#[test]
fn the_most_preferred_common_protocol_wins() {
    let mut group = Group::default();
    for (id, names) in
        [("a", ["sticky", "range"]), ("b", ["range", "sticky"]), ("c", ["range", "sticky"])]
    {
        group.join(request("", Some(id), &names), id.into(), 0, &LIMITS);
    }
    assert_eq!(group.protocol.as_deref(), Some("sticky"), "a alone formed generation 1");
    for id in ["a", "b", "c"] {
        let names: &[&str] = if id == "a" { &["sticky", "range"] } else { &["range", "sticky"] };
        group.join(request(id, Some(id), names), "x".into(), 1, &LIMITS);
    }
    assert_eq!(group.state, GroupState::CompletingRebalance);
    assert_eq!(group.protocol.as_deref(), Some("range"));
}

#[test]
fn a_static_member_restarting_keeps_its_place_without_a_rebalance() {
    let mut group = Group::default();
    group.join(request("", Some("s1"), &["range"]), "s1-old".into(), 0, &LIMITS);
    join_dynamic(&mut group, "d", 0);
    group.join(request("s1-old", Some("s1"), &["range"]), "x".into(), 0, &LIMITS);
    assert_eq!(group.state, GroupState::CompletingRebalance);
    let leader = group.leader.clone().unwrap_or_default();
    sync_leader(&mut group, &leader, 0);
    let generation = group.generation;

    let outcome = group.join(request("", Some("s1"), &["range"]), "s1-new".into(), 5000, &LIMITS);
    let JoinOutcome::Answer(answer) = outcome else { panic!("static rejoin must answer at once") };
    assert_eq!(
        (answer.error, answer.generation, answer.member_id.as_str()),
        (None, generation, "s1-new")
    );
    assert_eq!(group.state, GroupState::Stable);
    assert_eq!(
        group.poll_sync("s1-new", generation),
        SyncOutcome::Assigned(b"for-s1-old".to_vec())
    );
    assert_eq!(
        group.heartbeat("s1-old", Some("s1"), generation, 5001),
        Err(GroupError::FencedInstanceId)
    );
    assert_eq!(group.heartbeat("d", None, generation, 5001), Ok(()));
    assert_eq!(group.leader.as_deref(), Some("s1-new"), "the leader's new id leads");
    assert!(answer.skip_assignment);

    // A client older than JoinGroup v9 cannot skip the assignment: it is answered as a
    // follower (the old leader id), yet leads under its new id.
    let mut old_client = request("", Some("s1"), &["range"]);
    old_client.supports_skip_assignment = false;
    let JoinOutcome::Answer(answer) = group.join(old_client, "s1-v5".into(), 5500, &LIMITS) else {
        panic!("static rejoin must answer at once")
    };
    assert_eq!(
        (answer.leader.as_str(), answer.members.len(), answer.skip_assignment),
        ("s1-new", 0, false)
    );
    assert_eq!(group.leader.as_deref(), Some("s1-v5"));
    assert_eq!(group.poll_sync("s1-v5", generation), SyncOutcome::Assigned(b"for-s1-old".to_vec()));

    // New metadata for the same protocol (a cooperative member's owned partitions) does not.
    let mut changed = request("", Some("s1"), &["range"]);
    changed.protocols[0].metadata = b"other".to_vec();
    assert!(matches!(
        group.join(changed, "s1-newer".into(), 6000, &LIMITS),
        JoinOutcome::Answer(_)
    ));
    assert_eq!(group.state, GroupState::Stable);
}

#[test]
fn a_static_member_changing_the_selected_protocol_rebalances() {
    let mut group = Group::default();
    group.join(request("", Some("s1"), &["range", "sticky"]), "s".into(), 0, &LIMITS);
    group.join(request("", Some("d1"), &["sticky", "range"]), "d".into(), 0, &LIMITS);
    group.join(request("s", Some("s1"), &["range", "sticky"]), "x".into(), 0, &LIMITS);
    assert_eq!(group.state, GroupState::CompletingRebalance);
    assert_eq!(group.protocol.as_deref(), Some("range"), "a tie goes to the first member's choice");
    sync_leader(&mut group, "s", 0);
    let outcome =
        group.join(request("", Some("s1"), &["sticky", "range"]), "s2".into(), 1, &LIMITS);
    assert!(matches!(outcome, JoinOutcome::Wait { .. }));
    assert!(matches!(group.state, GroupState::PreparingRebalance { .. }));
}

#[test]
fn leave_by_member_and_by_instance() {
    let mut group = Group::default();
    group.join(request("", Some("s1"), &["range"]), "s".into(), 0, &LIMITS);
    group.join(request("s", Some("s1"), &["range"]), "x".into(), 0, &LIMITS);
    join_dynamic(&mut group, "d", 0);
    let results = group.leave(
        &[
            LeaveMember { member_id: "other".into(), instance_id: Some("s1".into()) },
            LeaveMember { member_id: "".into(), instance_id: Some("s1".into()) },
            LeaveMember { member_id: "ghost".into(), instance_id: None },
        ],
        1,
    );
    assert_eq!(
        results,
        [Err(GroupError::FencedInstanceId), Ok(()), Err(GroupError::UnknownMemberId)]
    );
    assert_eq!(
        group.state,
        GroupState::CompletingRebalance,
        "d had joined: the rebalance completes"
    );
    assert_eq!(
        group.leave(&[LeaveMember { member_id: "d".into(), instance_id: None }], 2),
        [Ok(())]
    );
    assert_eq!(group.state, GroupState::Empty);
}

#[test]
fn a_waiter_is_carried_into_the_next_rebalance() {
    let mut group = Group::default();
    join_dynamic(&mut group, "a", 0);
    sync_leader(&mut group, "a", 0);
    join_dynamic(&mut group, "b", 1);
    group.join(request("a", None, &["range"]), "x".into(), 2, &LIMITS);
    // Generation 2 formed, but before b looked a third member started generation 3's rebalance.
    join_dynamic(&mut group, "c", 3);
    assert_eq!(group.poll_join("b", 1, 4), JoinPoll::Waiting { generation: 2 });
    group.join(request("a", None, &["range"]), "x".into(), 5, &LIMITS);
    assert_eq!(ready(group.poll_join("b", 2, 5)).generation, 3);
}

#[test]
fn stored_form_round_trips() {
    let mut group = Group::default();
    join_dynamic(&mut group, "a", 0);
    sync_leader(&mut group, "a", 0);
    assert_eq!(Group::from_json(&group.to_json()), Ok(group));
    assert_eq!(Group::from_json(b"{"), Err(GroupError::Corrupt));
}

// Property tests ------------------------------------------------------------------------------

#[derive(Debug, Clone)]
enum Step {
    Join { who: usize, static_member: bool },
    Poll { who: usize },
    Sync { who: usize },
    Heartbeat { who: usize },
    Leave { who: usize },
    Wait { ms: i64 },
}

fn step() -> impl Strategy<Value = Step> {
    prop_oneof![
        (0..4usize, any::<bool>())
            .prop_map(|(who, static_member)| Step::Join { who, static_member }),
        (0..4usize).prop_map(|who| Step::Poll { who }),
        (0..4usize).prop_map(|who| Step::Sync { who }),
        (0..4usize).prop_map(|who| Step::Heartbeat { who }),
        (0..4usize).prop_map(|who| Step::Leave { who }),
        (1..20_000i64).prop_map(|ms| Step::Wait { ms }),
    ]
}

/// A client's view: the member id it holds, the generation it waits past or is in.
#[derive(Debug, Clone, Default)]
struct Client {
    member_id: String,
    waiting_join: Option<i32>,
    generation: i32,
}

fn check_invariants(group: &Group, previous_generation: i32) {
    if let Some(leader) = &group.leader {
        assert!(group.member(leader).is_some(), "leader {leader} is not a member: {group:?}");
    }
    if matches!(group.state, GroupState::CompletingRebalance | GroupState::Stable) {
        assert!(group.leader.is_some(), "an active generation has a leader");
        assert!(!group.members.is_empty());
    }
    if group.state == GroupState::Empty {
        assert!(group.members.is_empty() && group.leader.is_none());
    }
    let mut ids: Vec<_> = group.members.iter().map(|m| &m.member_id).collect();
    ids.sort();
    ids.dedup();
    assert_eq!(ids.len(), group.members.len(), "member ids are unique");
    assert!(
        group.generation == previous_generation || group.generation == previous_generation + 1,
        "generation moves by one per completed rebalance"
    );
    if group.state == GroupState::Stable {
        for member in &group.members {
            assert!(member.assignment.is_some(), "a stable member has the leader's assignment");
        }
    }
}

proptest! {
    #[test]
    fn random_sequences_keep_the_invariants(steps in proptest::collection::vec(step(), 1..80)) {
        let mut group = Group::default();
        let mut clients = vec![Client::default(); 4];
        let mut now = 0i64;
        let mut fresh = 0;
        for step in steps {
            let before = group.generation;
            match step {
                Step::Wait { ms } => {
                    now += ms;
                    group.tick(now);
                }
                Step::Join { who, static_member } => {
                    group.tick(now);
                    check_invariants(&group, before);
                    let before = group.generation;
                    fresh += 1;
                    let instance = static_member.then(|| format!("instance-{who}"));
                    let mut join = request(&clients[who].member_id, instance.as_deref(), &["range"]);
                    join.instance_id = instance;
                    match group.join(join, format!("m{fresh}"), now, &LIMITS) {
                        JoinOutcome::Answer(answer) => {
                            if answer.error.is_none() || answer.error == Some(GroupError::MemberIdRequired) {
                                clients[who].member_id = answer.member_id;
                                clients[who].generation = answer.generation;
                            } else {
                                clients[who] = Client::default();
                            }
                        }
                        JoinOutcome::Wait { member_id, generation } => {
                            clients[who].member_id = member_id;
                            clients[who].waiting_join = Some(generation);
                        }
                    }
                    check_invariants(&group, before);
                    continue;
                }
                Step::Poll { who } => {
                    group.tick(now);
                    check_invariants(&group, before);
                    let before = group.generation;
                    if let Some(waiting) = clients[who].waiting_join {
                        match group.poll_join(&clients[who].member_id.clone(), waiting, now) {
                            JoinPoll::Ready(answer) => {
                                prop_assert_eq!(answer.generation, group.generation);
                                if answer.leader == clients[who].member_id && group.state != GroupState::Stable {
                                    prop_assert_eq!(answer.members.len(), group.members.len());
                                }
                                clients[who].generation = answer.generation;
                                clients[who].waiting_join = None;
                            }
                            JoinPoll::Waiting { generation } => clients[who].waiting_join = Some(generation),
                            JoinPoll::Failed(_) => clients[who] = Client::default(),
                        }
                    }
                    check_invariants(&group, before);
                    continue;
                }
                Step::Sync { who } => {
                    group.tick(now);
                    check_invariants(&group, before);
                    let before = group.generation;
                    let client = clients[who].clone();
                    let assignments = group
                        .members
                        .iter()
                        .map(|m| (m.member_id.clone(), format!("{}@{}", m.member_id, group.generation).into_bytes()))
                        .collect();
                    let request = SyncRequest {
                        member_id: client.member_id.clone(),
                        generation: client.generation,
                        assignments,
                        ..Default::default()
                    };
                    if let SyncOutcome::Assigned(assignment) = group.sync(request, now) {
                        // Every member that synced in a stable generation gets exactly what
                        // the leader gave it.
                        let expected = format!("{}@{}", client.member_id, group.generation).into_bytes();
                        let static_carried = group.member(&client.member_id).is_some_and(|m| m.instance_id.is_some());
                        prop_assert!(assignment == expected || static_carried, "{:?}", group);
                    }
                    check_invariants(&group, before);
                    continue;
                }
                Step::Heartbeat { who } => {
                    let client = clients[who].clone();
                    group.tick(now);
                    check_invariants(&group, before);
                    let before = group.generation;
                    let _ = group.heartbeat(&client.member_id, None, client.generation, now);
                    check_invariants(&group, before);
                    continue;
                }
                Step::Leave { who } => {
                    group.tick(now);
                    check_invariants(&group, before);
                    let before = group.generation;
                    let member_id = clients[who].member_id.clone();
                    group.leave(&[LeaveMember { member_id, instance_id: None }], now);
                    clients[who] = Client::default();
                    check_invariants(&group, before);
                    continue;
                }
            }
            check_invariants(&group, before);
        }
    }
}
