//! Transitions of the classic state machine, driven with explicit times.

use std::time::{Duration, Instant};

use bytes::Bytes;
use futures::channel::oneshot;

use super::*;

const LIMITS: GroupLimits = GroupLimits {
    initial_rebalance_delay: Duration::from_millis(100),
    min_session_timeout: Duration::from_millis(10),
    max_session_timeout: Duration::from_secs(600),
};
const SESSION: Duration = Duration::from_secs(10);
const REBALANCE: Duration = Duration::from_secs(30);

fn request(member_id: &str, instance_id: Option<&str>) -> JoinRequest {
    JoinRequest {
        member_id: member_id.to_string(),
        instance_id: instance_id.map(str::to_string),
        client_id: "client".into(),
        client_host: "/127.0.0.1".into(),
        session_timeout: SESSION,
        rebalance_timeout: REBALANCE,
        protocol_type: "consumer".into(),
        protocols: vec![
            ("range".into(), Bytes::from_static(b"r")),
            ("roundrobin".into(), Bytes::new()),
        ],
        require_known_member_id: true,
        supports_skip_assignment: false,
    }
}

fn now_answer<T>(reply: Reply<T>) -> T {
    match reply {
        Reply::Now(answer) => answer,
        Reply::Later(_) => panic!("expected an immediate answer"),
    }
}

fn later<T>(reply: Reply<T>) -> oneshot::Receiver<T> {
    match reply {
        Reply::Later(receiver) => receiver,
        Reply::Now(_) => panic!("expected to wait"),
    }
}

fn answered<T>(receiver: &mut oneshot::Receiver<T>) -> T {
    receiver.try_recv().expect("not cancelled").expect("answered by now")
}

/// The answer if it has come (the receiver then holds nothing more).
fn try_answer<T>(receiver: &mut oneshot::Receiver<T>) -> Option<T> {
    receiver.try_recv().expect("not cancelled")
}

fn waiting<T>(receiver: &mut oneshot::Receiver<T>) -> bool {
    matches!(receiver.try_recv(), Ok(None))
}

/// Joins a member by the v4+ two-step handshake; returns its id and its pending join.
fn join(group: &mut Group, now: Instant) -> (String, oneshot::Receiver<JoinOutcome>) {
    let first = now_answer(group.join(request("", None), now, 0, &LIMITS));
    assert_eq!(first.error, Some(KafkaCode::MemberIdRequired));
    let id = first.member_id;
    let waiting = later(group.join(request(&id, None), now, 0, &LIMITS));
    (id, waiting)
}

fn join_static(group: &mut Group, instance: &str, now: Instant) -> oneshot::Receiver<JoinOutcome> {
    later(group.join(request("", Some(instance)), now, 0, &LIMITS))
}

/// The leader hands in `assignments` and the generation is persisted.
fn assign(group: &mut Group, leader: &str, assignments: &[(&str, &'static [u8])], now: Instant) -> SyncOutcome {
    let generation = group.generation;
    let assignments = assignments
        .iter()
        .map(|(m, a)| (m.to_string(), Bytes::from_static(a)))
        .collect();
    let (reply, assignment) = group.sync(leader, None, generation, assignments);
    let assignment = assignment.expect("the leader's sync hands in the assignment");
    assert!(group.assignment_persisted(assignment, Ok(()), now, 0, &LIMITS));
    answered(&mut later(reply))
}

/// A group of one member `a` at generation 1, Stable.
fn stable_single(t0: Instant) -> (Group, String) {
    let mut group = Group::new("g", 0);
    let (a, _) = join(&mut group, t0);
    group.tick(t0 + LIMITS.initial_rebalance_delay, 0, &LIMITS);
    assign(&mut group, &a, &[(&a, b"A")], t0);
    assert_eq!((group.state, group.generation), (GroupState::Stable, 1));
    (group, a)
}

#[test]
fn a_forming_group_waits_out_the_initial_delay_then_elects_a_leader() {
    let t0 = Instant::now();
    let mut group = Group::new("g", 0);
    let (a, mut a_join) = join(&mut group, t0);
    let (b, mut b_join) = join(&mut group, t0);
    assert_eq!(group.state, GroupState::PreparingRebalance);
    assert!(waiting(&mut a_join), "still inside the initial delay");
    assert!(group.tick(t0 + LIMITS.initial_rebalance_delay, 0, &LIMITS));
    let (a_out, b_out) = (answered(&mut a_join), answered(&mut b_join));
    assert_eq!((a_out.generation, a_out.protocol.as_deref()), (1, Some("range")));
    assert_eq!(a_out.leader, a);
    assert_eq!(a_out.members.len(), 2, "the leader sees every member");
    assert!(b_out.members.is_empty(), "followers do not");
    assert_eq!(group.state, GroupState::CompletingRebalance);

    let mut b_sync = later(group.sync(&b, None, 1, Vec::new()).0);
    let a_assignment = assign(&mut group, &a, &[(&a, b"A"), (&b, b"B")], t0);
    assert_eq!(a_assignment.assignment, Bytes::from_static(b"A"));
    assert_eq!(answered(&mut b_sync).assignment, Bytes::from_static(b"B"));
    assert_eq!(group.state, GroupState::Stable);
}

#[test]
fn followers_wait_until_the_assignment_is_persisted() {
    let t0 = Instant::now();
    let mut group = Group::new("g", 0);
    let (a, _) = join(&mut group, t0);
    let (b, _) = join(&mut group, t0);
    group.tick(t0 + LIMITS.initial_rebalance_delay, 0, &LIMITS);
    let mut b_sync = later(group.sync(&b, None, 1, Vec::new()).0);
    let (reply, assignment) = group.sync(&a, None, 1, vec![(b.clone(), Bytes::from_static(b"B"))]);
    let mut a_sync = later(reply);
    assert!(
        waiting(&mut b_sync) && waiting(&mut a_sync),
        "nothing is handed out before it is durable"
    );
    assert_eq!(group.state, GroupState::CompletingRebalance);
    // A repeated SyncGroup from the leader does not hand the assignment in twice.
    let (_again, twice) = group.sync(&a, None, 1, Vec::new());
    assert!(twice.is_none());
    assert!(group.assignment_persisted(assignment.unwrap(), Ok(()), t0, 0, &LIMITS));
    assert_eq!(answered(&mut b_sync).assignment, Bytes::from_static(b"B"));
    assert_eq!(group.state, GroupState::Stable);
}

#[test]
fn a_failed_persist_fails_the_sync_and_rebalances() {
    let t0 = Instant::now();
    let mut group = Group::new("g", 0);
    let (a, _) = join(&mut group, t0);
    group.tick(t0 + LIMITS.initial_rebalance_delay, 0, &LIMITS);
    let (reply, assignment) = group.sync(&a, None, 1, vec![(a.clone(), Bytes::from_static(b"A"))]);
    assert!(!group.assignment_persisted(assignment.unwrap(), Err(KafkaCode::NotCoordinator), t0, 0, &LIMITS));
    assert_eq!(answered(&mut later(reply)).error, Some(KafkaCode::NotCoordinator));
    assert_eq!(group.state, GroupState::PreparingRebalance);
}

#[test]
fn an_assignment_for_a_generation_left_behind_is_dropped() {
    let t0 = Instant::now();
    let mut group = Group::new("g", 0);
    let (a, _) = join(&mut group, t0);
    group.tick(t0 + LIMITS.initial_rebalance_delay, 0, &LIMITS);
    let (reply, assignment) = group.sync(&a, None, 1, vec![(a.clone(), Bytes::from_static(b"A"))]);
    // A new member joins while generation 1 is being persisted.
    let (_b, _b_join) = join(&mut group, t0);
    assert_eq!(answered(&mut later(reply)).error, Some(KafkaCode::RebalanceInProgress));
    assert!(!group.assignment_persisted(assignment.unwrap(), Ok(()), t0, 0, &LIMITS));
    assert_eq!(group.state, GroupState::PreparingRebalance);
    assert!(group.members[&a].assignment.is_empty());
}

#[test]
fn a_new_member_makes_the_others_rejoin_and_heartbeats_say_so() {
    let t0 = Instant::now();
    let (mut group, a) = stable_single(t0);
    let (b, mut b_join) = join(&mut group, t0);
    assert_eq!(group.state, GroupState::PreparingRebalance);
    assert_eq!(group.heartbeat(&a, None, 1, t0), Some(KafkaCode::RebalanceInProgress));
    assert_eq!(group.heartbeat(&a, None, 7, t0), Some(KafkaCode::IllegalGeneration));
    assert_eq!(group.heartbeat("nobody", None, 1, t0), Some(KafkaCode::UnknownMemberId));
    assert!(waiting(&mut b_join), "the new generation waits for the old member");
    // Once the old member rejoins, everyone is in: no waiting for a deadline.
    let mut a_join = later(group.join(request(&a, None), t0, 0, &LIMITS));
    let (a_out, b_out) = (answered(&mut a_join), answered(&mut b_join));
    assert_eq!((a_out.generation, b_out.generation), (2, 2));
    assert_eq!(a_out.leader, a, "the leader that rejoined stays the leader");
    assert_eq!(a_out.members.len(), 2);
    assert_eq!(group.heartbeat(&b, None, 2, t0), None);
}

#[test]
fn heartbeats_keep_an_old_member_during_a_rebalance_and_no_deadline_stays_due() {
    let t0 = Instant::now();
    let (mut group, a) = stable_single(t0);
    let (_b, mut b_join) = join(&mut group, t0);
    // a heartbeats (but does not rejoin) well past b's and its own session timeouts; b waits
    // on its join, which needs no heartbeat. Every tick leaves nothing due (tick asserts it),
    // so the coordinator's timer sleeps instead of spinning.
    let mut now = t0;
    while now < t0 + 2 * SESSION {
        now += SESSION / 4;
        assert_eq!(group.heartbeat(&a, None, 1, now), Some(KafkaCode::RebalanceInProgress));
        assert!(!group.tick(now, 0, &LIMITS), "nothing changes while a heartbeats");
        assert!(group.next_deadline().unwrap() > now);
    }
    assert!(waiting(&mut b_join));
    assert_eq!(group.members.len(), 2);
    let mut a_join = later(group.join(request(&a, None), now, 0, &LIMITS));
    assert_eq!(answered(&mut a_join).generation, 2, "one more generation, not two");
}

#[test]
fn an_old_member_that_goes_silent_during_a_rebalance_is_removed_by_its_session() {
    let t0 = Instant::now();
    let (mut group, a) = stable_single(t0);
    let (b, mut b_join) = join(&mut group, t0);
    assert!(group.tick(t0 + SESSION, 0, &LIMITS));
    assert!(!group.members.contains_key(&a));
    let b_out = answered(&mut b_join);
    assert_eq!((b_out.generation, b_out.leader), (2, b));
}

#[test]
fn a_dynamic_member_that_does_not_rejoin_in_time_is_dropped() {
    let t0 = Instant::now();
    let (mut group, a) = stable_single(t0);
    let (b, mut b_join) = join(&mut group, t0);
    let mut now = t0;
    while now < t0 + REBALANCE {
        now += SESSION / 2;
        group.heartbeat(&a, None, 1, now);
        group.tick(now, 0, &LIMITS);
    }
    assert!(!group.members.contains_key(&a), "a never rejoined");
    assert_eq!(answered(&mut b_join).leader, b);
}

#[test]
fn a_follower_rejoining_unchanged_keeps_the_generation_but_the_leader_rebalances() {
    let t0 = Instant::now();
    let mut group = Group::new("g", 0);
    let (a, _) = join(&mut group, t0);
    let (b, _) = join(&mut group, t0);
    group.tick(t0 + LIMITS.initial_rebalance_delay, 0, &LIMITS);
    let _b_sync = group.sync(&b, None, 1, Vec::new());
    assign(&mut group, &a, &[(&a, b"A"), (&b, b"B")], t0);

    // b missed its answers and joins again: same generation, same assignment.
    let again = now_answer(group.join(request(&b, None), t0, 0, &LIMITS));
    assert_eq!(
        (again.error, again.generation, again.leader.as_str()),
        (None, 1, a.as_str())
    );
    assert_eq!(group.state, GroupState::Stable);
    let (reply, _) = group.sync(&b, None, 1, Vec::new());
    assert_eq!(now_answer(reply).assignment, Bytes::from_static(b"B"));

    // A changed subscription rebalances.
    let mut changed = request(&b, None);
    changed.protocols[0].1 = Bytes::from_static(b"other topics");
    let _b_join = later(group.join(changed, t0, 0, &LIMITS));
    assert_eq!(group.state, GroupState::PreparingRebalance);
    let mut a_join = later(group.join(request(&a, None), t0, 0, &LIMITS));
    assert_eq!(answered(&mut a_join).generation, 2);
    // The leader rejoining a Stable group rebalances too.
    assign(&mut group, &a, &[], t0);
    let _a_again = later(group.join(request(&a, None), t0, 0, &LIMITS));
    assert_eq!(group.state, GroupState::PreparingRebalance);
}

#[test]
fn a_new_static_member_triggers_a_rebalance_the_old_ones_hear_of() {
    let t0 = Instant::now();
    let mut group = Group::new("g", 0);
    let mut first = join_static(&mut group, "alpha", t0);
    group.tick(t0 + LIMITS.initial_rebalance_delay, 0, &LIMITS);
    let alpha = answered(&mut first).member_id;
    assign(&mut group, &alpha, &[(&alpha, b"0,1")], t0);

    let mut beta_join = join_static(&mut group, "beta", t0);
    assert_eq!(group.state, GroupState::PreparingRebalance);
    assert_eq!(
        group.heartbeat(&alpha, Some("alpha"), 1, t0),
        Some(KafkaCode::RebalanceInProgress)
    );
    assert!(waiting(&mut beta_join), "no assignment before alpha rejoins");
    let mut alpha_join = later(group.join(request(&alpha, Some("alpha")), t0, 0, &LIMITS));
    let (alpha_out, beta_out) = (answered(&mut alpha_join), answered(&mut beta_join));
    assert_eq!((alpha_out.generation, beta_out.generation), (2, 2));
    assert_eq!(alpha_out.members.len(), 2);
    assert!(beta_out.member_id.starts_with("beta-"), "Kafka's static member ids");
}

#[test]
fn a_static_member_that_does_not_rejoin_keeps_its_place() {
    let t0 = Instant::now();
    let mut group = Group::new("g", 0);
    let mut first = join_static(&mut group, "alpha", t0);
    let (b, _) = join(&mut group, t0);
    group.tick(t0 + LIMITS.initial_rebalance_delay, 0, &LIMITS);
    let alpha = answered(&mut first).member_id;
    let _b_sync = group.sync(&b, None, 1, Vec::new());
    assign(&mut group, &alpha, &[(&alpha, b"A"), (&b, b"B")], t0);

    // b rejoins as the leader would ask; alpha stays silent past the rebalance timeout (but
    // within its session, which b's heartbeats do not touch).
    let (c, mut c_join) = join(&mut group, t0);
    let mut b_join = later(group.join(request(&b, None), t0, 0, &LIMITS));
    let mut now = t0;
    let b_out = loop {
        now += SESSION / 4;
        group.heartbeat(&alpha, Some("alpha"), 1, now);
        group.tick(now, 0, &LIMITS);
        if let Some(outcome) = try_answer(&mut b_join) {
            break outcome;
        }
    };
    assert_eq!(b_out.generation, 2);
    assert_eq!(b_out.leader, b, "the leader must be a member that rejoined");
    let roster: Vec<&str> = b_out.members.iter().map(|(id, _, _)| id.as_str()).collect();
    assert_eq!(roster.len(), 3, "alpha keeps its place: {roster:?}");
    assert!(roster.contains(&alpha.as_str()) && roster.contains(&c.as_str()));
    answered(&mut c_join);

    // alpha learns it is behind, rejoins with what it had, and gets the generation.
    assert_eq!(
        group.heartbeat(&alpha, Some("alpha"), 1, now),
        Some(KafkaCode::IllegalGeneration)
    );
    let rejoined = now_answer(group.join(request(&alpha, Some("alpha")), now, 0, &LIMITS));
    assert_eq!((rejoined.error, rejoined.generation), (None, 2));
}

#[test]
fn a_restarted_static_member_takes_over_without_a_new_generation() {
    let t0 = Instant::now();
    let mut group = Group::new("g", 0);
    let mut first = join_static(&mut group, "alpha", t0);
    group.tick(t0 + LIMITS.initial_rebalance_delay, 0, &LIMITS);
    let old_id = answered(&mut first).member_id;
    assign(&mut group, &old_id, &[(&old_id, b"mine")], t0);

    // The same instance restarts with another subscription order but the same protocol.
    let mut restarted = request("", Some("alpha"));
    restarted.protocols[0].1 = Bytes::from_static(b"owned partitions changed");
    let rejoined = now_answer(group.join(restarted, t0, 0, &LIMITS));
    assert_eq!((rejoined.error, rejoined.generation), (None, 1));
    assert_ne!(rejoined.member_id, old_id);
    assert_eq!(
        rejoined.leader, old_id,
        "before v9 the restarted leader is told the old incarnation leads, so it just syncs"
    );
    let (reply, _) = group.sync(&rejoined.member_id, Some("alpha"), 1, Vec::new());
    assert_eq!(now_answer(reply).assignment, Bytes::from_static(b"mine"));
    assert_eq!(
        group.heartbeat(&old_id, Some("alpha"), 1, t0),
        Some(KafkaCode::FencedInstanceId)
    );
    assert_eq!(group.leader.as_deref(), Some(rejoined.member_id.as_str()));

    // v9+: the restarted leader learns the members and is told to skip the assignment.
    let mut v9 = request("", Some("alpha"));
    v9.supports_skip_assignment = true;
    let rejoined = now_answer(group.join(v9, t0, 0, &LIMITS));
    assert_eq!(rejoined.leader, rejoined.member_id);
    assert!(rejoined.skip_assignment);
    assert_eq!(rejoined.members.len(), 1);
    assert_eq!((group.state, group.generation), (GroupState::Stable, 1));
}

#[test]
fn a_static_member_restarting_mid_sync_fences_the_old_one_and_rebalances() {
    let t0 = Instant::now();
    let mut group = Group::new("g", 0);
    let mut first = join_static(&mut group, "alpha", t0);
    let (b, _) = join(&mut group, t0);
    group.tick(t0 + LIMITS.initial_rebalance_delay, 0, &LIMITS);
    let old_id = answered(&mut first).member_id;
    let mut old_sync = later(group.sync(&old_id, Some("alpha"), 1, Vec::new()).0);
    let _restart = join_static(&mut group, "alpha", t0);
    assert_eq!(answered(&mut old_sync).error, Some(KafkaCode::FencedInstanceId));
    assert_eq!(group.state, GroupState::PreparingRebalance);
    assert_eq!(
        group.sync(&b, None, 1, Vec::new()).0.now().error,
        Some(KafkaCode::RebalanceInProgress)
    );
}

#[test]
fn members_that_never_sync_are_removed_after_the_rebalance_timeout() {
    let t0 = Instant::now();
    let mut group = Group::new("g", 0);
    let (a, _) = join(&mut group, t0);
    let (b, _) = join(&mut group, t0);
    let t1 = t0 + LIMITS.initial_rebalance_delay;
    group.tick(t1, 0, &LIMITS);
    // b's session is kept by its heartbeats, but it never sends SyncGroup.
    group.heartbeat(&b, None, 1, t1 + SESSION / 2);
    assign(&mut group, &a, &[(&a, b"A"), (&b, b"B")], t1);
    let mut now = t1;
    while group.members.contains_key(&b) {
        now += SESSION / 2;
        group.heartbeat(&a, None, 1, now);
        group.heartbeat(&b, None, 1, now);
        group.tick(now, 0, &LIMITS);
        assert!(now <= t1 + REBALANCE + SESSION, "b was never removed");
    }
    assert!(now >= t1 + REBALANCE);
    assert_eq!(group.state, GroupState::PreparingRebalance);
}

#[test]
fn a_follower_whose_leader_never_syncs_is_told_to_rejoin_and_keeps_its_session() {
    let t0 = Instant::now();
    let mut group = Group::new("g", 0);
    let (a, _) = join(&mut group, t0);
    let (b, _) = join(&mut group, t0);
    let t1 = t0 + LIMITS.initial_rebalance_delay;
    group.tick(t1, 0, &LIMITS);
    // b waits on its sync past its session timeout: its request keeps it alive. The leader
    // never syncs and is removed at the rebalance timeout; b's sync fails, and its session
    // starts again then (else its old deadline would already have passed).
    let mut b_sync = later(group.sync(&b, None, 1, Vec::new()).0);
    let t2 = t1 + REBALANCE;
    assert!(group.tick(t2, 0, &LIMITS));
    assert!(!group.members.contains_key(&a));
    assert_eq!(answered(&mut b_sync).error, Some(KafkaCode::RebalanceInProgress));
    assert!(group.members.contains_key(&b));
    assert_eq!(group.next_deadline(), Some(t2 + SESSION));
    let mut b_join = later(group.join(request(&b, None), t2, 0, &LIMITS));
    assert_eq!(answered(&mut b_join).leader, b);
}

#[test]
fn a_new_member_that_never_completes_its_join_is_dropped() {
    let t0 = Instant::now();
    let (mut group, a) = stable_single(t0);
    let mut slow = request("", None);
    slow.rebalance_timeout = NEW_MEMBER_JOIN_TIMEOUT * 2;
    let first = now_answer(group.join(slow, t0, 0, &LIMITS));
    let mut slow = request(&first.member_id, None);
    slow.rebalance_timeout = NEW_MEMBER_JOIN_TIMEOUT * 2;
    let mut b_join = later(group.join(slow, t0, 0, &LIMITS));
    let mut now = t0;
    let outcome = loop {
        now += SESSION / 2;
        group.heartbeat(&a, None, 1, now);
        group.tick(now, 0, &LIMITS);
        if let Some(outcome) = try_answer(&mut b_join) {
            break outcome;
        }
    };
    assert_eq!(outcome.error, Some(KafkaCode::UnknownMemberId));
    assert!(now >= t0 + NEW_MEMBER_JOIN_TIMEOUT);
    assert_eq!(group.members.len(), 1);
}

#[test]
fn a_replaced_static_member_is_fenced_and_leaving_by_instance_id_works() {
    let t0 = Instant::now();
    let mut group = Group::new("g", 0);
    let mut first = join_static(&mut group, "alpha", t0);
    group.tick(t0 + LIMITS.initial_rebalance_delay, 0, &LIMITS);
    let old_id = answered(&mut first).member_id;
    assign(&mut group, &old_id, &[(&old_id, b"mine")], t0);
    let rejoined = now_answer(group.join(request("", Some("alpha")), t0, 0, &LIMITS));
    assert_eq!(
        group.leave(&old_id, Some("alpha"), t0, 0, &LIMITS),
        Some(KafkaCode::FencedInstanceId)
    );
    assert_eq!(
        group.commit_error(&old_id, Some("alpha"), 1),
        Some(KafkaCode::FencedInstanceId)
    );
    assert_eq!(group.commit_error(&rejoined.member_id, Some("alpha"), 1), None);
    assert_eq!(group.leave("", Some("alpha"), t0, 0, &LIMITS), None);
    assert_eq!(group.state, GroupState::Empty);
    assert_eq!(
        group.commit_error("", None, -1),
        None,
        "a simple commit to an empty group"
    );
}

#[test]
fn commits_follow_kafkas_rules() {
    let t0 = Instant::now();
    let (mut group, a) = stable_single(t0);
    assert_eq!(group.commit_error(&a, None, 1), None);
    assert_eq!(group.commit_error(&a, None, 0), Some(KafkaCode::IllegalGeneration));
    assert_eq!(group.commit_error("", None, -1), Some(KafkaCode::UnknownMemberId));
    let (_b, _b_join) = join(&mut group, t0);
    assert_eq!(
        group.commit_error(&a, None, 1),
        None,
        "the old generation commits while preparing"
    );
    let _a_join = group.join(request(&a, None), t0, 0, &LIMITS);
    assert_eq!(group.state, GroupState::CompletingRebalance);
    assert_eq!(group.commit_error(&a, None, 2), Some(KafkaCode::RebalanceInProgress));
}

#[test]
fn protocols_must_be_shared_and_sessions_in_range() {
    let t0 = Instant::now();
    let mut group = Group::new("g", 0);
    let _first = join(&mut group, t0);
    let mut other = request("", None);
    other.protocols = vec![("cooperative-sticky".into(), Bytes::new())];
    assert_eq!(
        now_answer(group.join(other, t0, 0, &LIMITS)).error,
        Some(KafkaCode::InconsistentGroupProtocol)
    );
    let mut short = request("", None);
    short.session_timeout = Duration::from_millis(1);
    assert_eq!(
        now_answer(group.join(short, t0, 0, &LIMITS)).error,
        Some(KafkaCode::InvalidSessionTimeout)
    );
}

#[test]
fn a_zero_rebalance_timeout_does_not_leave_a_deadline_due() {
    let t0 = Instant::now();
    let (mut group, a) = stable_single(t0);
    let mut zero = request(&a, None);
    zero.rebalance_timeout = Duration::ZERO;
    let _rejoin = group.join(zero, t0, 0, &LIMITS);
    assert!(group.next_deadline().unwrap() > t0);
}

#[test]
#[should_panic(expected = "is not one of its")]
fn a_leader_outside_the_group_is_caught() {
    let (mut group, _a) = stable_single(Instant::now());
    group.leader = Some("ghost".into());
    group.check_invariants();
}

impl<T> Reply<T> {
    fn now(self) -> T {
        now_answer(self)
    }
}
