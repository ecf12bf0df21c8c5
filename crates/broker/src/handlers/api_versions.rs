//! ApiVersions: generated from the handler table, so it cannot lie.

use kafka_protocol::messages::api_versions_response::ApiVersion;
use kafka_protocol::messages::{ApiVersionsRequest, ApiVersionsResponse};
use skiff_protocol::ErrorCode;

use super::RequestContext;
use crate::Broker;

fn api_keys() -> Vec<ApiVersion> {
    super::supported()
        .into_iter()
        .map(|(key, range)| {
            ApiVersion::default()
                .with_api_key(key as i16)
                .with_min_version(range.min)
                .with_max_version(range.max)
        })
        .collect()
}

pub(super) async fn handle(
    _broker: &Broker,
    _version: i16,
    _request: ApiVersionsRequest,
    _context: &RequestContext<'_>,
) -> ApiVersionsResponse {
    ApiVersionsResponse::default().with_api_keys(api_keys())
}

/// The answer to an ApiVersions version we do not know: error 35 in a v0-shaped body listing
/// what we support, as Kafka does, so the client can retry with a version we both speak.
pub(super) fn unsupported_version() -> ApiVersionsResponse {
    ApiVersionsResponse::default()
        .with_error_code(ErrorCode::UnsupportedVersion.code())
        .with_api_keys(api_keys())
}
