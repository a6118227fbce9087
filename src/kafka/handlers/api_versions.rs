//! ApiVersions: the versions of every API Sluice serves, built from the one table, and (v3+)
//! the features it supports and has finalized: `transaction.version`, which tells a client
//! whether to use KIP-890's second phase (implicit adds, an epoch bump at every ending).

use kafka_protocol::messages::api_versions_response::{
    ApiVersion, ApiVersionsResponse, FinalizedFeatureKey, SupportedFeatureKey,
};
use kafka_protocol::messages::{ApiKey, ApiVersionsRequest};
use kafka_protocol::protocol::StrBytes;

use crate::error::KafkaCode;
use crate::kafka::context::RequestContext;
use crate::kafka::handlers::{Api, APIS};

/// The versions served.
pub const API: Api = Api::new(ApiKey::ApiVersions, 0, 4);

/// The feature naming the transaction protocol version.
const TRANSACTION_VERSION_FEATURE: &str = "transaction.version";

/// The epoch of the finalized features: they are fixed by the configuration, never changed
/// online (a client keeps the features of the highest epoch it has seen; -1 is "none").
const FINALIZED_FEATURES_EPOCH: i64 = 1;

pub async fn handle(ctx: &RequestContext<'_>, _request: ApiVersionsRequest) -> ApiVersionsResponse {
    response(ctx.shard.config.transaction_version)
}

/// Every API in the registry, at the versions it advertises, and the features (a feature at
/// level 0 is not finalized, as in Kafka).
fn response(transaction_version: i16) -> ApiVersionsResponse {
    let finalized = (transaction_version > 0)
        .then(|| {
            FinalizedFeatureKey::default()
                .with_name(StrBytes::from_static_str(TRANSACTION_VERSION_FEATURE))
                .with_min_version_level(transaction_version)
                .with_max_version_level(transaction_version)
        })
        .into_iter()
        .collect();
    ApiVersionsResponse::default()
        .with_api_keys(table())
        .with_supported_features(vec![SupportedFeatureKey::default()
            .with_name(StrBytes::from_static_str(TRANSACTION_VERSION_FEATURE))
            .with_min_version(0)
            .with_max_version(crate::constants::TRANSACTION_VERSION_MAX)])
        .with_finalized_features_epoch(FINALIZED_FEATURES_EPOCH)
        .with_finalized_features(finalized)
}

/// The answer to an ApiVersions version we do not know (KIP-511): the error and our table,
/// encoded as v0 so any client can read it.
pub fn unsupported_version() -> ApiVersionsResponse {
    response(0).with_error_code(KafkaCode::UnsupportedVersion.code())
}

fn table() -> Vec<ApiVersion> {
    APIS.iter()
        .map(|api| {
            ApiVersion::default()
                .with_api_key(api.key as i16)
                .with_min_version(api.min)
                .with_max_version(api.max)
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn produce_is_advertised_from_v0() {
        let produce = response(2).api_keys.into_iter().find(|a| a.api_key == 0).unwrap();
        assert_eq!(produce.min_version, 0);
    }

    /// Every advertised version is one the codec has, or one read through an older wire form
    /// it has (the same bytes, or the same but for topic ids).
    #[test]
    fn advertised_versions_are_within_what_the_codec_supports() {
        use crate::kafka::handlers::codec_version;
        use crate::kafka::topic_ids;
        for api in APIS {
            let codec = api.key.valid_versions();
            assert!(api.min_served >= codec.min, "{:?}", api.key);
            assert!(api.min <= api.min_served, "{:?}", api.key);
            for version in codec.max + 1..=api.max {
                let wire = if topic_ids::by_topic_id(api.key, version) {
                    topic_ids::BY_NAME
                } else {
                    codec_version(api.key, version)
                };
                assert!(wire <= codec.max, "{:?} v{version} has no wire form", api.key);
            }
        }
    }
}
