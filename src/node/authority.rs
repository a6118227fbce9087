//! Topic changes, run on shard 0 (the metadata authority) under its lock: check, store,
//! persist, then publish the new snapshot to every shard before answering. A change that
//! fails to persist is rolled back in memory, so the store never runs ahead of the disk.
//! On a cluster node the same calls go to the controller quorum instead
//! ([`crate::node::cluster_authority`]).

use std::collections::BTreeMap;
use std::rc::Rc;

use crate::error::KafkaCode;
use crate::ids::ShardId;
use crate::metadata::configs::{self, ConfigTarget, Overrides};
use crate::metadata::{MetadataStore, Refusal, TopicMeta};
use crate::node::{Authority, Shard};

pub(super) const AUTHORITY: ShardId = ShardId(0);

/// Restores the store after a change that could not be persisted.
type Undo = Box<dyn FnOnce(&mut MetadataStore)>;

pub(super) fn authority(shard: &Shard) -> &Authority {
    shard
        .authority
        .as_ref()
        .unwrap_or_else(|| panic!("shard {} is not the metadata authority", shard.id))
}

/// Runs `read` against the authority's store (on shard 0): a check that changes nothing.
pub(super) async fn check_on_authority<R, F>(shard: &Rc<Shard>, read: F) -> Result<R, Refusal>
where
    R: Send + 'static,
    F: FnOnce(&MetadataStore) -> Result<R, Refusal> + Send + 'static,
{
    shard
        .invoke_on(AUTHORITY, move |shard| async move {
            read(&authority(&shard).store.borrow())
        })
        .await
        .map_err(|e| Refusal::new(KafkaCode::UnknownServerError, e.to_string()))?
}

/// Runs `change` on the authority: it edits the store (or refuses), then the result is
/// persisted and published. `change` returns what to answer and an undo for a failed persist.
async fn change<R, F>(shard: &Rc<Shard>, change: F) -> Result<R, Refusal>
where
    R: Send + 'static,
    F: FnOnce(&mut MetadataStore) -> Result<Option<(R, Undo)>, Refusal> + Send + 'static,
{
    shard
        .invoke_on(AUTHORITY, move |shard| async move {
            let authority = authority(&shard);
            let _permit = authority
                .lock
                .acquire_permit(1)
                .await
                .map_err(|_| Refusal::new(KafkaCode::UnknownServerError, "metadata authority stopped"))?;
            let outcome = change(&mut authority.store.borrow_mut())?;
            let Some((answer, undo)) = outcome else {
                return Err(Refusal::new(KafkaCode::UnknownServerError, "nothing to change"));
            };
            let job = authority.store.borrow().persist_job();
            if let Err(e) = job.run().await {
                undo(&mut authority.store.borrow_mut());
                tracing::error!("persisting metadata: {e}");
                return Err(Refusal::new(KafkaCode::KafkaStorageError, e.to_string()));
            }
            let snapshot = authority.store.borrow().snapshot();
            shard
                .publish(snapshot)
                .await
                .map_err(|e| Refusal::new(KafkaCode::KafkaStorageError, e))?;
            Ok(answer)
        })
        .await
        .map_err(|e| Refusal::new(KafkaCode::UnknownServerError, e.to_string()))?
}

/// How a new topic's replicas are chosen.
#[derive(Clone, Debug)]
pub enum Replicas {
    /// This many, placed by the controller; `None`: `default.replication.factor`.
    Factor(Option<i16>),
    /// The brokers of each partition, as the client chose them.
    Assigned(Vec<Vec<i32>>),
}

/// A single node holds one replica of everything, on itself.
fn check_alone(shard: &Shard, replicas: &Replicas) -> Result<(), Refusal> {
    let node = shard.identity.node_id.0;
    match replicas {
        Replicas::Factor(Some(factor)) if *factor > 1 => Err(Refusal::new(
            KafkaCode::InvalidReplicationFactor,
            format!("Replication factor: {factor} larger than available brokers: 1."),
        )),
        Replicas::Assigned(assignment) if assignment.iter().any(|brokers| brokers != &[node]) => Err(Refusal::new(
            KafkaCode::InvalidReplicaAssignment,
            format!("Replica assignments must name only broker {node} on this single-node broker."),
        )),
        _ => Ok(()),
    }
}

/// Checks a topic on the authority without creating it.
pub async fn validate_topic(
    shard: &Rc<Shard>,
    name: String,
    partitions: i32,
    replicas: Replicas,
    overrides: BTreeMap<String, String>,
) -> Result<TopicMeta, Refusal> {
    if shard.cluster.is_some() {
        crate::node::cluster_authority::check_topic(shard, &name, partitions, &replicas, &overrides)?;
        return Ok(TopicMeta {
            name,
            id: uuid::Uuid::nil(),
            placement: Vec::new(),
            overrides,
            internal: false,
        });
    }
    check_alone(shard, &replicas)?;
    check_on_authority(shard, move |store| store.plan_create(&name, partitions, overrides)).await
}

/// AlterUserScramCredentials: the change persisted (replicated, in a cluster) and published.
pub async fn alter_scram(shard: &Rc<Shard>, scram: configs::ScramChange) -> Result<(), Refusal> {
    if shard.cluster.is_some() {
        return crate::node::cluster_authority::alter_scram(shard, scram).await;
    }
    change(shard, move |store| {
        let before = store.apply_scram(&scram);
        let undo = Box::new(move |store: &mut MetadataStore| store.restore_scram(before));
        Ok(Some(((), undo as Undo)))
    })
    .await
}

/// CreateAcls: the checked bindings added (all or none), persisted (replicated, in a
/// cluster) and published.
pub async fn create_acls(shard: &Rc<Shard>, bindings: Vec<crate::acl::AclBinding>) -> Result<(), Refusal> {
    if shard.cluster.is_some() {
        return crate::node::cluster_authority::create_acls(shard, bindings).await;
    }
    change(shard, move |store| {
        let before = store.dynamic_mut().acls.clone();
        store.dynamic_mut().add_acls(&bindings)?;
        let undo = Box::new(move |store: &mut MetadataStore| store.dynamic_mut().acls = before);
        Ok(Some(((), undo as Undo)))
    })
    .await
}

/// DeleteAcls: what each filter matched, removed; persisted and published like a creation.
pub async fn delete_acls(
    shard: &Rc<Shard>,
    filters: Vec<crate::acl::AclFilter>,
) -> Result<Vec<Vec<crate::acl::AclBinding>>, Refusal> {
    if shard.cluster.is_some() {
        return crate::node::cluster_authority::delete_acls(shard, filters).await;
    }
    change(shard, move |store| {
        let before = store.dynamic_mut().acls.clone();
        let removed = store.dynamic_mut().remove_acls(&filters);
        let undo = Box::new(move |store: &mut MetadataStore| store.dynamic_mut().acls = before);
        Ok(Some((removed, undo as Undo)))
    })
    .await
}

/// A block of fresh producer ids for a shard's InitProducerId answers, durable before use.
pub async fn allocate_producer_ids(shard: &Rc<Shard>) -> Result<std::ops::Range<i64>, Refusal> {
    if shard.cluster.is_some() {
        return crate::node::cluster_authority::allocate_producer_ids(shard, crate::constants::PRODUCER_ID_BLOCK).await;
    }
    change(shard, move |store| {
        let block = store.allocate_producer_ids(crate::constants::PRODUCER_ID_BLOCK)?;
        let taken = block.clone();
        let undo = Box::new(move |store: &mut MetadataStore| store.unallocate_producer_ids(&taken));
        Ok(Some((block, undo as Undo)))
    })
    .await
}

pub async fn create_topic(
    shard: &Rc<Shard>,
    name: String,
    partitions: i32,
    replicas: Replicas,
    overrides: BTreeMap<String, String>,
) -> Result<TopicMeta, Refusal> {
    if shard.cluster.is_some() {
        return crate::node::cluster_authority::create_topic(shard, name, partitions, replicas, overrides, false).await;
    }
    check_alone(shard, &replicas)?;
    change(shard, move |store| {
        let meta = store.plan_create(&name, partitions, overrides)?;
        store.insert(meta.clone());
        let undo = Box::new(move |store: &mut MetadataStore| {
            store.remove(&name);
        });
        Ok(Some((meta, undo as Undo)))
    })
    .await
}

/// Deletes a topic, then the offsets groups committed for it (as Kafka does when a topic's
/// partitions are deleted), on every shard's coordinator.
pub async fn delete_topic(shard: &Rc<Shard>, name: String) -> Result<TopicMeta, Refusal> {
    let removed = remove_topic(shard, name.clone()).await?;
    shard
        .invoke_on_all(move |target| {
            let name = name.clone();
            async move { target.groups.forget_topic(&target, &name).await }
        })
        .await;
    Ok(removed)
}

async fn remove_topic(shard: &Rc<Shard>, name: String) -> Result<TopicMeta, Refusal> {
    if shard.cluster.is_some() {
        return crate::node::cluster_authority::delete_topic(shard, name).await;
    }
    change(shard, move |store| {
        if store.get(&name).is_some_and(|t| t.internal) {
            return Err(Refusal::new(
                KafkaCode::InvalidRequest,
                format!("Topic {name} is internal and cannot be deleted."),
            ));
        }
        let removed = store.remove(&name).ok_or_else(|| {
            Refusal::new(
                KafkaCode::UnknownTopicOrPartition,
                format!("Topic '{name}' does not exist."),
            )
        })?;
        let restore = removed.clone();
        let undo = Box::new(move |store: &mut MetadataStore| store.insert(restore));
        Ok(Some((removed, undo as Undo)))
    })
    .await
}

/// Grows a topic to `count` partitions; with `validate_only`, only checks.
pub async fn create_partitions(
    shard: &Rc<Shard>,
    name: String,
    count: i32,
    validate_only: bool,
    assignment: Option<Vec<Vec<i32>>>,
) -> Result<(), Refusal> {
    if shard.cluster.is_some() {
        return crate::node::cluster_authority::create_partitions(shard, name, count, assignment, validate_only).await;
    }
    let me = shard.identity.node_id.0;
    if let Some(stranger) = assignment.iter().flatten().find(|replicas| replicas.as_slice() != [me]) {
        return Err(Refusal::new(
            KafkaCode::InvalidReplicaAssignment,
            format!("a single node ({me}) holds every replica; the assignment names {stranger:?}"),
        ));
    }
    if validate_only {
        return check_on_authority(shard, move |store| store.plan_partitions(&name, count).map(|_| ())).await;
    }
    change(shard, move |store| {
        let placement = store.plan_partitions(&name, count)?;
        let before = store.get(&name).expect("planned topic exists").placement.clone();
        store.set_placement(&name, placement);
        let undo = Box::new(move |store: &mut MetadataStore| {
            if let Some(topic) = store.remove(&name) {
                store.insert(TopicMeta {
                    placement: before,
                    ..topic
                });
            }
        });
        Ok(Some(((), undo as Undo)))
    })
    .await
}

/// What an edit of a resource's overrides may read: the value a key has when the resource
/// does not override it, and whether the key holds a list.
pub struct Inherited<'a> {
    store: &'a MetadataStore,
    target: &'a ConfigTarget,
}

impl Inherited<'_> {
    pub fn value(&self, key: &str) -> Option<String> {
        self.store.inherited(self.target, key)
    }

    pub fn is_list(&self, key: &str) -> bool {
        configs::is_list(self.target, key)
    }
}

/// A resource's overrides before and after `edit`, checked.
pub(super) fn plan_overrides<E>(
    store: &MetadataStore,
    target: &ConfigTarget,
    edit: E,
) -> Result<(Overrides, Overrides), Refusal>
where
    E: FnOnce(&mut Overrides, &Inherited) -> Result<(), Refusal>,
{
    let before = store.overrides(target)?;
    let mut after = before.clone();
    edit(&mut after, &Inherited { store, target })?;
    store.check_overrides(target, &after)?;
    Ok((before, after))
}

/// Replaces the overrides of `target` (a topic, the brokers, one broker or a group) with
/// what `edit` makes of them; with `validate_only`, only checks the result.
pub async fn alter_overrides<E>(
    shard: &Rc<Shard>,
    target: ConfigTarget,
    edit: E,
    validate_only: bool,
) -> Result<(), Refusal>
where
    E: Fn(&mut Overrides, &Inherited) -> Result<(), Refusal> + Send + 'static,
{
    if shard.cluster.is_some() {
        return crate::node::cluster_authority::alter_overrides(shard, target, edit, validate_only).await;
    }
    if validate_only {
        return check_on_authority(shard, move |store| plan_overrides(store, &target, edit).map(|_| ())).await;
    }
    change(shard, move |store| {
        let (before, after) = plan_overrides(store, &target, edit)?;
        store.set_overrides(&target, after);
        let undo = Box::new(move |store: &mut MetadataStore| store.set_overrides(&target, before));
        Ok(Some(((), undo as Undo)))
    })
    .await
}
