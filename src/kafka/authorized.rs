//! Authorized-operations bit fields (KIP-430) that Metadata, DescribeCluster, DescribeGroups,
//! ConsumerGroupDescribe and DescribeTopicPartitions return when a client asks for them: bit
//! `1 << op` for each ACL operation of the resource's type the caller may perform
//! ([`crate::kafka::context::Access::operations`]). Without `acl.enable` that is every
//! operation; an answer nobody asked for carries Kafka's "not requested" value.

use crate::acl::{Operation, ResourceType, CLUSTER_NAME};
use crate::kafka::context::Access;

/// The value of an authorized-operations field the request did not ask for.
pub const NOT_REQUESTED: i32 = i32::MIN;

/// The field's value: the caller's operations on the resource when asked, Kafka's "not
/// requested" otherwise.
pub fn when_asked(asked: bool, access: &Access, kind: ResourceType, name: &str) -> i32 {
    if asked {
        access.operations(kind, name)
    } else {
        NOT_REQUESTED
    }
}

/// The cluster's field: as [`when_asked`], but none at all (0) for a caller who may not
/// describe the cluster, as Kafka answers.
pub fn cluster_when_asked(asked: bool, access: &Access) -> i32 {
    if asked && !access.sees(Operation::Describe, ResourceType::Cluster, CLUSTER_NAME) {
        return 0;
    }
    when_asked(asked, access, ResourceType::Cluster, CLUSTER_NAME)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn all(kind: ResourceType) -> i32 {
        kind.operations().iter().fold(0, |bits, op| bits | (1 << op.code()))
    }

    #[test]
    fn bit_fields_match_kafkas() {
        // Values a Kafka 4 broker returns to a super user.
        assert_eq!(all(ResourceType::Topic), 3576);
        assert_eq!(all(ResourceType::Cluster), 8096);
        assert_eq!(all(ResourceType::Group), 328);
    }
}
