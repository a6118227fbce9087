//! DescribeUserScramCredentials: each user's SCRAM mechanisms and iterations (never a secret):
//! those managed online (AlterUserScramCredentials) and those of the config's `[sasl.users]`
//! (both mechanisms at 4096 iterations, unless overridden online). All users when none are
//! named; a named user without credentials gets RESOURCE_NOT_FOUND, one named twice
//! DUPLICATE_RESOURCE, as in Kafka.

use std::collections::BTreeMap;

use kafka_protocol::messages::describe_user_scram_credentials_response::{
    CredentialInfo, DescribeUserScramCredentialsResult,
};
use kafka_protocol::messages::{ApiKey, DescribeUserScramCredentialsRequest, DescribeUserScramCredentialsResponse};
use kafka_protocol::protocol::StrBytes;

use crate::acl::Operation;
use crate::error::KafkaCode;
use crate::kafka::context::RequestContext;
use crate::kafka::handlers::Api;
use crate::sasl::{Mechanism, SCRAM_ITERATIONS};

/// The versions served.
pub const API: Api = Api::new(ApiKey::DescribeUserScramCredentials, 0, 0);

pub async fn handle(
    ctx: &RequestContext<'_>,
    request: DescribeUserScramCredentialsRequest,
) -> DescribeUserScramCredentialsResponse {
    if !ctx.allows_cluster(Operation::Describe) {
        return DescribeUserScramCredentialsResponse::default()
            .with_error_code(KafkaCode::ClusterAuthorizationFailed.code())
            .with_error_message(Some(StrBytes::from_static_str("Cluster authorization failed.")));
    }
    let snapshot = ctx.shard.metadata();
    let mut known: BTreeMap<String, BTreeMap<i8, i32>> = BTreeMap::new();
    for user in ctx.shard.config.credentials.names() {
        let mechanisms = known.entry(user).or_default();
        for mechanism in [Mechanism::ScramSha256, Mechanism::ScramSha512] {
            mechanisms.insert(mechanism.scram_type().expect("SCRAM"), SCRAM_ITERATIONS as i32);
        }
    }
    for (user, credentials) in &snapshot.dynamic.scram {
        let mechanisms = known.entry(user.clone()).or_default();
        for (name, stored) in credentials {
            if let Some(code) = Mechanism::parse(name).and_then(Mechanism::scram_type) {
                mechanisms.insert(code, stored.iterations as i32);
            }
        }
    }
    let wanted: Vec<String> = match request.users.as_deref() {
        None | Some([]) => known.keys().cloned().collect(),
        Some(users) => users.iter().map(|u| u.name.to_string()).collect(),
    };
    let results = wanted
        .iter()
        .map(|user| {
            let result = DescribeUserScramCredentialsResult::default().with_user(StrBytes::from_string(user.clone()));
            if wanted.iter().filter(|w| *w == user).count() > 1 {
                return result
                    .with_error_code(KafkaCode::DuplicateResource.code())
                    .with_error_message(Some(StrBytes::from_string(format!(
                        "Cannot describe SCRAM credentials for the same user twice in a single request: {user}"
                    ))));
            }
            match known.get(user) {
                None => result
                    .with_error_code(KafkaCode::ResourceNotFound.code())
                    .with_error_message(Some(StrBytes::from_string(format!(
                        "Attempt to describe a user credential that does not exist: {user}"
                    )))),
                Some(mechanisms) => result.with_credential_infos(
                    mechanisms
                        .iter()
                        .map(|(mechanism, iterations)| {
                            CredentialInfo::default()
                                .with_mechanism(*mechanism)
                                .with_iterations(*iterations)
                        })
                        .collect(),
                ),
            }
        })
        .collect();
    DescribeUserScramCredentialsResponse::default().with_results(results)
}
