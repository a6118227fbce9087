//! DescribeLogDirs: the broker's one log dir (the data dir), with the size of every partition
//! asked for (all when the request names none) and, from v4, the filesystem's total and
//! usable bytes.

use std::collections::BTreeMap;

use kafka_protocol::messages::describe_log_dirs_request::DescribeLogDirsRequest;
use kafka_protocol::messages::describe_log_dirs_response::{
    DescribeLogDirsPartition, DescribeLogDirsResponse, DescribeLogDirsResult, DescribeLogDirsTopic,
};
use kafka_protocol::messages::ApiKey;
use kafka_protocol::messages::TopicName;

use crate::acl::Operation;
use crate::error::KafkaCode;
use crate::ids::{PartitionId, ShardId};
use crate::kafka::context::RequestContext;
use crate::kafka::handlers::{fan_out, str_bytes, Api};

/// The versions served.
pub const API: Api = Api::new(ApiKey::DescribeLogDirs, 1, 4);

pub async fn handle(ctx: &RequestContext<'_>, request: DescribeLogDirsRequest) -> DescribeLogDirsResponse {
    if !ctx.allows_cluster(Operation::Describe) {
        return DescribeLogDirsResponse::default().with_error_code(KafkaCode::ClusterAuthorizationFailed.code());
    }
    let shard = ctx.shard;
    let snapshot = shard.metadata();
    let mut wanted: Vec<(ShardId, (String, PartitionId))> = Vec::new();
    let mut add = |name: &str, partition: i32| {
        if let Some(owner) = snapshot.topic(name).and_then(|t| t.owner(PartitionId(partition))) {
            wanted.push((owner, (name.to_string(), PartitionId(partition))));
        }
    };
    match &request.topics {
        None => {
            for topic in snapshot.topics.values() {
                for p in 0..topic.partition_count() {
                    add(&topic.meta.name, p);
                }
            }
        }
        Some(topics) => {
            for topic in topics {
                for &p in &topic.partitions {
                    add(&topic.topic.0, p);
                }
            }
        }
    }
    let keys: Vec<(String, PartitionId)> = wanted.iter().map(|(_, key)| key.clone()).collect();
    let sizes = fan_out(
        shard,
        wanted,
        |target, (name, partition): (String, PartitionId)| async move {
            target.partition(&name, partition).map(|log| log.size_bytes())
        },
        || None,
    )
    .await;
    let mut by_topic: BTreeMap<String, Vec<DescribeLogDirsPartition>> = BTreeMap::new();
    for ((name, partition), size) in keys.into_iter().zip(sizes) {
        let Some(size) = size else { continue };
        by_topic.entry(name).or_default().push(
            DescribeLogDirsPartition::default()
                .with_partition_index(partition.0)
                .with_partition_size(size as i64)
                .with_offset_lag(0),
        );
    }
    let topics = by_topic
        .into_iter()
        .map(|(name, partitions)| {
            DescribeLogDirsTopic::default()
                .with_name(TopicName(str_bytes(name)))
                .with_partitions(partitions)
        })
        .collect();
    let (total, usable) = filesystem_bytes(&shard.config.data_dir).unwrap_or((-1, -1));
    DescribeLogDirsResponse::default().with_results(vec![DescribeLogDirsResult::default()
        .with_log_dir(str_bytes(shard.config.data_dir.display().to_string()))
        .with_topics(topics)
        .with_total_bytes(total)
        .with_usable_bytes(usable)])
}

/// Total and available bytes of the filesystem holding `dir`.
fn filesystem_bytes(dir: &std::path::Path) -> Option<(i64, i64)> {
    use std::os::unix::ffi::OsStrExt;
    let path = std::ffi::CString::new(dir.as_os_str().as_bytes()).ok()?;
    // SAFETY: statvfs writes into the zeroed struct it is given; `path` is a valid C string
    // for the duration of the call.
    let stats = unsafe {
        let mut stats: libc::statvfs = std::mem::zeroed();
        (libc::statvfs(path.as_ptr(), &mut stats) == 0).then_some(stats)
    }?;
    let block = stats.f_frsize as i64;
    Some((stats.f_blocks as i64 * block, stats.f_bavail as i64 * block))
}
