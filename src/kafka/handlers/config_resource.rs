//! What the config APIs share: resource types, and where an alteration of one resource goes.

use std::collections::BTreeMap;
use std::rc::Rc;

use crate::error::KafkaCode;
use crate::metadata::{authority, Refusal};
use crate::shard::Shard;

pub const RESOURCE_TOPIC: i8 = 2;
pub const RESOURCE_BROKER: i8 = 4;

/// Alters one config resource: a topic's overrides change on the metadata authority through
/// `edit`; broker configs are static (the config file) and any other type has no configs.
pub async fn alter<E>(
    shard: &Rc<Shard>,
    resource_type: i8,
    name: String,
    edit: E,
    validate_only: bool,
) -> Result<(), Refusal>
where
    E: FnOnce(&mut BTreeMap<String, String>) -> Result<(), Refusal> + Send + 'static,
{
    match resource_type {
        RESOURCE_TOPIC => authority::alter_overrides(shard, name, edit, validate_only).await,
        RESOURCE_BROKER => Err(Refusal::new(
            KafkaCode::InvalidRequest,
            "Broker configs are static in Sluice: set them in the config file.",
        )),
        other => Err(Refusal::new(
            KafkaCode::InvalidRequest,
            format!("Resource type {other} has no configs here"),
        )),
    }
}
