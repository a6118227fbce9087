//! A map from a partition ([`TopicId`] and [`PartitionId`]) to what a shard keeps for it: the
//! open logs, the partitions refused as offline. Keyed by id, so a topic deleted and created
//! again under its name is never mistaken for the old one; looked up on every produce and
//! fetch, allocating nothing.

use std::collections::{BTreeMap, HashMap};

use crate::ids::{PartitionId, TopicId};

pub struct PartitionMap<V> {
    topics: HashMap<TopicId, BTreeMap<PartitionId, V>>,
    len: usize,
}

impl<V> Default for PartitionMap<V> {
    fn default() -> Self {
        PartitionMap {
            topics: HashMap::new(),
            len: 0,
        }
    }
}

impl<V> PartitionMap<V> {
    pub fn get(&self, topic: TopicId, partition: PartitionId) -> Option<&V> {
        self.topics.get(&topic)?.get(&partition)
    }

    pub fn get_mut(&mut self, topic: TopicId, partition: PartitionId) -> Option<&mut V> {
        self.topics.get_mut(&topic)?.get_mut(&partition)
    }

    /// Every entry with its key.
    pub fn iter(&self) -> impl Iterator<Item = (TopicId, PartitionId, &V)> {
        self.topics
            .iter()
            .flat_map(|(topic, partitions)| partitions.iter().map(move |(p, v)| (*topic, *p, v)))
    }

    pub fn contains(&self, topic: TopicId, partition: PartitionId) -> bool {
        self.get(topic, partition).is_some()
    }

    /// Sets the value of `topic`-`partition`; the one it replaced, if any.
    pub fn insert(&mut self, topic: TopicId, partition: PartitionId, value: V) -> Option<V> {
        let partitions = self.topics.entry(topic).or_default();
        let replaced = partitions.insert(partition, value);
        if replaced.is_none() {
            self.len += 1;
        }
        replaced
    }

    pub fn remove(&mut self, topic: TopicId, partition: PartitionId) -> Option<V> {
        let partitions = self.topics.get_mut(&topic)?;
        let removed = partitions.remove(&partition)?;
        if partitions.is_empty() {
            self.topics.remove(&topic);
        }
        self.len -= 1;
        Some(removed)
    }

    /// Keeps only the partitions of topics for which `keep` holds.
    pub fn retain_topics(&mut self, mut keep: impl FnMut(TopicId) -> bool) {
        self.topics.retain(|topic, _| keep(*topic));
        self.len = self.topics.values().map(BTreeMap::len).sum();
    }

    /// Keeps only the partitions for which `keep` holds.
    pub fn retain(&mut self, mut keep: impl FnMut(TopicId, PartitionId) -> bool) {
        for (topic, partitions) in self.topics.iter_mut() {
            partitions.retain(|partition, _| keep(*topic, *partition));
        }
        self.topics.retain(|_, partitions| !partitions.is_empty());
        self.len = self.topics.values().map(BTreeMap::len).sum();
    }

    pub fn len(&self) -> usize {
        self.len
    }

    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    pub fn values(&self) -> impl Iterator<Item = &V> {
        self.topics.values().flat_map(BTreeMap::values)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn inserts_lookups_and_removals_keep_the_count() {
        let (orders, audit, missing) = (
            TopicId(uuid::Uuid::from_u128(1)),
            TopicId(uuid::Uuid::from_u128(2)),
            TopicId(uuid::Uuid::from_u128(3)),
        );
        let mut map = PartitionMap::default();
        assert!(map.insert(orders, PartitionId(0), 'a').is_none());
        assert!(map.insert(orders, PartitionId(1), 'b').is_none());
        assert_eq!(map.insert(orders, PartitionId(1), 'c'), Some('b'));
        assert!(map.insert(audit, PartitionId(0), 'd').is_none());
        assert_eq!(map.len(), 3);
        assert_eq!(map.get(orders, PartitionId(1)), Some(&'c'));
        assert!(!map.contains(orders, PartitionId(2)));
        assert!(!map.contains(missing, PartitionId(0)));
        assert_eq!(map.remove(orders, PartitionId(0)), Some('a'));
        assert_eq!(map.remove(orders, PartitionId(0)), None);
        assert_eq!(map.len(), 2);
        map.retain_topics(|topic| topic != orders);
        assert_eq!(map.len(), 1);
        assert_eq!(map.values().copied().collect::<Vec<_>>(), vec!['d']);
        assert_eq!(map.remove(audit, PartitionId(0)), Some('d'));
        assert!(map.is_empty());
    }
}
