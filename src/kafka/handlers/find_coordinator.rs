//! FindCoordinator: a group's coordinator is the broker leading the `__consumer_offsets`
//! partition its id hashes to, a transactional id's the one leading its `__transaction_state`
//! partition (on a single node, this broker). Batched keys (v4+) get one answer each; other
//! key types (share groups) get INVALID_REQUEST.
//!
//! librdkafka also reads this API's presence as "the broker supports LZ4", so it must be
//! served for LZ4-compressed produce to happen at all.

use kafka_protocol::messages::find_coordinator_request::FindCoordinatorRequest;
use kafka_protocol::messages::find_coordinator_response::{Coordinator, FindCoordinatorResponse};
use kafka_protocol::messages::ApiKey;
use kafka_protocol::messages::BrokerId;

use crate::acl::{Operation, ResourceType};
use crate::coordinator::InternalTopic;
use crate::error::KafkaCode;
use crate::kafka::context::RequestContext;
use crate::kafka::handlers::{error_code, str_bytes, Api};
use crate::node::{BrokerAddress, Shard};

const KEY_TYPE_GROUP: i8 = 0;
const KEY_TYPE_TRANSACTION: i8 = 1;

/// The versions served.
pub const API: Api = Api::new(ApiKey::FindCoordinator, 0, 6);

pub async fn handle(ctx: &RequestContext<'_>, request: FindCoordinatorRequest) -> FindCoordinatorResponse {
    let shard = ctx.shard;
    let version = ctx.api_version;
    let topic = match request.key_type {
        KEY_TYPE_GROUP => Some(crate::group::OFFSETS),
        KEY_TYPE_TRANSACTION => Some(crate::txn::TRANSACTIONS),
        _ => None,
    };
    let type_message = topic
        .is_none()
        .then(|| str_bytes(format!("Key type {} is not served by Sluice.", request.key_type)));
    let access = ctx.access();
    let find = |key: &str| -> Result<BrokerAddress, KafkaCode> {
        match request.key_type {
            KEY_TYPE_GROUP if !access.allows(Operation::Describe, ResourceType::Group, key) => {
                return Err(KafkaCode::GroupAuthorizationFailed)
            }
            KEY_TYPE_TRANSACTION if !access.allows(Operation::Describe, ResourceType::TransactionalId, key) => {
                return Err(KafkaCode::TransactionalIdAuthorizationFailed)
            }
            _ => {}
        }
        match topic {
            Some(topic) => coordinator_of(shard, &ctx.session.listener, topic, key),
            None => Err(KafkaCode::InvalidRequest),
        }
    };
    if version >= 4 {
        let coordinators = request
            .coordinator_keys
            .into_iter()
            .map(|key| {
                let found = Coordinator::default().with_key(key.clone());
                match find(&key) {
                    Ok(broker) => found
                        .with_error_message(None)
                        .with_node_id(BrokerId(broker.id.0))
                        .with_host(str_bytes(broker.host))
                        .with_port(i32::from(broker.port)),
                    Err(code) => found
                        .with_error_code(error_code(Some(code)))
                        .with_error_message(type_message.clone())
                        .with_node_id(BrokerId(-1)),
                }
            })
            .collect();
        return FindCoordinatorResponse::default().with_coordinators(coordinators);
    }
    match find(&request.key) {
        Ok(broker) => FindCoordinatorResponse::default()
            .with_error_message(None)
            .with_node_id(BrokerId(broker.id.0))
            .with_host(str_bytes(broker.host))
            .with_port(i32::from(broker.port)),
        Err(code) => {
            let response = FindCoordinatorResponse::default()
                .with_error_code(error_code(Some(code)))
                .with_node_id(BrokerId(-1));
            if version >= 1 {
                response.with_error_message(type_message)
            } else {
                response
            }
        }
    }
}

/// The live broker leading the partition of `internal` that `key` hashes to.
/// The coordinator's broker, at its address on `listener` (the one the client came in on).
fn coordinator_of(
    shard: &Shard,
    listener: &str,
    internal: InternalTopic,
    key: &str,
) -> Result<BrokerAddress, KafkaCode> {
    let snapshot = shard.metadata();
    let (partition, _) = internal.locate(&snapshot, key)?;
    let topic = snapshot
        .topic(internal.name)
        .ok_or(KafkaCode::CoordinatorNotAvailable)?;
    let leader = topic
        .partition(partition)
        .and_then(|p| p.leader)
        .ok_or(KafkaCode::CoordinatorNotAvailable)?;
    shard
        .brokers_on(listener)
        .into_iter()
        .find(|b| b.id == leader)
        .ok_or(KafkaCode::CoordinatorNotAvailable)
}
