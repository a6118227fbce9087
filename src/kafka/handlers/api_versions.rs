//! ApiVersions: the versions of every API Sluice serves, built from the one table.

use kafka_protocol::messages::api_versions_response::{ApiVersion, ApiVersionsResponse};

use crate::error::KafkaCode;
use crate::kafka::handlers::APIS;

pub fn handle() -> ApiVersionsResponse {
    ApiVersionsResponse::default().with_api_keys(table())
}

/// The answer to an ApiVersions version we do not know (KIP-511): the error and our table,
/// encoded as v0 so any client can read it.
pub fn unsupported_version() -> ApiVersionsResponse {
    handle().with_error_code(KafkaCode::UnsupportedVersion.code())
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
        let produce = handle().api_keys.into_iter().find(|a| a.api_key == 0).unwrap();
        assert_eq!(produce.min_version, 0);
    }

    #[test]
    fn advertised_versions_are_within_what_the_codec_supports() {
        for api in APIS {
            let codec = api.key.valid_versions();
            assert!(api.min_served >= codec.min && api.max <= codec.max, "{:?}", api.key);
            assert!(api.min <= api.min_served, "{:?}", api.key);
        }
    }
}
