//! Produce answers with the partitions the proxy refused: merged into the upstream's answer, or
//! the whole answer when nothing went upstream.

use bytes::BytesMut;
use kafka_protocol::messages::{ApiKey, ProduceResponse, ResponseHeader};

use super::{decode, encode, RequestInfo};
use crate::error::ProxyError;
use crate::validate::Refusals;

/// The upstream's answer `frame` (correlation id already the client's) with `refusals` merged.
pub(crate) fn merge(
    request: RequestInfo,
    frame: BytesMut,
    refusals: &Refusals,
) -> Result<BytesMut, ProxyError> {
    let version = request.api_version;
    let (header, upstream) = decode::<ProduceResponse>(ApiKey::Produce, version, frame.freeze())?;
    encode(ApiKey::Produce, version, &header, &refusals.answer(Some(upstream)))
}

/// The answer to a request of which every partition was refused.
pub(crate) fn answer(request: RequestInfo, refusals: &Refusals) -> Result<BytesMut, ProxyError> {
    let header = ResponseHeader::default().with_correlation_id(request.correlation_id);
    encode(ApiKey::Produce, request.api_version, &header, &refusals.answer(None))
}
