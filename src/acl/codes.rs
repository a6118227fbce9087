//! Kafka's ACL enums, with their wire codes (the `i8`s of CreateAcls, DescribeAcls and
//! DeleteAcls) and names (what the metadata stores and `sluice acl` prints). The codes 0
//! (UNKNOWN) and 1 (ANY) are not values of these types: a filter's ANY is a `None`.

use serde::{Deserialize, Serialize};

/// The wire code of ANY, in filters.
pub const ANY: i8 = 1;
/// The wire code of MATCH, in pattern-type filters.
pub const MATCH: i8 = 2;

macro_rules! kafka_enum {
    ($(#[$doc:meta])* $name:ident { $($variant:ident = $code:literal, $text:literal;)* }) => {
        $(#[$doc])*
        #[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
        pub enum $name {
            $(#[serde(rename = $text)] $variant,)*
        }

        impl $name {
            pub const ALL: &'static [$name] = &[$($name::$variant),*];

            pub fn code(self) -> i8 {
                match self {
                    $($name::$variant => $code,)*
                }
            }

            pub fn from_code(code: i8) -> Option<$name> {
                match code {
                    $($code => Some($name::$variant),)*
                    _ => None,
                }
            }

            pub fn name(self) -> &'static str {
                match self {
                    $($name::$variant => $text,)*
                }
            }

            /// By name, in any case (`topic`, `TOPIC`), or by the name's `-`/`_` spelling.
            pub fn parse(text: &str) -> Option<$name> {
                let text = text.replace('-', "_");
                $name::ALL.iter().copied().find(|v| v.name().eq_ignore_ascii_case(&text))
            }
        }

        impl std::fmt::Display for $name {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str(self.name())
            }
        }
    };
}

kafka_enum! {
    /// What an ACL protects.
    ResourceType {
        Topic = 2, "TOPIC";
        Group = 3, "GROUP";
        Cluster = 4, "CLUSTER";
        TransactionalId = 5, "TRANSACTIONAL_ID";
        DelegationToken = 6, "DELEGATION_TOKEN";
        User = 7, "USER";
    }
}

kafka_enum! {
    /// How an ACL's resource name is read.
    PatternType {
        Literal = 3, "LITERAL";
        Prefixed = 4, "PREFIXED";
    }
}

kafka_enum! {
    /// What an ACL allows or denies.
    Operation {
        All = 2, "ALL";
        Read = 3, "READ";
        Write = 4, "WRITE";
        Create = 5, "CREATE";
        Delete = 6, "DELETE";
        Alter = 7, "ALTER";
        Describe = 8, "DESCRIBE";
        ClusterAction = 9, "CLUSTER_ACTION";
        DescribeConfigs = 10, "DESCRIBE_CONFIGS";
        AlterConfigs = 11, "ALTER_CONFIGS";
        IdempotentWrite = 12, "IDEMPOTENT_WRITE";
        CreateTokens = 13, "CREATE_TOKENS";
        DescribeTokens = 14, "DESCRIBE_TOKENS";
        TwoPhaseCommit = 15, "TWO_PHASE_COMMIT";
    }
}

kafka_enum! {
    /// Whether an ACL allows or denies.
    Permission {
        Deny = 2, "DENY";
        Allow = 3, "ALLOW";
    }
}

impl Operation {
    /// Whether an ALLOW of `self` allows `wanted`: itself, anything for ALL, and DESCRIBE
    /// (DESCRIBE_CONFIGS) for the operations that imply it.
    pub fn allows(self, wanted: Operation) -> bool {
        self == wanted
            || self == Operation::All
            || match wanted {
                Operation::Describe => matches!(
                    self,
                    Operation::Read | Operation::Write | Operation::Delete | Operation::Alter
                ),
                Operation::DescribeConfigs => self == Operation::AlterConfigs,
                _ => false,
            }
    }

    /// Whether a DENY of `self` denies `wanted`: itself, and anything for ALL.
    pub fn denies(self, wanted: Operation) -> bool {
        self == wanted || self == Operation::All
    }
}

impl ResourceType {
    /// The operations a resource of this type has, as authorized-operations fields list them.
    pub fn operations(self) -> &'static [Operation] {
        use Operation::*;
        match self {
            ResourceType::Topic => &[
                Read,
                Write,
                Create,
                Delete,
                Alter,
                Describe,
                DescribeConfigs,
                AlterConfigs,
            ],
            ResourceType::Group => &[Read, Delete, Describe],
            ResourceType::Cluster => &[
                Create,
                Alter,
                Describe,
                ClusterAction,
                DescribeConfigs,
                AlterConfigs,
                IdempotentWrite,
            ],
            ResourceType::TransactionalId => &[Write, Describe, TwoPhaseCommit],
            ResourceType::DelegationToken => &[Describe],
            ResourceType::User => &[CreateTokens, DescribeTokens],
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_and_names_round_trip() {
        for operation in Operation::ALL {
            assert_eq!(Operation::from_code(operation.code()), Some(*operation));
            assert_eq!(Operation::parse(operation.name()), Some(*operation));
        }
        assert_eq!(
            ResourceType::parse("transactional-id"),
            Some(ResourceType::TransactionalId)
        );
        assert_eq!(PatternType::from_code(ANY), None);
        assert_eq!(PatternType::from_code(MATCH), None);
        assert_eq!(Permission::from_code(3), Some(Permission::Allow));
    }

    #[test]
    fn allow_implies_describe_but_deny_implies_nothing() {
        assert!(Operation::Read.allows(Operation::Describe));
        assert!(Operation::AlterConfigs.allows(Operation::DescribeConfigs));
        assert!(!Operation::Describe.allows(Operation::Read));
        assert!(!Operation::Read.denies(Operation::Describe));
        assert!(Operation::All.denies(Operation::Write));
    }
}
