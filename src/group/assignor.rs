//! Server-side assignors of the consumer protocol (KIP-848): pure functions from members,
//! their subscriptions and the current assignment to a target assignment.
//!
//! `uniform` balances every topic's partitions over the members subscribed to it and keeps
//! each partition where it is whenever that stays balanced (sticky); `range` gives each
//! subscribed member a contiguous range of every topic, members ordered by id.

use std::collections::{BTreeMap, BTreeSet};

/// Partitions by topic id.
pub type Assignment = BTreeMap<uuid::Uuid, BTreeSet<i32>>;

pub const UNIFORM: &str = "uniform";
pub const RANGE: &str = "range";
pub const ASSIGNORS: &[&str] = &[UNIFORM, RANGE];

pub struct MemberSubscription<'a> {
    pub id: &'a str,
    pub topics: &'a BTreeSet<uuid::Uuid>,
    pub current: &'a Assignment,
}

/// Target assignment per member id. `partitions` gives each topic's partition count.
pub fn assign(
    assignor: &str,
    members: &[MemberSubscription<'_>],
    partitions: &BTreeMap<uuid::Uuid, i32>,
) -> BTreeMap<String, Assignment> {
    let mut target: BTreeMap<String, Assignment> =
        members.iter().map(|m| (m.id.to_string(), Assignment::new())).collect();
    for (&topic, &count) in partitions {
        let mut subscribers: Vec<&MemberSubscription<'_>> =
            members.iter().filter(|m| m.topics.contains(&topic)).collect();
        if subscribers.is_empty() || count <= 0 {
            continue;
        }
        subscribers.sort_by_key(|m| m.id);
        let shares = if assignor == RANGE {
            range(&subscribers, count)
        } else {
            uniform(topic, &subscribers, count)
        };
        for (member, share) in subscribers.iter().zip(shares) {
            if !share.is_empty() {
                target
                    .get_mut(member.id)
                    .expect("every member has a target")
                    .insert(topic, share);
            }
        }
    }
    target
}

fn range(subscribers: &[&MemberSubscription<'_>], count: i32) -> Vec<BTreeSet<i32>> {
    let n = subscribers.len() as i32;
    let (base, extra) = (count / n, count % n);
    let mut start = 0;
    (0..n)
        .map(|i| {
            let size = base + i32::from(i < extra);
            let share = (start..start + size).collect();
            start += size;
            share
        })
        .collect()
}

fn uniform(topic: uuid::Uuid, subscribers: &[&MemberSubscription<'_>], count: i32) -> Vec<BTreeSet<i32>> {
    let n = subscribers.len();
    let (base, extra) = (count as usize / n, count as usize % n);
    // Members already holding more of this topic get the extra slots, so fewer partitions move.
    let mut order: Vec<usize> = (0..n).collect();
    let held = |i: usize| subscribers[i].current.get(&topic).map_or(0, BTreeSet::len);
    order.sort_by_key(|&i| (std::cmp::Reverse(held(i)), i));
    let mut quota = vec![base; n];
    for &i in order.iter().take(extra) {
        quota[i] += 1;
    }
    let mut shares: Vec<BTreeSet<i32>> = vec![BTreeSet::new(); n];
    let mut taken = BTreeSet::new();
    for (i, member) in subscribers.iter().enumerate() {
        if let Some(current) = member.current.get(&topic) {
            for &p in current.iter().filter(|&&p| p < count) {
                if shares[i].len() < quota[i] && taken.insert(p) {
                    shares[i].insert(p);
                }
            }
        }
    }
    let mut free = (0..count).filter(|p| !taken.contains(p));
    for i in 0..n {
        while shares[i].len() < quota[i] {
            match free.next() {
                Some(p) => {
                    shares[i].insert(p);
                }
                None => break,
            }
        }
    }
    shares
}

#[cfg(test)]
mod tests {
    use super::*;

    const T: uuid::Uuid = uuid::Uuid::from_u128(1);

    fn subscription<'a>(
        id: &'a str,
        topics: &'a BTreeSet<uuid::Uuid>,
        current: &'a Assignment,
    ) -> MemberSubscription<'a> {
        MemberSubscription { id, topics, current }
    }

    #[test]
    fn range_gives_contiguous_ranges_in_member_order() {
        let topics = BTreeSet::from([T]);
        let none = Assignment::new();
        let members = [subscription("b", &topics, &none), subscription("a", &topics, &none)];
        let target = assign(RANGE, &members, &BTreeMap::from([(T, 5)]));
        assert_eq!(target["a"][&T], BTreeSet::from([0, 1, 2]));
        assert_eq!(target["b"][&T], BTreeSet::from([3, 4]));
    }

    #[test]
    fn uniform_is_balanced_and_sticky() {
        let topics = BTreeSet::from([T]);
        let a_now: Assignment = BTreeMap::from([(T, BTreeSet::from([0, 1, 2, 3, 4, 5]))]);
        let b_now: Assignment = BTreeMap::from([(T, BTreeSet::from([6, 7, 8, 9, 10, 11]))]);
        let none = Assignment::new();
        let members = [
            subscription("a", &topics, &a_now),
            subscription("b", &topics, &b_now),
            subscription("c", &topics, &none),
        ];
        let target = assign(UNIFORM, &members, &BTreeMap::from([(T, 12)]));
        let sizes: Vec<usize> = ["a", "b", "c"].iter().map(|m| target[*m][&T].len()).collect();
        assert_eq!(sizes, vec![4, 4, 4]);
        assert!(target["a"][&T].is_subset(&a_now[&T]), "a keeps partitions it had");
        assert!(target["b"][&T].is_subset(&b_now[&T]), "b keeps partitions it had");
        let all: BTreeSet<i32> = target.values().flat_map(|t| t[&T].iter().copied()).collect();
        assert_eq!(all.len(), 12, "every partition assigned once");
    }

    #[test]
    fn only_subscribers_get_a_topic() {
        let (with, without) = (BTreeSet::from([T]), BTreeSet::new());
        let none = Assignment::new();
        let members = [subscription("a", &with, &none), subscription("b", &without, &none)];
        let target = assign(UNIFORM, &members, &BTreeMap::from([(T, 3)]));
        assert_eq!(target["a"][&T].len(), 3);
        assert!(target["b"].is_empty());
    }
}
