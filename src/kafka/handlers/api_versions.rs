//! ApiVersions: the versions of every API Sluice serves, built from the one table.

use kafka_protocol::messages::api_versions_response::{ApiVersion, ApiVersionsResponse};
use kafka_protocol::messages::{ApiKey, ApiVersionsRequest};

use crate::error::KafkaCode;
use crate::kafka::context::RequestContext;
use crate::kafka::handlers::{Api, APIS};

/// The versions served.
pub const API: Api = Api::new(ApiKey::ApiVersions, 0, 4);

pub async fn handle(_ctx: &RequestContext<'_>, _request: ApiVersionsRequest) -> ApiVersionsResponse {
    response()
}

/// Every API in the registry, at the versions it advertises.
fn response() -> ApiVersionsResponse {
    ApiVersionsResponse::default().with_api_keys(table())
}

/// The answer to an ApiVersions version we do not know (KIP-511): the error and our table,
/// encoded as v0 so any client can read it.
pub fn unsupported_version() -> ApiVersionsResponse {
    response().with_error_code(KafkaCode::UnsupportedVersion.code())
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
        let produce = response().api_keys.into_iter().find(|a| a.api_key == 0).unwrap();
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
