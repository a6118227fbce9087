//! AlterUserScramCredentials: SCRAM credentials set or deleted online, persisted in the
//! metadata (replicated by the controller quorum in a cluster) and taken by every broker's
//! SASL at once. An upsert carries the salt and the salted password (the client derives
//! them); StoredKey and ServerKey are made here and only they are kept. Kafka's checks, per
//! user: a name, a SCRAM mechanism (UNSUPPORTED_SASL_MECHANISM), 4096..=16384 iterations
//! (UNACCEPTABLE_CREDENTIAL), one alteration per user and request (DUPLICATE_RESOURCE), and a
//! deletion of a credential that exists (RESOURCE_NOT_FOUND). Users of the config file stay
//! as the config defines them; an online credential for one of them takes precedence.

use std::collections::BTreeMap;

use kafka_protocol::messages::alter_user_scram_credentials_response::AlterUserScramCredentialsResult;
use kafka_protocol::messages::{AlterUserScramCredentialsRequest, AlterUserScramCredentialsResponse, ApiKey};
use kafka_protocol::protocol::StrBytes;

use crate::acl::Operation;
use crate::error::KafkaCode;
use crate::kafka::context::RequestContext;
use crate::kafka::handlers::Api;
use crate::metadata::configs::ScramChange;
use crate::sasl::Mechanism;

/// The versions served.
pub const API: Api = Api::new(ApiKey::AlterUserScramCredentials, 0, 0);

/// Kafka's bounds on a credential's iterations.
const ITERATIONS_MIN: i32 = 4096;
const ITERATIONS_MAX: i32 = 16384;

pub async fn handle(
    ctx: &RequestContext<'_>,
    request: AlterUserScramCredentialsRequest,
) -> AlterUserScramCredentialsResponse {
    let snapshot = ctx.shard.metadata();
    let mut errors: BTreeMap<String, (KafkaCode, String)> = BTreeMap::new();
    let mut counts: BTreeMap<String, usize> = BTreeMap::new();
    let users = request
        .deletions
        .iter()
        .map(|d| d.name.to_string())
        .chain(request.upsertions.iter().map(|u| u.name.to_string()));
    for user in users {
        *counts.entry(user).or_default() += 1;
    }
    let mut refuse = |user: &str, code: KafkaCode, message: String| {
        errors.entry(user.to_string()).or_insert((code, message));
    };
    if !ctx.allows_cluster(Operation::Alter) {
        for user in counts.keys() {
            refuse(
                user,
                KafkaCode::ClusterAuthorizationFailed,
                "Cluster authorization failed.".into(),
            );
        }
    }
    for (user, count) in &counts {
        if user.is_empty() {
            refuse(
                user,
                KafkaCode::UnacceptableCredential,
                "Username must not be empty".into(),
            );
        } else if *count > 1 {
            refuse(
                user,
                KafkaCode::DuplicateResource,
                "A user credential cannot be altered twice in the same request".into(),
            );
        }
    }
    let mut change = ScramChange::default();
    for deletion in &request.deletions {
        let user = deletion.name.to_string();
        let Some(mechanism) = Mechanism::from_scram_type(deletion.mechanism) else {
            refuse(
                &user,
                KafkaCode::UnsupportedSaslMechanism,
                "Unknown SCRAM mechanism".into(),
            );
            continue;
        };
        let exists = snapshot
            .dynamic
            .scram
            .get(&user)
            .is_some_and(|m| m.contains_key(mechanism.name()));
        if !exists {
            let message = if ctx.shard.config.credentials.contains(&user) {
                format!("{user} is defined in the broker's config file, which alone can remove it")
            } else {
                "Attempt to delete a user credential that does not exist".into()
            };
            refuse(&user, KafkaCode::ResourceNotFound, message);
            continue;
        }
        change.deletions.push((user, mechanism.name().to_string()));
    }
    for upsertion in &request.upsertions {
        let user = upsertion.name.to_string();
        let Some(mechanism) = Mechanism::from_scram_type(upsertion.mechanism) else {
            refuse(
                &user,
                KafkaCode::UnsupportedSaslMechanism,
                "Unknown SCRAM mechanism".into(),
            );
            continue;
        };
        if !(ITERATIONS_MIN..=ITERATIONS_MAX).contains(&upsertion.iterations) {
            refuse(
                &user,
                KafkaCode::UnacceptableCredential,
                format!(
                    "Iterations {} must be between {ITERATIONS_MIN} and {ITERATIONS_MAX}",
                    upsertion.iterations
                ),
            );
            continue;
        }
        if upsertion.salt.is_empty() || upsertion.salted_password.is_empty() {
            refuse(
                &user,
                KafkaCode::UnacceptableCredential,
                "Salt and salted password must be given".into(),
            );
            continue;
        }
        let stored = crate::sasl::stored_from_salted(
            mechanism,
            &upsertion.salt,
            &upsertion.salted_password,
            upsertion.iterations as u32,
        )
        .expect("a SCRAM mechanism");
        change.upserts.push((user, mechanism.name().to_string(), stored));
    }
    // Only the users without an error change.
    change.deletions.retain(|(user, _)| !errors.contains_key(user));
    change.upserts.retain(|(user, _, _)| !errors.contains_key(user));
    let changed: Vec<String> = change
        .deletions
        .iter()
        .map(|(u, _)| u.clone())
        .chain(change.upserts.iter().map(|(u, _, _)| u.clone()))
        .collect();
    if !changed.is_empty() {
        if let Err(refusal) = crate::node::authority::alter_scram(ctx.shard, change).await {
            for user in changed {
                errors.insert(user, (refusal.code, refusal.message.clone()));
            }
        }
    }
    let results = counts
        .keys()
        .map(|user| {
            let result = AlterUserScramCredentialsResult::default().with_user(StrBytes::from_string(user.clone()));
            match errors.get(user) {
                None => result,
                Some((code, message)) => result
                    .with_error_code(code.code())
                    .with_error_message(Some(StrBytes::from_string(message.clone()))),
            }
        })
        .collect();
    AlterUserScramCredentialsResponse::default().with_results(results)
}
