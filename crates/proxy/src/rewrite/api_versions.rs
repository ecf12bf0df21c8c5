//! ApiVersions: cap versions so that every response a client can ask for is one the proxy can
//! rewrite.
//!
//! - Metadata, FindCoordinator, DescribeCluster: at most what the kafka-protocol codec decodes
//!   (a newer upstream may offer more; the proxy must decode these to rewrite addresses).
//! - Produce at most v9 and Fetch at most v15: from Produce v10 and Fetch v16 on, errors carry
//!   the new leader's address (`node_endpoints`, KIP-951), which would send clients around the
//!   proxy. The versions below lose only that hint; clients refresh metadata instead.
//! - ShareFetch, ShareAcknowledge (node endpoints again) and DescribeQuorum (controller
//!   listeners) are not offered at all.
//!
//! An answer that does not decode, or carries an error (an UNSUPPORTED_VERSION answer has a v0
//! body whatever the request's version), passes through untouched.

use bytes::BytesMut;
use kafka_protocol::messages::api_versions_response::ApiVersion;
use kafka_protocol::messages::{ApiKey, ApiVersionsResponse};

use super::{decode, encode};

/// Highest versions the proxy lets clients use, where it must limit them.
fn version_cap(api_key: i16) -> Option<i16> {
    let key = ApiKey::try_from(api_key).ok()?;
    match key {
        ApiKey::Produce => Some(9),
        ApiKey::Fetch => Some(15),
        ApiKey::Metadata | ApiKey::FindCoordinator | ApiKey::DescribeCluster => {
            Some(key.valid_versions().max)
        }
        ApiKey::ShareFetch | ApiKey::ShareAcknowledge | ApiKey::DescribeQuorum => Some(-1),
        _ => None,
    }
}

pub(super) fn rewrite(version: i16, frame: BytesMut) -> BytesMut {
    edit(version, frame, |response| {
        response.api_keys.retain_mut(|api| match version_cap(api.api_key) {
            Some(cap) => {
                api.max_version = api.max_version.min(cap);
                api.max_version >= api.min_version
            }
            None => true,
        });
    })
}

/// Decodes a successful answer, lets `change` edit it and encodes it again; an answer that
/// does not decode or carries an error is returned as it came.
fn edit(version: i16, frame: BytesMut, change: impl FnOnce(&mut ApiVersionsResponse)) -> BytesMut {
    let original = frame.freeze();
    let Ok((header, mut response)) =
        decode::<ApiVersionsResponse>(ApiKey::ApiVersions, version, original.clone())
    else {
        return BytesMut::from(original);
    };
    if response.error_code != 0 {
        return BytesMut::from(original);
    }
    change(&mut response);
    encode(ApiKey::ApiVersions, version, &header, &response)
        .unwrap_or_else(|_| BytesMut::from(original))
}

/// On a proxy that terminates SASL, SaslHandshake and SaslAuthenticate are answered by the
/// proxy, so the versions offered are the proxy's, whatever the upstream offers (a plaintext
/// cluster may offer none). An error answer passes through untouched.
pub(super) fn offer_sasl(version: i16, frame: BytesMut) -> BytesMut {
    let handshake = ApiKey::SaslHandshake as i16;
    let authenticate = ApiKey::SaslAuthenticate as i16;
    edit(version, frame, |response| {
        response.api_keys.retain(|api| api.api_key != handshake && api.api_key != authenticate);
        for (api_key, (min, max)) in [
            (handshake, crate::sasl::HANDSHAKE_VERSIONS),
            (authenticate, crate::sasl::AUTHENTICATE_VERSIONS),
        ] {
            let offered = ApiVersion::default().with_api_key(api_key);
            response.api_keys.push(offered.with_min_version(min).with_max_version(max));
        }
        response.api_keys.sort_by_key(|api| api.api_key);
    })
}

#[cfg(test)]
mod tests {
    use super::super::tests::{decode_response, encode_response, test_topology};
    use super::super::{response, RequestInfo};
    use kafka_protocol::messages::api_versions_response::ApiVersion;
    use kafka_protocol::messages::{ApiKey, ApiVersionsResponse};

    fn api(key: ApiKey, min: i16, max: i16) -> ApiVersion {
        ApiVersion::default().with_api_key(key as i16).with_min_version(min).with_max_version(max)
    }

    #[test]
    fn caps_versions_whose_answers_carry_addresses() {
        let topology = test_topology();
        let upstream = ApiVersionsResponse::default().with_api_keys(vec![
            api(ApiKey::Produce, 3, 13),
            api(ApiKey::Fetch, 4, 18),
            api(ApiKey::Metadata, 0, 99),
            api(ApiKey::ListOffsets, 1, 10),
            api(ApiKey::DescribeQuorum, 0, 2),
        ]);
        for version in [0, 3] {
            let frame = encode_response(ApiKey::ApiVersions, version, 1, &upstream);
            let request = RequestInfo {
                api_key: ApiKey::ApiVersions as i16,
                api_version: version,
                correlation_id: 2,
            };
            let rewritten = response(&topology, request, frame).unwrap_or_default();
            let (correlation_id, answer): (i32, ApiVersionsResponse) =
                decode_response(ApiKey::ApiVersions, version, rewritten);
            assert_eq!(correlation_id, 2);
            let ranges: Vec<(i16, i16, i16)> =
                answer.api_keys.iter().map(|a| (a.api_key, a.min_version, a.max_version)).collect();
            assert_eq!(ranges, vec![(0, 3, 9), (1, 4, 15), (3, 0, 13), (2, 1, 10)], "v{version}");
        }
    }

    #[test]
    fn an_error_answer_passes_through() {
        let topology = test_topology();
        let upstream = ApiVersionsResponse::default().with_error_code(35).with_api_keys(vec![api(
            ApiKey::Produce,
            3,
            13,
        )]);
        let frame = encode_response(ApiKey::ApiVersions, 0, 1, &upstream);
        // The client asked with v4; the v0 error body does not decode at v4 and must pass as is.
        let request =
            RequestInfo { api_key: ApiKey::ApiVersions as i16, api_version: 4, correlation_id: 3 };
        let rewritten = response(&topology, request, frame.clone()).unwrap_or_default();
        assert_eq!(&rewritten[4..], &frame[4..]);
        assert_eq!(&rewritten[..4], &3i32.to_be_bytes());
    }
}
