//! Which shard owns a partition: a pure function of the topic id, the partition and the shard
//! count. The result is recorded in topic metadata at creation, so it is stable across
//! restarts; a change of shard count re-places every partition explicitly at start-up.

use crate::ids::{PartitionId, ShardId};

/// FNV-1a, 64-bit: small, stable forever, and independent of Rust's hasher choices.
pub fn fnv1a64(bytes: &[u8]) -> u64 {
    let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
    for &byte in bytes {
        hash ^= u64::from(byte);
        hash = hash.wrapping_mul(0x0000_0100_0000_01b3);
    }
    hash
}

/// Consecutive partitions of a topic go to consecutive shards, starting from a shard chosen
/// by the topic id, so many small topics do not all pile onto shard 0.
pub fn place(topic_id: uuid::Uuid, partition: PartitionId, shard_count: usize) -> ShardId {
    assert!(shard_count > 0, "placing onto zero shards");
    assert!(partition.0 >= 0, "negative partition {partition}");
    let start = (fnv1a64(topic_id.as_bytes()) % shard_count as u64) as usize;
    ShardId((start + partition.0 as usize) % shard_count)
}

/// Placement of every partition of a topic.
pub fn place_topic(topic_id: uuid::Uuid, partitions: i32, shard_count: usize) -> Vec<ShardId> {
    (0..partitions)
        .map(|p| place(topic_id, PartitionId(p), shard_count))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    const TOPIC: uuid::Uuid = uuid::Uuid::from_u128(0x0123_4567_89ab_cdef_0123_4567_89ab_cdef);

    /// Golden vectors: placement is persisted, so these must never change.
    #[test]
    fn placement_golden_vectors() {
        assert_eq!(fnv1a64(b""), 0xcbf2_9ce4_8422_2325);
        assert_eq!(fnv1a64(b"a"), 0xaf63_dc4c_8601_ec8c);
        assert_eq!(fnv1a64(TOPIC.as_bytes()), 0x3d53_a237_62e9_e0a5);
        let shards = |count| -> Vec<usize> { place_topic(TOPIC, 6, count).into_iter().map(|s| s.0).collect() };
        assert_eq!(shards(1), [0, 0, 0, 0, 0, 0]);
        assert_eq!(shards(2), [1, 0, 1, 0, 1, 0]);
        assert_eq!(shards(3), [1, 2, 0, 1, 2, 0]);
        assert_eq!(shards(4), [1, 2, 3, 0, 1, 2]);
    }

    #[test]
    fn every_shard_gets_partitions_when_there_are_enough() {
        for shards in 1..8 {
            let placement = place_topic(uuid::Uuid::new_v4(), 16, shards);
            for shard in 0..shards {
                assert!(placement.contains(&ShardId(shard)), "shard {shard} of {shards} unused");
            }
        }
    }
}
