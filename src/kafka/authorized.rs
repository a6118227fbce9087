//! Authorized-operations bit fields (KIP-430) that Metadata, DescribeCluster, DescribeGroups
//! and DescribeTopicPartitions return when a client asks for them: bit `1 << op` for each
//! ACL operation the caller may perform on the resource. Until ACLs exist every operation a
//! resource type has is allowed; an answer nobody asked for carries Kafka's "not requested"
//! value.

/// Kafka's AclOperation codes.
const READ: i32 = 3;
const WRITE: i32 = 4;
const CREATE: i32 = 5;
const DELETE: i32 = 6;
const ALTER: i32 = 7;
const DESCRIBE: i32 = 8;
const CLUSTER_ACTION: i32 = 9;
const DESCRIBE_CONFIGS: i32 = 10;
const ALTER_CONFIGS: i32 = 11;
const IDEMPOTENT_WRITE: i32 = 12;

const fn bits(operations: &[i32]) -> i32 {
    let mut mask = 0;
    let mut i = 0;
    while i < operations.len() {
        mask |= 1 << operations[i];
        i += 1;
    }
    mask
}

/// The value of an authorized-operations field the request did not ask for.
pub const NOT_REQUESTED: i32 = i32::MIN;

/// Everything that can be done to a topic.
pub const TOPIC_ALL: i32 = bits(&[
    READ,
    WRITE,
    CREATE,
    DELETE,
    ALTER,
    DESCRIBE,
    DESCRIBE_CONFIGS,
    ALTER_CONFIGS,
]);

/// Everything that can be done to the cluster.
pub const CLUSTER_ALL: i32 = bits(&[
    CREATE,
    ALTER,
    DESCRIBE,
    CLUSTER_ACTION,
    DESCRIBE_CONFIGS,
    ALTER_CONFIGS,
    IDEMPOTENT_WRITE,
]);

/// Everything that can be done to a group.
pub const GROUP_ALL: i32 = bits(&[READ, DELETE, DESCRIBE]);

/// The field's value: everything allowed when asked, Kafka's "not requested" otherwise.
pub fn when_asked(asked: bool, all: i32) -> i32 {
    if asked {
        all
    } else {
        NOT_REQUESTED
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bit_fields_match_kafkas() {
        // Values a Kafka 4 broker returns to a super user.
        assert_eq!(TOPIC_ALL, 3576);
        assert_eq!(CLUSTER_ALL, 8096);
        assert_eq!(GROUP_ALL, 328);
    }
}
