//! The metadata authority of a cluster node: the same changes as [`crate::node::authority`],
//! checked here against this broker's view (names, configs, partition counts), then
//! committed by the active controller, which places replicas and refuses what the cluster
//! cannot do (too few brokers, a topic created meanwhile). Each answer waits until every
//! shard of this broker has the change, so the client that made it sees it here at once.

use std::collections::BTreeMap;
use std::rc::Rc;
use std::time::Duration;

use crate::cluster::image::{Command, Outcome, TopicRecord};
use crate::cluster::ClusterHandle;
use crate::error::KafkaCode;
use crate::metadata::configs::{ConfigTarget, Overrides};
use crate::metadata::{topic_name, Refusal, TopicMeta};
use crate::node::authority::{authority, check_on_authority, plan_overrides, Inherited, Replicas, AUTHORITY};
use crate::node::Shard;

/// Longest a metadata change waits for the controller and for this broker to apply it.
const CHANGE_TIMEOUT: Duration = Duration::from_secs(30);

fn handle(shard: &Shard) -> &ClusterHandle {
    shard.cluster.as_ref().expect("a cluster node")
}

/// Commits `command`; refusals come back as the controller's Kafka code and message.
async fn commit(shard: &Rc<Shard>, command: Command) -> Result<Outcome, Refusal> {
    let cluster = handle(shard);
    let (index, outcome) = cluster.change(command, CHANGE_TIMEOUT).await.map_err(|e| {
        tracing::warn!("metadata change: {e}");
        Refusal::new(KafkaCode::RequestTimedOut, e.to_string())
    })?;
    if let Outcome::Refused { code, message } = outcome {
        let code = KafkaCode::try_from_code(code).unwrap_or(KafkaCode::UnknownServerError);
        return Err(Refusal::new(code, message));
    }
    let applied = cluster.applied_at_least(index);
    if crate::runtime::timeout(CHANGE_TIMEOUT, applied).await.is_none() {
        return Err(Refusal::new(
            KafkaCode::RequestTimedOut,
            format!("the change is committed at {index}, but this broker has not applied it yet"),
        ));
    }
    Ok(outcome)
}

/// Checks a new topic against this broker's view; the controller checks the rest.
pub fn check_topic(
    shard: &Shard,
    name: &str,
    partitions: i32,
    replicas: &Replicas,
    overrides: &BTreeMap<String, String>,
) -> Result<(), Refusal> {
    topic_name::validate(name).map_err(|m| Refusal::new(KafkaCode::InvalidTopicException, m))?;
    let snapshot = shard.metadata();
    if snapshot.topic(name).is_some() {
        return Err(Refusal::new(
            KafkaCode::TopicAlreadyExists,
            format!("Topic '{name}' already exists."),
        ));
    }
    if let Some(other) = snapshot.topics.keys().find(|t| topic_name::collides(t, name)) {
        return Err(Refusal::new(
            KafkaCode::InvalidTopicException,
            format!(
                "Topic '{name}' collides with existing topic '{other}': '.' and '_' are interchangeable in metric names."
            ),
        ));
    }
    crate::metadata::check_partition_count(partitions)?;
    snapshot
        .topic_defaults
        .with_overrides(overrides)
        .map_err(|e| Refusal::new(KafkaCode::InvalidConfig, e.to_string()))?;
    let live = handle(shard).image.borrow().live_brokers().len();
    if let Replicas::Factor(Some(factor)) = replicas {
        if *factor as usize > live {
            return Err(Refusal::new(
                KafkaCode::InvalidReplicationFactor,
                format!("Replication factor: {factor} larger than available brokers: {live}."),
            ));
        }
    }
    Ok(())
}

/// The refusal for an outcome a command cannot have (the controller and this broker
/// disagree on what the command does).
fn unexpected(outcome: Outcome) -> Refusal {
    Refusal::new(KafkaCode::UnknownServerError, format!("unexpected {outcome:?}"))
}

fn meta_of(record: TopicRecord) -> TopicMeta {
    TopicMeta {
        name: record.name,
        id: record.id,
        placement: Vec::new(),
        overrides: record.overrides,
        internal: record.internal,
    }
}

pub async fn create_topic(
    shard: &Rc<Shard>,
    name: String,
    partitions: i32,
    replicas: Replicas,
    overrides: BTreeMap<String, String>,
    internal: bool,
) -> Result<TopicMeta, Refusal> {
    check_topic(shard, &name, partitions, &replicas, &overrides)?;
    let (replication_factor, assignment) = match replicas {
        Replicas::Factor(factor) => (factor.unwrap_or(shard.config.cluster.default_replication_factor), None),
        Replicas::Assigned(assignment) => (assignment[0].len() as i16, Some(assignment)),
    };
    let command = Command::CreateTopic {
        name,
        id: uuid::Uuid::new_v4(),
        partitions,
        replication_factor,
        assignment,
        overrides,
        internal,
    };
    match commit(shard, command).await? {
        Outcome::TopicCreated(record) => Ok(meta_of(record)),
        other => Err(unexpected(other)),
    }
}

pub async fn delete_topic(shard: &Rc<Shard>, name: String) -> Result<TopicMeta, Refusal> {
    if shard.metadata().topic(&name).is_some_and(|t| t.meta.internal) {
        return Err(Refusal::new(
            KafkaCode::InvalidRequest,
            format!("Topic {name} is internal and cannot be deleted."),
        ));
    }
    match commit(shard, Command::DeleteTopic { name }).await? {
        Outcome::TopicDeleted(record) => Ok(meta_of(record)),
        other => Err(unexpected(other)),
    }
}

pub async fn alter_scram(shard: &Rc<Shard>, change: crate::metadata::configs::ScramChange) -> Result<(), Refusal> {
    match commit(shard, Command::SetScramCredentials { change }).await? {
        Outcome::Done => Ok(()),
        other => Err(unexpected(other)),
    }
}

pub async fn create_acls(shard: &Rc<Shard>, bindings: Vec<crate::acl::AclBinding>) -> Result<(), Refusal> {
    match commit(shard, Command::CreateAcls { bindings }).await? {
        Outcome::Done => Ok(()),
        other => Err(unexpected(other)),
    }
}

pub async fn delete_acls(
    shard: &Rc<Shard>,
    filters: Vec<crate::acl::AclFilter>,
) -> Result<Vec<Vec<crate::acl::AclBinding>>, Refusal> {
    match commit(shard, Command::DeleteAcls { filters }).await? {
        Outcome::AclsDeleted(removed) => Ok(removed),
        other => Err(unexpected(other)),
    }
}

pub async fn allocate_producer_ids(shard: &Rc<Shard>, count: i64) -> Result<std::ops::Range<i64>, Refusal> {
    match commit(shard, Command::AllocateProducerIds { count }).await? {
        Outcome::ProducerIds { start, end } => Ok(start..end),
        other => Err(unexpected(other)),
    }
}

/// CreatePartitions: planned against this broker's view (existence, internal topics,
/// `max.partitions`), placed by the controller over the live brokers (or as assigned).
pub async fn create_partitions(
    shard: &Rc<Shard>,
    name: String,
    count: i32,
    assignment: Option<Vec<Vec<i32>>>,
    validate_only: bool,
) -> Result<(), Refusal> {
    let planned = name.clone();
    check_on_authority(shard, move |store| store.plan_partitions(&planned, count).map(|_| ())).await?;
    if validate_only {
        return Ok(());
    }
    commit(
        shard,
        Command::CreatePartitions {
            topic: name,
            count,
            assignment,
        },
    )
    .await
    .map(|_| ())
}

/// How often a config edit is planned again after another broker changed the same
/// resource's configs first.
const CONFIG_EDIT_ATTEMPTS: usize = 3;

/// AlterConfigs and IncrementalAlterConfigs: `edit` is planned and checked on the metadata
/// authority shard against the cluster's configs, then committed by the controller only if
/// the overrides it started from are still current (else planned again).
pub async fn alter_overrides<E>(
    shard: &Rc<Shard>,
    target: ConfigTarget,
    edit: E,
    validate_only: bool,
) -> Result<(), Refusal>
where
    E: Fn(&mut Overrides, &Inherited) -> Result<(), Refusal> + Send + 'static,
{
    shard
        .invoke_on(AUTHORITY, move |shard| async move {
            let authority = authority(&shard);
            let _permit = authority
                .lock
                .acquire_permit(1)
                .await
                .map_err(|_| Refusal::new(KafkaCode::UnknownServerError, "metadata authority stopped"))?;
            for _ in 0..CONFIG_EDIT_ATTEMPTS {
                let (expected, overrides) = plan_overrides(&authority.store.borrow(), &target, &edit)?;
                if validate_only {
                    return Ok(());
                }
                let command = Command::SetConfigs {
                    target: target.clone(),
                    expected,
                    overrides,
                };
                let cluster = handle(&shard);
                let (index, outcome) = cluster
                    .change(command, CHANGE_TIMEOUT)
                    .await
                    .map_err(|e| Refusal::new(KafkaCode::RequestTimedOut, e.to_string()))?;
                let applied = crate::runtime::timeout(CHANGE_TIMEOUT, cluster.applied_at_least(index)).await;
                if applied.is_none() {
                    return Err(Refusal::new(
                        KafkaCode::RequestTimedOut,
                        format!("the change is committed at {index}, but this broker has not applied it yet"),
                    ));
                }
                match outcome {
                    // Another broker's edit came first; this broker has it now.
                    Outcome::Refused { code, .. } if code == KafkaCode::ConcurrentTransactions.code() => continue,
                    Outcome::Refused { code, message } => {
                        let code = KafkaCode::try_from_code(code).unwrap_or(KafkaCode::UnknownServerError);
                        return Err(Refusal::new(code, message));
                    }
                    _ => return Ok(()),
                }
            }
            Err(Refusal::new(
                KafkaCode::RequestTimedOut,
                format!("the configs kept changing under {CONFIG_EDIT_ATTEMPTS} attempts to edit them"),
            ))
        })
        .await
        .map_err(|e| Refusal::new(KafkaCode::UnknownServerError, e.to_string()))?
}

/// ElectLeaders for one partition: the new leader, or why not (ELECTION_NOT_NEEDED,
/// PREFERRED_LEADER_NOT_AVAILABLE, ELIGIBLE_LEADERS_NOT_AVAILABLE).
pub async fn elect_leader(shard: &Rc<Shard>, topic: String, partition: i32, unclean: bool) -> Result<i32, Refusal> {
    match commit(
        shard,
        Command::ElectLeader {
            topic,
            partition,
            unclean,
        },
    )
    .await?
    {
        Outcome::Partition(record) => Ok(record.leader),
        other => Err(unexpected(other)),
    }
}

/// AlterPartitionReassignments for one partition: move it to `target`, or cancel (None).
/// With `keep_factor`, a target of another size than the current replicas is refused.
pub async fn reassign(
    shard: &Rc<Shard>,
    topic: String,
    partition: i32,
    target: Option<Vec<i32>>,
    keep_factor: bool,
) -> Result<(), Refusal> {
    if let (true, Some(target)) = (keep_factor, &target) {
        let current = handle(shard)
            .image
            .borrow()
            .topics
            .get(&topic)
            .and_then(|t| usize::try_from(partition).ok().and_then(|p| t.partitions.get(p)))
            .map(|p| p.reassigning_to().unwrap_or_else(|| p.replicas.clone()).len());
        if current.is_some_and(|n| n != target.len()) {
            return Err(Refusal::new(
                KafkaCode::InvalidReplicationFactor,
                "the reassignment would change the replication factor, which the request does not allow",
            ));
        }
    }
    commit(
        shard,
        Command::Reassign {
            topic,
            partition,
            target,
        },
    )
    .await
    .map(|_| ())
}
