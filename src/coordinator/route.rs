//! Routing a key to its partition and to the shard that owns it.

use std::future::Future;
use std::rc::Rc;

use super::{CoordinatorHost, InternalTopic};
use crate::error::KafkaCode;
use crate::ids::{PartitionId, ShardId};
use crate::metadata::MetadataSnapshot;

/// Which partition of an internal topic with `partitions` partitions holds `key`: Kafka's
/// `abs(key.hashCode()) % partitions`, with Java's `String.hashCode` over UTF-16 (the same
/// for group ids and transactional ids).
pub fn partition_for(key: &str, partitions: i32) -> i32 {
    assert!(partitions > 0, "internal topic without partitions");
    let mut hash: i32 = 0;
    for unit in key.encode_utf16() {
        hash = hash.wrapping_mul(31).wrapping_add(i32::from(unit));
    }
    // Kafka's Utils.abs maps i32::MIN to 0 rather than overflowing.
    let positive = if hash == i32::MIN { 0 } else { hash.abs() };
    positive % partitions
}

impl InternalTopic {
    /// The partition holding `key` and the shard owning it; COORDINATOR_NOT_AVAILABLE while
    /// the topic does not exist.
    pub fn locate(&self, snapshot: &MetadataSnapshot, key: &str) -> Result<(PartitionId, ShardId), KafkaCode> {
        let topic = snapshot.topic(self.name).ok_or(KafkaCode::CoordinatorNotAvailable)?;
        let partition = PartitionId(partition_for(key, topic.partition_count()));
        let owner = topic.owner(partition).ok_or(KafkaCode::CoordinatorNotAvailable)?;
        Ok((partition, owner))
    }

    /// Runs `work` on the shard coordinating `key`, or answers COORDINATOR_NOT_AVAILABLE when
    /// the topic is missing or the shard has stopped.
    pub async fn on_owner<H, R, F, Fut>(&self, host: &Rc<H>, key: &str, work: F) -> Result<R, KafkaCode>
    where
        H: CoordinatorHost,
        R: Send + 'static,
        F: FnOnce(Rc<H>) -> Fut + Send + 'static,
        Fut: Future<Output = R> + 'static,
    {
        let (_, owner) = self.locate(&host.metadata(), key)?;
        host.on_shard(owner, work).await.map_err(|unavailable| {
            tracing::debug!("{unavailable}");
            KafkaCode::CoordinatorNotAvailable
        })
    }

    /// The partitions of this topic the host's shard owns.
    pub fn owned_partitions(&self, host: &impl CoordinatorHost) -> Vec<PartitionId> {
        let snapshot = host.metadata();
        let Some(topic) = snapshot.topic(self.name) else {
            return Vec::new();
        };
        (0..topic.partition_count())
            .map(PartitionId)
            .filter(|p| topic.owner(*p) == Some(host.shard_id()))
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Golden values of Java's String.hashCode, so keys land where Kafka puts them.
    #[test]
    fn partition_matches_kafkas_placement() {
        // Java: "test-group".hashCode() == 627841412.
        assert_eq!(partition_for("test-group", 50), 12);
        assert_eq!(partition_for("a", 50), 47);
        assert_eq!(partition_for("", 50), 0);
        // "polygenelubricants".hashCode() == Integer.MIN_VALUE, which Utils.abs maps to 0.
        assert_eq!(partition_for("polygenelubricants", 50), 0);
        // A negative hash: "telemetry-ingest".hashCode() == -388193544.
        assert_eq!(partition_for("telemetry-ingest", 50), 44);
    }
}
