//! The cluster's metadata as the controller quorum's state machine holds it: brokers and
//! their epochs, topics with each partition's replicas, leader, leader epoch and ISR, and the
//! producer ids handed out. Every change is a [`Command`] in the Raft log; applying it is a
//! pure function of the image and the command, so every voter computes the same image and
//! every decision (replica placement, a new leader) is made once, in the log's order.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::acl::{AclBinding, AclFilter};
use crate::error::KafkaCode;
use crate::metadata::configs::{ConfigTarget, DynamicConfigs, Overrides, ScramChange};

/// No leader: every in-sync replica is fenced (Kafka's -1).
pub const NO_LEADER: i32 = -1;

/// A broker as registered with the controller.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct BrokerRecord {
    pub id: i32,
    /// The log index of its registration: a new one each time the broker process starts.
    pub epoch: u64,
    /// Random per process start, so a restarted broker is told from the one before it.
    pub incarnation: uuid::Uuid,
    /// Where its first listener is reached (by other brokers, and by clients of that one).
    pub host: String,
    pub port: u16,
    /// Every listener by name, with the address its clients are told (the first one too);
    /// empty in records registered before listeners were named.
    #[serde(default)]
    pub listeners: Vec<Endpoint>,
    /// A fenced broker leads nothing and is in no ISR it could leave; it is unfenced once it
    /// heartbeats with the metadata of its own registration.
    pub fenced: bool,
}

/// A named listener's advertised address.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Endpoint {
    pub name: String,
    pub host: String,
    pub port: u16,
}

impl BrokerRecord {
    /// Where clients that came in on listener `name` reach this broker; a broker without such
    /// a listener is not shown to them. A record without named listeners has its one address
    /// as PLAINTEXT.
    pub fn endpoint(&self, name: &str) -> Option<(String, u16)> {
        if self.listeners.is_empty() {
            return (name == "PLAINTEXT").then(|| (self.host.clone(), self.port));
        }
        self.listeners
            .iter()
            .find(|l| l.name == name)
            .map(|l| (l.host.clone(), l.port))
    }
}

/// One partition's replicas and leadership.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct PartitionRecord {
    pub replicas: Vec<i32>,
    pub isr: Vec<i32>,
    pub leader: i32,
    /// Bumped on every change of leader: the epoch stamped into the batches it writes.
    pub leader_epoch: i32,
    /// Bumped on every change of this record (Kafka's partition epoch), so an AlterPartition
    /// computed from an older record is refused.
    pub partition_epoch: i32,
    /// A reassignment in progress: replicas it adds (already in `replicas`, catching up)...
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub adding: Vec<i32>,
    /// ...and replicas it removes once every target replica is in sync.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub removing: Vec<i32>,
}

impl PartitionRecord {
    /// The replicas a reassignment in progress moves to, if there is one.
    pub fn reassigning_to(&self) -> Option<Vec<i32>> {
        (!self.adding.is_empty() || !self.removing.is_empty()).then(|| {
            self.replicas
                .iter()
                .copied()
                .filter(|r| !self.removing.contains(r))
                .collect()
        })
    }
}

/// A topic and its partitions.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct TopicRecord {
    pub name: String,
    pub id: uuid::Uuid,
    pub partitions: Vec<PartitionRecord>,
    pub overrides: BTreeMap<String, String>,
    pub internal: bool,
}

/// The whole cluster metadata at one point of the log.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct ClusterImage {
    pub cluster_id: String,
    /// Index of the last log entry applied: brokers compare images by it.
    pub version: u64,
    pub brokers: BTreeMap<i32, BrokerRecord>,
    pub topics: BTreeMap<String, TopicRecord>,
    /// Producer ids below this have been handed out.
    pub producer_ids_allocated: i64,
    /// Dynamic broker and group configs (topic overrides live with their topics).
    #[serde(default)]
    pub configs: DynamicConfigs,
}

/// A change to the image, as it is written into the Raft log.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub enum Command {
    /// Names the cluster; ignored once it has a name.
    SetClusterId {
        cluster_id: String,
    },
    /// A broker process announces itself: a new epoch, fenced until it has caught up. A
    /// registration from a new incarnation fences the old one first (its leaderships move).
    RegisterBroker {
        id: i32,
        incarnation: uuid::Uuid,
        host: String,
        port: u16,
        #[serde(default)]
        listeners: Vec<Endpoint>,
    },
    /// The broker heartbeats with the metadata of its own registration.
    UnfenceBroker {
        id: i32,
        epoch: u64,
        /// The active controller's `unclean.leader.election.enable`: for topics that do not
        /// set it, whether a leaderless partition may take a replica out of its ISR.
        #[serde(default)]
        unclean: bool,
    },
    /// The broker missed its session (or shut down): it leaves every ISR it is not the last
    /// member of, and each partition it led gets a new leader from the rest of the ISR.
    FenceBroker {
        id: i32,
        epoch: u64,
        #[serde(default)]
        unclean: bool,
    },
    /// A topic, its replicas placed over the unfenced brokers (or as given).
    CreateTopic {
        name: String,
        id: uuid::Uuid,
        partitions: i32,
        replication_factor: i16,
        /// Replicas of each partition, when the client chose them.
        assignment: Option<Vec<Vec<i32>>>,
        overrides: BTreeMap<String, String>,
        internal: bool,
    },
    DeleteTopic {
        name: String,
    },
    /// The leader of a partition changes its ISR.
    AlterPartition {
        topic: uuid::Uuid,
        partition: i32,
        leader: i32,
        leader_epoch: i32,
        partition_epoch: i32,
        isr: Vec<i32>,
    },
    /// A block of fresh producer ids.
    AllocateProducerIds {
        count: i64,
    },
    /// More partitions for a topic, placed as a new topic's would be (or as given).
    CreatePartitions {
        topic: String,
        count: i32,
        assignment: Option<Vec<Vec<i32>>>,
    },
    /// AlterUserScramCredentials: the online SCRAM credentials change.
    SetScramCredentials {
        change: ScramChange,
    },
    /// CreateAcls: bindings the broker checked, added all or none.
    CreateAcls {
        bindings: Vec<AclBinding>,
    },
    /// DeleteAcls: each filter's matches removed, in order.
    DeleteAcls {
        filters: Vec<AclFilter>,
    },
    /// Replaces a resource's config overrides if they are still `expected` (what the broker
    /// planned the change from), so concurrent edits do not undo each other.
    SetConfigs {
        target: ConfigTarget,
        expected: Overrides,
        overrides: Overrides,
    },
    /// AlterPartitionReassignments for one partition: move it to `target` (the new replicas
    /// join and catch up, then the old ones leave), or with None cancel the one in progress.
    Reassign {
        topic: String,
        partition: i32,
        target: Option<Vec<i32>>,
    },
    /// An election asked for by a client (ElectLeaders): preferred makes the first replica
    /// the leader if it is live and in sync; unclean gives a leaderless partition any live
    /// replica, its ISR reset to that one (records only the old ISR held may be lost).
    ElectLeader {
        topic: String,
        partition: i32,
        unclean: bool,
    },
}

/// What applying a command gave.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub enum Outcome {
    Done,
    Registered {
        epoch: u64,
    },
    TopicCreated(TopicRecord),
    TopicDeleted(TopicRecord),
    Partition(PartitionRecord),
    ProducerIds {
        start: i64,
        end: i64,
    },
    /// What each DeleteAcls filter removed.
    AclsDeleted(Vec<Vec<AclBinding>>),
    Refused {
        code: i16,
        message: String,
    },
}

impl Outcome {
    fn refused(code: KafkaCode, message: impl Into<String>) -> Outcome {
        Outcome::Refused {
            code: code.code(),
            message: message.into(),
        }
    }
}

impl ClusterImage {
    /// Applies `command`, the log entry at `index`.
    pub fn apply(&mut self, index: u64, command: Command) -> Outcome {
        debug_assert!(index > self.version || self.version == 0, "entries apply in log order");
        self.version = index;
        match command {
            Command::SetClusterId { cluster_id } => {
                if self.cluster_id.is_empty() {
                    self.cluster_id = cluster_id;
                }
                Outcome::Done
            }
            Command::RegisterBroker {
                id,
                incarnation,
                host,
                port,
                listeners,
            } => {
                if let Some(old) = self.brokers.get(&id) {
                    if !old.fenced {
                        let epoch = old.epoch;
                        self.fence(id, epoch);
                    }
                }
                self.brokers.insert(
                    id,
                    BrokerRecord {
                        id,
                        epoch: index,
                        incarnation,
                        host,
                        port,
                        listeners,
                        fenced: true,
                    },
                );
                Outcome::Registered { epoch: index }
            }
            Command::UnfenceBroker { id, epoch, unclean } => match self.brokers.get_mut(&id) {
                Some(broker) if broker.epoch == epoch => {
                    broker.fenced = false;
                    self.elect_where_leaderless(unclean);
                    Outcome::Done
                }
                Some(_) => Outcome::refused(KafkaCode::StaleBrokerEpoch, format!("broker {id} registered again")),
                None => Outcome::refused(
                    KafkaCode::BrokerIdNotRegistered,
                    format!("broker {id} is not registered"),
                ),
            },
            Command::FenceBroker { id, epoch, unclean } => match self.brokers.get(&id) {
                Some(broker) if broker.epoch == epoch => {
                    self.fence(id, epoch);
                    self.elect_where_leaderless(unclean);
                    Outcome::Done
                }
                Some(_) => Outcome::refused(KafkaCode::StaleBrokerEpoch, format!("broker {id} registered again")),
                None => Outcome::refused(
                    KafkaCode::BrokerIdNotRegistered,
                    format!("broker {id} is not registered"),
                ),
            },
            Command::CreateTopic {
                name,
                id,
                partitions,
                replication_factor,
                assignment,
                overrides,
                internal,
            } => self.create_topic(
                name,
                id,
                partitions,
                replication_factor,
                assignment,
                overrides,
                internal,
            ),
            Command::DeleteTopic { name } => match self.topics.remove(&name) {
                Some(topic) => Outcome::TopicDeleted(topic),
                None => Outcome::refused(
                    KafkaCode::UnknownTopicOrPartition,
                    format!("Topic '{name}' does not exist."),
                ),
            },
            Command::AlterPartition {
                topic,
                partition,
                leader,
                leader_epoch,
                partition_epoch,
                isr,
            } => self.alter_partition(topic, partition, leader, leader_epoch, partition_epoch, isr),
            Command::AllocateProducerIds { count } => {
                let start = self.producer_ids_allocated;
                match start.checked_add(count).filter(|_| count > 0) {
                    Some(end) => {
                        self.producer_ids_allocated = end;
                        Outcome::ProducerIds { start, end }
                    }
                    None => Outcome::refused(KafkaCode::UnknownServerError, "producer ids are exhausted"),
                }
            }
            Command::CreatePartitions {
                topic,
                count,
                assignment,
            } => self.create_partitions(&topic, count, assignment),
            Command::SetScramCredentials { change } => {
                self.configs.apply_scram(&change);
                Outcome::Done
            }
            Command::CreateAcls { bindings } => match self.configs.add_acls(&bindings) {
                Ok(()) => Outcome::Done,
                Err(refusal) => Outcome::refused(refusal.code, refusal.message),
            },
            Command::DeleteAcls { filters } => Outcome::AclsDeleted(self.configs.remove_acls(&filters)),
            Command::SetConfigs {
                target,
                expected,
                overrides,
            } => {
                let current = match &target {
                    ConfigTarget::Topic(name) => match self.topics.get(name) {
                        Some(topic) => topic.overrides.clone(),
                        None => {
                            return Outcome::refused(
                                KafkaCode::UnknownTopicOrPartition,
                                format!("Topic '{name}' does not exist."),
                            )
                        }
                    },
                    ConfigTarget::Cluster => self.configs.cluster.clone(),
                    ConfigTarget::Broker(node) => self.configs.brokers.get(node).cloned().unwrap_or_default(),
                    ConfigTarget::Group(group) => self.configs.groups.get(group).cloned().unwrap_or_default(),
                };
                if current != expected {
                    return Outcome::refused(KafkaCode::ConcurrentTransactions, "the configs changed meanwhile");
                }
                match target {
                    ConfigTarget::Topic(name) => {
                        if let Some(topic) = self.topics.get_mut(&name) {
                            topic.overrides = overrides;
                        }
                    }
                    other => self.configs.set(&other, overrides),
                }
                Outcome::Done
            }
            Command::ElectLeader {
                topic,
                partition,
                unclean,
            } => self.elect_leader(&topic, partition, unclean),
            Command::Reassign {
                topic,
                partition,
                target,
            } => self.reassign(&topic, partition, target),
        }
    }

    fn reassign(&mut self, name: &str, partition: i32, target: Option<Vec<i32>>) -> Outcome {
        let live = self.live_brokers();
        if let Some(target) = &target {
            if target.is_empty() {
                return Outcome::refused(KafkaCode::InvalidReplicaAssignment, "the target names no replica");
            }
            if let Err(refusal) = self.check_assignment(std::slice::from_ref(target)) {
                return refusal;
            }
        }
        let Some(record) = self
            .topics
            .get_mut(name)
            .and_then(|t| usize::try_from(partition).ok().and_then(|p| t.partitions.get_mut(p)))
        else {
            return Outcome::refused(KafkaCode::UnknownTopicOrPartition, "no such partition");
        };
        // The replicas before any reassignment in progress.
        let original: Vec<i32> = record
            .replicas
            .iter()
            .copied()
            .filter(|r| !record.adding.contains(r))
            .collect();
        let target = match target {
            Some(target) => target,
            None if record.reassigning_to().is_none() => {
                return Outcome::refused(
                    KafkaCode::NoReassignmentInProgress,
                    format!("{name}-{partition} has no reassignment in progress"),
                )
            }
            None => original.clone(),
        };
        let mut replicas = target.clone();
        replicas.extend(original.iter().copied().filter(|r| !target.contains(r)));
        if !record.isr.iter().any(|r| replicas.contains(r)) {
            return Outcome::refused(
                KafkaCode::InvalidReplicaAssignment,
                "no in-sync replica of the partition would remain",
            );
        }
        record.adding = target.iter().copied().filter(|r| !original.contains(r)).collect();
        record.removing = original.iter().copied().filter(|r| !target.contains(r)).collect();
        // Replicas of a replaced or cancelled reassignment that are no longer wanted leave now.
        record.isr.retain(|r| replicas.contains(r));
        record.replicas = replicas;
        record.partition_epoch += 1;
        complete_reassignment(record, &live);
        if record.leader != NO_LEADER && !record.replicas.contains(&record.leader) {
            // A cancelled reassignment's new replica had the lead.
            record.leader = record
                .isr
                .iter()
                .copied()
                .find(|r| live.contains(r))
                .unwrap_or(NO_LEADER);
            record.leader_epoch += 1;
        }
        Outcome::Partition(record.clone())
    }

    fn create_partitions(&mut self, name: &str, count: i32, assignment: Option<Vec<Vec<i32>>>) -> Outcome {
        let live = self.live_brokers();
        let Some(topic) = self.topics.get(name) else {
            return Outcome::refused(
                KafkaCode::UnknownTopicOrPartition,
                format!("Topic '{name}' does not exist."),
            );
        };
        let current = topic.partitions.len() as i32;
        if count <= current {
            return Outcome::refused(
                KafkaCode::InvalidPartitions,
                format!("Topic currently has {current} partitions, which is higher than the requested {count}."),
            );
        }
        let factor = topic.partitions.first().map_or(1, |p| p.replicas.len());
        let added = match assignment {
            Some(assignment) => {
                if assignment.len() as i32 != count - current {
                    return Outcome::refused(
                        KafkaCode::InvalidReplicaAssignment,
                        format!(
                            "{} assignments for {} new partitions",
                            assignment.len(),
                            count - current
                        ),
                    );
                }
                if let Err(refusal) = self.check_assignment(&assignment) {
                    return refusal;
                }
                if assignment[0].len() != factor {
                    return Outcome::refused(
                        KafkaCode::InvalidReplicaAssignment,
                        format!(
                            "the new partitions have {} replicas; the topic's have {factor}",
                            assignment[0].len()
                        ),
                    );
                }
                assignment
            }
            None => {
                if factor > live.len() {
                    return Outcome::refused(
                        KafkaCode::InvalidReplicationFactor,
                        format!(
                            "The replication factor {factor} is larger than the {} available brokers.",
                            live.len()
                        ),
                    );
                }
                place_replicas(&live, topic.id, count, factor).split_off(current as usize)
            }
        };
        let topic = self.topics.get_mut(name).expect("found above");
        topic
            .partitions
            .extend(added.into_iter().map(|replicas| new_partition(replicas, &live)));
        Outcome::TopicCreated(topic.clone())
    }

    fn elect_leader(&mut self, name: &str, partition: i32, unclean: bool) -> Outcome {
        let live = self.live_brokers();
        let Some(record) = self
            .topics
            .get_mut(name)
            .and_then(|t| usize::try_from(partition).ok().and_then(|p| t.partitions.get_mut(p)))
        else {
            return Outcome::refused(KafkaCode::UnknownTopicOrPartition, "no such partition");
        };
        if unclean {
            if record.leader != NO_LEADER {
                return Outcome::refused(KafkaCode::ElectionNotNeeded, "the partition has a leader");
            }
            if !elect_unclean(record, &live) {
                return Outcome::refused(
                    KafkaCode::EligibleLeadersNotAvailable,
                    "no replica of the partition is live",
                );
            }
            return Outcome::Partition(record.clone());
        }
        let preferred = record.replicas[0];
        if record.leader == preferred {
            return Outcome::refused(KafkaCode::ElectionNotNeeded, "the preferred replica leads already");
        }
        if !live.contains(&preferred) || !record.isr.contains(&preferred) {
            return Outcome::refused(
                KafkaCode::PreferredLeaderNotAvailable,
                format!("the preferred replica {preferred} is not live and in sync"),
            );
        }
        record.leader = preferred;
        record.leader_epoch += 1;
        record.partition_epoch += 1;
        Outcome::Partition(record.clone())
    }

    /// Brokers that may lead and join ISRs, in id order.
    pub fn live_brokers(&self) -> Vec<i32> {
        self.brokers.values().filter(|b| !b.fenced).map(|b| b.id).collect()
    }

    fn fence(&mut self, id: i32, epoch: u64) {
        if let Some(broker) = self.brokers.get_mut(&id) {
            if broker.epoch == epoch {
                broker.fenced = true;
            }
        }
        let live: Vec<i32> = self.live_brokers();
        for topic in self.topics.values_mut() {
            for partition in &mut topic.partitions {
                let mut changed = false;
                if partition.isr.contains(&id) && partition.isr.len() > 1 {
                    partition.isr.retain(|r| *r != id);
                    changed = true;
                }
                if partition.leader == id {
                    partition.leader = partition
                        .isr
                        .iter()
                        .copied()
                        .find(|r| *r != id && live.contains(r))
                        .unwrap_or(NO_LEADER);
                    partition.leader_epoch += 1;
                    changed = true;
                }
                if changed {
                    partition.partition_epoch += 1;
                }
            }
        }
    }

    /// Gives a leader to every partition without one whose ISR has a live broker again, or,
    /// where unclean election is enabled (the topic's `unclean.leader.election.enable`, else
    /// `unclean_default`), whose replicas have one.
    fn elect_where_leaderless(&mut self, unclean_default: bool) {
        let live = self.live_brokers();
        for topic in self.topics.values_mut() {
            let unclean = topic
                .overrides
                .get(UNCLEAN_KEY)
                .map_or(unclean_default, |v| v.eq_ignore_ascii_case("true"));
            for partition in &mut topic.partitions {
                if partition.leader != NO_LEADER {
                    continue;
                }
                let preferred = partition
                    .replicas
                    .iter()
                    .copied()
                    .find(|r| partition.isr.contains(r) && live.contains(r));
                if let Some(leader) = preferred {
                    partition.leader = leader;
                    partition.leader_epoch += 1;
                    partition.partition_epoch += 1;
                } else if unclean {
                    elect_unclean(partition, &live);
                }
            }
        }
    }

    #[allow(clippy::too_many_arguments)]
    fn create_topic(
        &mut self,
        name: String,
        id: uuid::Uuid,
        partitions: i32,
        replication_factor: i16,
        assignment: Option<Vec<Vec<i32>>>,
        overrides: BTreeMap<String, String>,
        internal: bool,
    ) -> Outcome {
        if self.topics.contains_key(&name) {
            return Outcome::refused(KafkaCode::TopicAlreadyExists, format!("Topic '{name}' already exists."));
        }
        let replicas = match assignment {
            Some(assignment) => match self.check_assignment(&assignment) {
                Ok(()) => assignment,
                Err(refusal) => return refusal,
            },
            None => {
                let live = self.live_brokers();
                if replication_factor < 1 || replication_factor as usize > live.len() {
                    return Outcome::refused(
                        KafkaCode::InvalidReplicationFactor,
                        format!(
                            "Unable to replicate the partition {replication_factor} time(s): The target \
                             replication factor of {replication_factor} cannot be reached because only {} \
                             broker(s) are registered.",
                            live.len()
                        ),
                    );
                }
                place_replicas(&live, id, partitions, replication_factor as usize)
            }
        };
        let live = self.live_brokers();
        let topic = TopicRecord {
            name: name.clone(),
            id,
            partitions: replicas
                .into_iter()
                .map(|replicas| new_partition(replicas, &live))
                .collect(),
            overrides,
            internal,
        };
        self.topics.insert(name, topic.clone());
        Outcome::TopicCreated(topic)
    }

    fn check_assignment(&self, assignment: &[Vec<i32>]) -> Result<(), Outcome> {
        let invalid = |message: String| Err(Outcome::refused(KafkaCode::InvalidReplicaAssignment, message));
        let Some(first) = assignment.first() else {
            return invalid("the assignment names no partition".into());
        };
        for (partition, replicas) in assignment.iter().enumerate() {
            if replicas.is_empty() || replicas.len() != first.len() {
                return invalid(format!(
                    "partition {partition} has {} replicas; every partition needs the same number, at least one",
                    replicas.len()
                ));
            }
            for (i, replica) in replicas.iter().enumerate() {
                if replicas[..i].contains(replica) {
                    return invalid(format!("partition {partition} names broker {replica} twice"));
                }
                if !self.brokers.contains_key(replica) {
                    return invalid(format!(
                        "partition {partition} names broker {replica}, which is not registered"
                    ));
                }
            }
        }
        Ok(())
    }

    fn alter_partition(
        &mut self,
        topic: uuid::Uuid,
        partition: i32,
        leader: i32,
        leader_epoch: i32,
        partition_epoch: i32,
        isr: Vec<i32>,
    ) -> Outcome {
        let live = self.live_brokers();
        let Some(record) = self
            .topics
            .values_mut()
            .find(|t| t.id == topic)
            .and_then(|t| usize::try_from(partition).ok().and_then(|p| t.partitions.get_mut(p)))
        else {
            return Outcome::refused(KafkaCode::UnknownTopicOrPartition, "no such partition");
        };
        if record.leader != leader || record.leader_epoch != leader_epoch {
            return Outcome::refused(
                KafkaCode::FencedLeaderEpoch,
                format!(
                    "leader {leader} at epoch {leader_epoch}; the partition's leader is {} at epoch {}",
                    record.leader, record.leader_epoch
                ),
            );
        }
        if record.partition_epoch != partition_epoch {
            return Outcome::refused(
                KafkaCode::InvalidUpdateVersion,
                format!(
                    "partition epoch {partition_epoch}, but it is {}",
                    record.partition_epoch
                ),
            );
        }
        if !isr.contains(&leader) {
            return Outcome::refused(KafkaCode::InvalidRequest, "the ISR must hold its leader");
        }
        if let Some(stranger) = isr.iter().find(|r| !record.replicas.contains(r)) {
            return Outcome::refused(
                KafkaCode::IneligibleReplica,
                format!("broker {stranger} is not a replica of the partition"),
            );
        }
        if let Some(fenced) = isr.iter().find(|r| !record.isr.contains(r) && !live.contains(r)) {
            return Outcome::refused(KafkaCode::IneligibleReplica, format!("broker {fenced} is fenced"));
        }
        record.isr = isr;
        record.partition_epoch += 1;
        complete_reassignment(record, &live);
        Outcome::Partition(record.clone())
    }
}

/// The topic config that lets a leaderless partition elect a replica out of its ISR.
const UNCLEAN_KEY: &str = "unclean.leader.election.enable";

/// A new partition on `replicas`: the live ones in sync, the first of them leading.
fn new_partition(replicas: Vec<i32>, live: &[i32]) -> PartitionRecord {
    let isr: Vec<i32> = replicas.iter().copied().filter(|r| live.contains(r)).collect();
    let leader = isr.first().copied().unwrap_or(NO_LEADER);
    PartitionRecord {
        isr: if isr.is_empty() { replicas.clone() } else { isr },
        replicas,
        leader,
        leader_epoch: 0,
        partition_epoch: 0,
        adding: Vec::new(),
        removing: Vec::new(),
    }
}

/// Finishes a reassignment once every target replica is in sync: the removed replicas leave
/// the replicas and the ISR, and the lead moves to a target replica if a removed one had it.
fn complete_reassignment(record: &mut PartitionRecord, live: &[i32]) {
    let Some(target) = record.reassigning_to() else {
        return;
    };
    if !target.iter().all(|r| record.isr.contains(r)) {
        return;
    }
    record.isr.retain(|r| target.contains(r));
    record.replicas = target;
    record.adding.clear();
    record.removing.clear();
    if !record.replicas.contains(&record.leader) {
        record.leader = record
            .replicas
            .iter()
            .copied()
            .find(|r| record.isr.contains(r) && live.contains(r))
            .unwrap_or(NO_LEADER);
        record.leader_epoch += 1;
    }
}

/// Makes the first live replica the leader and the whole ISR; false if none is live.
fn elect_unclean(partition: &mut PartitionRecord, live: &[i32]) -> bool {
    let Some(leader) = partition.replicas.iter().copied().find(|r| live.contains(r)) else {
        return false;
    };
    partition.leader = leader;
    partition.isr = vec![leader];
    partition.leader_epoch += 1;
    partition.partition_epoch += 1;
    true
}

/// Places `count` partitions of `replication` replicas each over `brokers` (sorted ids): the
/// first replica rotates from a start the topic id picks, so leaders spread across brokers
/// and topics; the others follow it in order.
pub fn place_replicas(brokers: &[i32], topic: uuid::Uuid, count: i32, replication: usize) -> Vec<Vec<i32>> {
    assert!(
        replication >= 1 && replication <= brokers.len(),
        "checked by the caller"
    );
    let start = (topic.as_u128() % brokers.len() as u128) as usize;
    (0..count.max(0) as usize)
        .map(|p| {
            (0..replication)
                .map(|r| brokers[(start + p + r) % brokers.len()])
                .collect()
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn register(image: &mut ClusterImage, index: u64, id: i32) -> u64 {
        let outcome = image.apply(
            index,
            Command::RegisterBroker {
                id,
                incarnation: uuid::Uuid::new_v4(),
                host: "127.0.0.1".into(),
                port: 9000 + id as u16,
                listeners: Vec::new(),
            },
        );
        let Outcome::Registered { epoch } = outcome else {
            panic!("{outcome:?}")
        };
        assert_eq!(
            image.apply(
                index + 1,
                Command::UnfenceBroker {
                    id,
                    epoch,
                    unclean: false
                }
            ),
            Outcome::Done
        );
        epoch
    }

    fn three_brokers() -> (ClusterImage, Vec<u64>) {
        let mut image = ClusterImage::default();
        let epochs = (1..=3).map(|id| register(&mut image, id as u64 * 10, id)).collect();
        (image, epochs)
    }

    fn create(image: &mut ClusterImage, index: u64, name: &str, partitions: i32, rf: i16) -> Outcome {
        image.apply(
            index,
            Command::CreateTopic {
                name: name.into(),
                id: uuid::Uuid::new_v4(),
                partitions,
                replication_factor: rf,
                assignment: None,
                overrides: BTreeMap::new(),
                internal: false,
            },
        )
    }

    /// A one-partition topic on `replicas`, as a client assigning them creates it.
    fn create_on(image: &mut ClusterImage, index: u64, name: &str, replicas: Vec<i32>) -> Outcome {
        image.apply(
            index,
            Command::CreateTopic {
                name: name.into(),
                id: uuid::Uuid::new_v4(),
                partitions: 1,
                replication_factor: replicas.len() as i16,
                assignment: Some(vec![replicas]),
                overrides: BTreeMap::new(),
                internal: false,
            },
        )
    }

    /// The leader of `name`-0 asks for `isr`, from the partition's record as it stands.
    fn alter_isr(image: &mut ClusterImage, index: u64, name: &str, isr: Vec<i32>) -> Outcome {
        let topic = &image.topics[name];
        let record = topic.partitions[0].clone();
        let command = Command::AlterPartition {
            topic: topic.id,
            partition: 0,
            leader: record.leader,
            leader_epoch: record.leader_epoch,
            partition_epoch: record.partition_epoch,
            isr,
        };
        image.apply(index, command)
    }

    #[test]
    fn replicas_spread_leaders_over_the_brokers() {
        let (mut image, _) = three_brokers();
        let Outcome::TopicCreated(topic) = create(&mut image, 100, "t", 6, 3) else {
            panic!()
        };
        let mut leaders = BTreeMap::new();
        for p in &topic.partitions {
            assert_eq!(p.replicas.len(), 3);
            assert_eq!(p.isr, p.replicas);
            assert_eq!(p.leader, p.replicas[0]);
            *leaders.entry(p.leader).or_insert(0) += 1;
        }
        assert_eq!(leaders.values().copied().collect::<Vec<_>>(), vec![2, 2, 2]);
        assert!(matches!(
            create(&mut image, 101, "u", 1, 4),
            Outcome::Refused { code, .. } if code == KafkaCode::InvalidReplicationFactor.code()
        ));
        assert!(matches!(
            create(&mut image, 102, "t", 1, 1),
            Outcome::Refused { code, .. } if code == KafkaCode::TopicAlreadyExists.code()
        ));
    }

    #[test]
    fn fencing_moves_leadership_within_the_isr_and_keeps_the_last_member() {
        let (mut image, epochs) = three_brokers();
        let Outcome::TopicCreated(topic) = create(&mut image, 100, "t", 3, 2) else {
            panic!()
        };
        let led_by_1: Vec<usize> = (0..3).filter(|&p| topic.partitions[p].leader == 1).collect();
        assert!(!led_by_1.is_empty());
        image.apply(
            101,
            Command::FenceBroker {
                id: 1,
                epoch: epochs[0],
                unclean: false,
            },
        );
        for p in &image.topics["t"].partitions {
            assert_ne!(p.leader, 1);
            assert!(!p.isr.contains(&1));
        }
        for &p in &led_by_1 {
            let record = &image.topics["t"].partitions[p];
            assert_eq!(record.leader_epoch, 1);
            assert!(record.partition_epoch >= 1);
        }
        // Fence the other replica of a partition broker 1 led: no one is left to lead it, and
        // the ISR keeps its last member so it can come back as leader.
        let p = led_by_1[0];
        let other = image.topics["t"].partitions[p].leader;
        image.apply(
            102,
            Command::FenceBroker {
                id: other,
                epoch: epochs[other as usize - 1],
                unclean: false,
            },
        );
        let record = image.topics["t"].partitions[p].clone();
        assert_eq!(record.leader, NO_LEADER);
        assert_eq!(record.isr, vec![other]);
        // It re-registers and catches up: it leads again, at a new epoch.
        let epoch = register(&mut image, 200, other);
        let record = &image.topics["t"].partitions[p];
        assert_eq!(record.leader, other);
        assert!(record.leader_epoch > 1);
        assert!(epoch > epochs[other as usize - 1]);
        // A stale epoch changes nothing.
        assert!(matches!(
            image.apply(
                300,
                Command::FenceBroker {
                    id: other,
                    epoch: epochs[other as usize - 1],
                    unclean: false,
                }
            ),
            Outcome::Refused { .. }
        ));
    }

    #[test]
    fn a_new_incarnation_fences_the_old_one_first() {
        let (mut image, _) = three_brokers();
        let Outcome::TopicCreated(_) = create(&mut image, 100, "t", 3, 3) else {
            panic!()
        };
        let led_by_2 = image.topics["t"].partitions.iter().filter(|p| p.leader == 2).count();
        assert!(led_by_2 > 0);
        let Outcome::Registered { .. } = image.apply(
            101,
            Command::RegisterBroker {
                id: 2,
                incarnation: uuid::Uuid::new_v4(),
                host: "127.0.0.1".into(),
                port: 1,
                listeners: Vec::new(),
            },
        ) else {
            panic!()
        };
        assert!(image.brokers[&2].fenced);
        assert!(image.topics["t"]
            .partitions
            .iter()
            .all(|p| p.leader != 2 && !p.isr.contains(&2)));
    }

    #[test]
    fn alter_partition_checks_leader_epochs_and_eligibility() {
        let (mut image, epochs) = three_brokers();
        let Outcome::TopicCreated(topic) = create(&mut image, 100, "t", 1, 3) else {
            panic!()
        };
        let p = topic.partitions[0].clone();
        let follower = p.replicas[1];
        let shrink = |isr: Vec<i32>, partition_epoch| Command::AlterPartition {
            topic: topic.id,
            partition: 0,
            leader: p.leader,
            leader_epoch: p.leader_epoch,
            partition_epoch,
            isr,
        };
        let without: Vec<i32> = p.isr.iter().copied().filter(|r| *r != follower).collect();
        let Outcome::Partition(after) = image.apply(101, shrink(without.clone(), 0)) else {
            panic!()
        };
        assert_eq!(after.isr, without);
        assert_eq!(after.partition_epoch, 1);
        // The same change from the old record is refused.
        assert!(
            matches!(image.apply(102, shrink(p.isr.clone(), 0)), Outcome::Refused { code, .. }
            if code == KafkaCode::InvalidUpdateVersion.code())
        );
        // A fenced broker may not join.
        image.apply(
            103,
            Command::FenceBroker {
                id: follower,
                epoch: epochs[follower as usize - 1],
                unclean: false,
            },
        );
        assert!(
            matches!(image.apply(104, shrink(p.isr.clone(), 1)), Outcome::Refused { code, .. }
            if code == KafkaCode::IneligibleReplica.code())
        );
    }

    #[test]
    fn producer_id_blocks_do_not_overlap() {
        let mut image = ClusterImage::default();
        assert_eq!(
            image.apply(1, Command::AllocateProducerIds { count: 10 }),
            Outcome::ProducerIds { start: 0, end: 10 }
        );
        assert_eq!(
            image.apply(2, Command::AllocateProducerIds { count: 5 }),
            Outcome::ProducerIds { start: 10, end: 15 }
        );
    }

    #[test]
    fn partitions_grow_configs_change_once_and_elections_follow_the_rules() {
        let (mut image, epochs) = three_brokers();
        create(&mut image, 100, "t", 2, 3);
        let grow = |count| Command::CreatePartitions {
            topic: "t".into(),
            count,
            assignment: None,
        };
        let Outcome::TopicCreated(topic) = image.apply(101, grow(4)) else {
            panic!()
        };
        assert_eq!(topic.partitions.len(), 4);
        assert!(topic
            .partitions
            .iter()
            .all(|p| p.replicas.len() == 3 && p.isr.len() == 3));
        assert!(matches!(
            image.apply(102, grow(3)),
            Outcome::Refused { code, .. } if code == KafkaCode::InvalidPartitions.code()
        ));

        // A config edit planned from stale overrides is refused, not merged.
        let set = |expected: &[(&str, &str)], overrides: &[(&str, &str)]| Command::SetConfigs {
            target: ConfigTarget::Topic("t".into()),
            expected: expected.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect(),
            overrides: overrides.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect(),
        };
        assert_eq!(image.apply(103, set(&[], &[("retention.ms", "1")])), Outcome::Done);
        assert!(matches!(
            image.apply(104, set(&[], &[("retention.ms", "2")])),
            Outcome::Refused { .. }
        ));
        assert_eq!(image.topics["t"].overrides["retention.ms"], "1");

        // Preferred: not needed while the first replica leads; after it was fenced and came
        // back, the lead returns to it.
        let preferred = image.topics["t"].partitions[0].replicas[0];
        let elect = |unclean| Command::ElectLeader {
            topic: "t".into(),
            partition: 0,
            unclean,
        };
        assert!(matches!(
            image.apply(105, elect(false)),
            Outcome::Refused { code, .. } if code == KafkaCode::ElectionNotNeeded.code()
        ));
        image.apply(
            106,
            Command::FenceBroker {
                id: preferred,
                epoch: epochs[preferred as usize - 1],
                unclean: false,
            },
        );
        assert_ne!(image.topics["t"].partitions[0].leader, preferred);
        assert!(matches!(
            image.apply(107, elect(false)),
            Outcome::Refused { code, .. } if code == KafkaCode::PreferredLeaderNotAvailable.code()
        ));
        register(&mut image, 108, preferred);
        let record = image.topics["t"].partitions[0].clone();
        alter_isr(&mut image, 110, "t", vec![record.leader, preferred]);
        let Outcome::Partition(elected) = image.apply(111, elect(false)) else {
            panic!()
        };
        assert_eq!(elected.leader, preferred);
        assert_eq!(elected.leader_epoch, record.leader_epoch + 1);

        // Unclean: a partition whose whole ISR is fenced takes a live replica outside it, and
        // a topic that enables it gets one when its last in-sync replica is fenced.
        assert!(matches!(
            image.apply(112, elect(true)),
            Outcome::Refused { code, .. } if code == KafkaCode::ElectionNotNeeded.code()
        ));
        let mut image = ClusterImage::default();
        let epochs: Vec<u64> = (1..=2).map(|id| register(&mut image, id as u64 * 10, id)).collect();
        create_on(&mut image, 100, "u", vec![1, 2]);
        create_on(&mut image, 200, "w", vec![1, 2]);
        image.apply(
            201,
            Command::SetConfigs {
                target: ConfigTarget::Topic("w".into()),
                expected: BTreeMap::new(),
                overrides: BTreeMap::from([(UNCLEAN_KEY.to_string(), "true".to_string())]),
            },
        );
        let record = image.topics["u"].partitions[0].clone();
        assert_eq!(record, image.topics["w"].partitions[0], "both placed alike");
        alter_isr(&mut image, 202, "w", vec![record.leader]);
        let follower = record.replicas.iter().copied().find(|r| *r != record.leader).unwrap();
        alter_isr(&mut image, 301, "u", vec![record.leader]);
        image.apply(
            302,
            Command::FenceBroker {
                id: record.leader,
                epoch: epochs[record.leader as usize - 1],
                unclean: false,
            },
        );
        assert_eq!(image.topics["u"].partitions[0].leader, NO_LEADER);
        let w = &image.topics["w"].partitions[0];
        assert_eq!((w.leader, w.isr.clone()), (follower, vec![follower]));
        let Outcome::Partition(elected) = image.apply(
            303,
            Command::ElectLeader {
                topic: "u".into(),
                partition: 0,
                unclean: true,
            },
        ) else {
            panic!()
        };
        assert_eq!((elected.leader, elected.isr.clone()), (follower, vec![follower]));
    }

    #[test]
    fn a_reassignment_completes_when_its_targets_are_in_sync() {
        let (mut image, _) = three_brokers();
        create_on(&mut image, 100, "t", vec![1, 2]);
        let reassign = |target: Option<Vec<i32>>| Command::Reassign {
            topic: "t".into(),
            partition: 0,
            target,
        };
        assert!(matches!(
            image.apply(101, reassign(None)),
            Outcome::Refused { code, .. } if code == KafkaCode::NoReassignmentInProgress.code()
        ));
        // Broker 3 joins as a replica outside the ISR; 1 stays until 3 is in sync.
        let Outcome::Partition(moving) = image.apply(102, reassign(Some(vec![2, 3]))) else {
            panic!()
        };
        assert_eq!(moving.replicas, vec![2, 3, 1]);
        assert_eq!((moving.adding.clone(), moving.removing.clone()), (vec![3], vec![1]));
        assert_eq!(moving.reassigning_to(), Some(vec![2, 3]));
        assert_eq!(moving.leader, 1);
        let Outcome::Partition(done) = alter_isr(&mut image, 103, "t", vec![1, 2, 3]) else {
            panic!()
        };
        assert_eq!(done.replicas, vec![2, 3]);
        assert_eq!(done.isr, vec![2, 3]);
        assert_eq!(done.leader, 2, "the lead leaves the removed replica");
        assert_eq!(done.leader_epoch, moving.leader_epoch + 1);
        assert!(done.reassigning_to().is_none());

        // A cancelled one puts the replicas back and drops the ones it added.
        image.apply(104, reassign(Some(vec![1, 3])));
        let Outcome::Partition(cancelled) = image.apply(105, reassign(None)) else {
            panic!()
        };
        // In the order they had in the merged list, as Kafka reverts one.
        assert_eq!(cancelled.replicas, vec![3, 2]);
        assert!(cancelled.reassigning_to().is_none());
        assert!(!cancelled.isr.contains(&1));
    }
}
