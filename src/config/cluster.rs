//! Cluster-mode configs under Kafka's names. With no `controller.quorum.voters` the node runs
//! alone and is its own controller, as it always did; everything here is then unused.

use serde::Deserialize;

use crate::config::parse_host_port;
use crate::constants::{CLUSTER_VOTERS_MAX, REPLICATION_FACTOR_MAX};
use crate::error::ConfigError;

/// The cluster keys of [`crate::config::ServerConfig`].
#[derive(Clone, Debug, Deserialize)]
pub struct ClusterSettings {
    /// `broker`, `controller` or both (`broker,controller`, the default).
    #[serde(default = "default_roles", rename = "process.roles")]
    pub process_roles: String,
    /// `id@host:port` of every controller voter; empty: a single node.
    #[serde(default, rename = "controller.quorum.voters")]
    pub controller_quorum_voters: String,
    /// Where this node's controller listens for its peers and for brokers; the address the
    /// voters list gives this node when unset.
    #[serde(default, rename = "controller.listen")]
    pub controller_listen: Option<String>,
    /// Replicas of a topic created without a replication factor.
    #[serde(default = "default_replication_factor", rename = "default.replication.factor")]
    pub default_replication_factor: i16,
    /// Replicas of the consumer offsets topic; it is created once this many brokers are up.
    #[serde(
        default = "default_offsets_replication_factor",
        rename = "offsets.topic.replication.factor"
    )]
    pub offsets_topic_replication_factor: i16,
    /// Replicas of the transaction state topic; created once this many brokers are up.
    #[serde(
        default = "default_offsets_replication_factor",
        rename = "transaction.state.log.replication.factor"
    )]
    pub transaction_state_log_replication_factor: i16,
    /// A follower that has not caught up with the leader's log end for this long leaves the ISR.
    #[serde(default = "default_replica_lag_time_max_ms", rename = "replica.lag.time.max.ms")]
    pub replica_lag_time_max_ms: u64,
    /// A broker that has not heartbeated for this long is fenced: its partitions get new
    /// leaders.
    #[serde(default = "default_broker_session_timeout_ms", rename = "broker.session.timeout.ms")]
    pub broker_session_timeout_ms: u64,
    /// How often a broker heartbeats to the active controller.
    #[serde(
        default = "default_broker_heartbeat_interval_ms",
        rename = "broker.heartbeat.interval.ms"
    )]
    pub broker_heartbeat_interval_ms: u64,
}

fn default_roles() -> String {
    "broker,controller".into()
}
fn default_replication_factor() -> i16 {
    1
}
fn default_offsets_replication_factor() -> i16 {
    3
}
fn default_replica_lag_time_max_ms() -> u64 {
    30_000
}
fn default_broker_session_timeout_ms() -> u64 {
    9_000
}
fn default_broker_heartbeat_interval_ms() -> u64 {
    2_000
}

impl Default for ClusterSettings {
    fn default() -> Self {
        toml::from_str("").expect("the empty cluster config is valid")
    }
}

/// What this process is in a cluster.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ProcessRoles {
    pub broker: bool,
    pub controller: bool,
}

/// One controller voter: its node id and controller address.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Voter {
    pub id: i32,
    pub address: String,
}

impl ClusterSettings {
    /// Whether this node is one of several: a quorum of voters is configured.
    pub fn is_cluster(&self) -> bool {
        !self.controller_quorum_voters.trim().is_empty()
    }

    pub fn roles(&self) -> Result<ProcessRoles, ConfigError> {
        let mut roles = ProcessRoles {
            broker: false,
            controller: false,
        };
        for role in self.process_roles.split(',').map(str::trim) {
            match role {
                "broker" => roles.broker = true,
                "controller" => roles.controller = true,
                other => {
                    return Err(ConfigError::new(
                        "process.roles",
                        format!("{other:?} is neither broker nor controller"),
                    ))
                }
            }
        }
        Ok(roles)
    }

    /// The voters in the order given; empty on a single node.
    pub fn voters(&self) -> Result<Vec<Voter>, ConfigError> {
        let invalid = |reason: String| ConfigError::new("controller.quorum.voters", reason);
        let mut voters: Vec<Voter> = Vec::new();
        for part in self
            .controller_quorum_voters
            .split(',')
            .map(str::trim)
            .filter(|p| !p.is_empty())
        {
            let (id, address) = part
                .split_once('@')
                .ok_or_else(|| invalid(format!("{part:?} is not ID@HOST:PORT")))?;
            let id: i32 = id
                .parse()
                .ok()
                .filter(|id| *id >= 0)
                .ok_or_else(|| invalid(format!("{id:?} is not a node id")))?;
            parse_host_port(address).map_err(invalid)?;
            if voters.iter().any(|v| v.id == id) {
                return Err(invalid(format!("node {id} is listed twice")));
            }
            voters.push(Voter {
                id,
                address: address.to_string(),
            });
        }
        if voters.len() > CLUSTER_VOTERS_MAX {
            return Err(invalid(format!("at most {CLUSTER_VOTERS_MAX} voters")));
        }
        Ok(voters)
    }

    /// The address this node's controller binds: `controller.listen`, else its voter entry.
    pub fn controller_address(&self, node_id: i32) -> Result<Option<String>, ConfigError> {
        if let Some(listen) = &self.controller_listen {
            return Ok(Some(listen.clone()));
        }
        Ok(self.voters()?.into_iter().find(|v| v.id == node_id).map(|v| v.address))
    }

    /// Checks the cluster keys against each other and the node id.
    pub fn validate(&self, node_id: i32) -> Result<(), ConfigError> {
        let roles = self.roles()?;
        let voters = self.voters()?;
        if !(1..=REPLICATION_FACTOR_MAX).contains(&self.default_replication_factor) {
            return Err(ConfigError::new(
                "default.replication.factor",
                format!("must be between 1 and {REPLICATION_FACTOR_MAX}"),
            ));
        }
        for (key, factor) in [
            (
                "offsets.topic.replication.factor",
                self.offsets_topic_replication_factor,
            ),
            (
                "transaction.state.log.replication.factor",
                self.transaction_state_log_replication_factor,
            ),
        ] {
            if !(1..=REPLICATION_FACTOR_MAX).contains(&factor) {
                return Err(ConfigError::new(
                    key,
                    format!("must be between 1 and {REPLICATION_FACTOR_MAX}"),
                ));
            }
        }
        for (key, value) in [
            ("replica.lag.time.max.ms", self.replica_lag_time_max_ms),
            ("broker.session.timeout.ms", self.broker_session_timeout_ms),
            ("broker.heartbeat.interval.ms", self.broker_heartbeat_interval_ms),
        ] {
            if value == 0 {
                return Err(ConfigError::new(key, "must be at least 1"));
            }
        }
        if self.broker_heartbeat_interval_ms >= self.broker_session_timeout_ms {
            return Err(ConfigError::new(
                "broker.heartbeat.interval.ms",
                "must be less than broker.session.timeout.ms",
            ));
        }
        if voters.is_empty() {
            if self.controller_listen.is_some() {
                return Err(ConfigError::new(
                    "controller.listen",
                    "needs controller.quorum.voters (a single node is its own controller)",
                ));
            }
            return Ok(());
        }
        if node_id < 0 {
            return Err(ConfigError::new(
                "node.id",
                "a cluster node needs a node id of 0 or more",
            ));
        }
        let voter = voters.iter().any(|v| v.id == node_id);
        if roles.controller && !voter {
            return Err(ConfigError::new(
                "controller.quorum.voters",
                format!("node {node_id} runs a controller but is not among the voters"),
            ));
        }
        if !roles.controller && voter {
            return Err(ConfigError::new(
                "process.roles",
                format!("node {node_id} is a voter but its roles have no controller"),
            ));
        }
        if let Some(listen) = &self.controller_listen {
            parse_host_port(listen).map_err(|reason| ConfigError::new("controller.listen", reason))?;
        }
        Ok(())
    }
}
