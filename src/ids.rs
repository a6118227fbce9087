//! Strong identifiers. A bare integer never stands for an offset, a partition or a shard.

use std::fmt;

macro_rules! id_type {
    ($(#[$doc:meta])* $name:ident($inner:ty)) => {
        $(#[$doc])*
        #[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
        #[derive(serde::Serialize, serde::Deserialize)]
        #[serde(transparent)]
        pub struct $name(pub $inner);

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                self.0.fmt(f)
            }
        }
    };
}

id_type!(
    /// Position of a record in its partition's log.
    Offset(i64)
);
id_type!(
    /// Index of a partition within its topic.
    PartitionId(i32)
);
id_type!(
    /// Index of a shard (pinned executor) within this process: its peer id in the channel mesh.
    ShardId(usize)
);
id_type!(
    /// A broker's node id as clients see it in Metadata.
    NodeId(i32)
);
id_type!(
    /// Epoch of a partition's leadership.
    LeaderEpoch(i32)
);
id_type!(
    /// A topic's id: a topic deleted and created again under its name gets a new one.
    TopicId(uuid::Uuid)
);

impl Offset {
    pub fn next(self) -> Offset {
        Offset(self.0 + 1)
    }
}
