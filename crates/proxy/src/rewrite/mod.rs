//! Responses the proxy must change before a client sees them.
//!
//! Every response gets the client's own correlation id back (the first four bytes after the
//! length, whatever the API). Only responses that name brokers are decoded, changed and encoded
//! again: Metadata, FindCoordinator and DescribeCluster (broker addresses point at the proxy), and
//! ApiVersions (versions capped so that clients never pick one whose answer could carry upstream
//! addresses the proxy cannot rewrite). Everything else passes through as bytes, tagged fields
//! and all. The kafka-protocol structs keep unknown tagged fields, so a decoded and re-encoded
//! response loses nothing either.
//!
//! Decoding needs the request's API key and version (the response header version depends on
//! both: flexible versions add a tagged-field section), which the client connection remembers
//! for each in-flight request.

mod api_versions;
mod describe_cluster;
mod find_coordinator;
mod metadata;
pub(crate) mod produce;

use bytes::{Bytes, BytesMut};
use kafka_protocol::messages::{ApiKey, ResponseHeader};
use kafka_protocol::protocol::{Decodable, Encodable};

use crate::error::ProxyError;
use crate::frame::set_correlation_id;
use crate::topology::Topology;

/// The request a response answers, as the client sent it.
#[derive(Debug, Clone, Copy)]
pub(crate) struct RequestInfo {
    pub(crate) api_key: i16,
    pub(crate) api_version: i16,
    pub(crate) correlation_id: i32,
}

/// Turns an upstream response frame (without length prefix) into the one the client gets.
pub(crate) fn response(
    topology: &Topology,
    request: RequestInfo,
    mut frame: BytesMut,
) -> Result<BytesMut, ProxyError> {
    set_correlation_id(&mut frame, 0, request.correlation_id);
    let Ok(api_key) = ApiKey::try_from(request.api_key) else { return Ok(frame) };
    let version = request.api_version;
    match api_key {
        ApiKey::Metadata => {
            reencode(api_key, version, frame, |response| metadata::rewrite(topology, response))
        }
        ApiKey::FindCoordinator => reencode(api_key, version, frame, |response| {
            find_coordinator::rewrite(topology, response)
        }),
        ApiKey::DescribeCluster => reencode(api_key, version, frame, |response| {
            describe_cluster::rewrite(topology, response)
        }),
        ApiKey::ApiVersions => Ok(api_versions::rewrite(version, frame)),
        _ => Ok(frame),
    }
}

/// An ApiVersions answer on a proxy that terminates SASL: the SASL versions offered are the
/// proxy's own (see `api_versions::offer_sasl`). Other answers are returned as they are.
pub(crate) fn offer_sasl(request: RequestInfo, frame: BytesMut) -> BytesMut {
    if request.api_key == ApiKey::ApiVersions as i16 {
        api_versions::offer_sasl(request.api_version, frame)
    } else {
        frame
    }
}

/// Replaces one upstream broker address in a response by the proxy address standing for it.
fn point_at_proxy(
    topology: &Topology,
    host: &mut kafka_protocol::protocol::StrBytes,
    port: &mut i32,
) -> Result<(), ProxyError> {
    let (proxy_host, proxy_port) = topology.advertise(host, *port)?;
    *host = kafka_protocol::protocol::StrBytes::from_string(proxy_host);
    *port = proxy_port;
    Ok(())
}

/// Decodes header and body, lets `edit` change the body, encodes both again.
fn reencode<R: Decodable + Encodable>(
    api_key: ApiKey,
    version: i16,
    frame: BytesMut,
    edit: impl FnOnce(&mut R) -> Result<(), ProxyError>,
) -> Result<BytesMut, ProxyError> {
    let (header, mut body) = decode::<R>(api_key, version, frame.freeze())?;
    edit(&mut body)?;
    encode(api_key, version, &header, &body)
}

fn decode<R: Decodable>(
    api_key: ApiKey,
    version: i16,
    mut frame: Bytes,
) -> Result<(ResponseHeader, R), ProxyError> {
    let malformed = |error| codec_error("undecodable", api_key, version, error);
    let header_version = api_key.response_header_version(version);
    let header = ResponseHeader::decode(&mut frame, header_version).map_err(malformed)?;
    let body = R::decode(&mut frame, version).map_err(malformed)?;
    Ok((header, body))
}

/// A response frame (header and body, no length) as the client is answered.
pub(crate) fn encode<R: Encodable>(
    api_key: ApiKey,
    version: i16,
    header: &ResponseHeader,
    body: &R,
) -> Result<BytesMut, ProxyError> {
    let failed = |error| codec_error("cannot encode", api_key, version, error);
    let mut out = BytesMut::new();
    header.encode(&mut out, api_key.response_header_version(version)).map_err(failed)?;
    body.encode(&mut out, version).map_err(failed)?;
    Ok(out)
}

fn codec_error(
    what: &str,
    api_key: ApiKey,
    version: i16,
    error: impl std::fmt::Display,
) -> ProxyError {
    ProxyError::Protocol(format!("{what} {api_key:?} v{version} response: {error}"))
}

#[cfg(test)]
pub(super) mod tests {
    //! Helpers shared by the rewriters' tests.

    use super::*;
    use crate::topology::Topology;

    /// A topology advertising host `proxy.test`, its routes listening on any free port.
    pub(crate) fn test_topology() -> Topology {
        // Route listeners sent to a dropped receiver are simply closed again.
        let (sender, _) = tokio::sync::mpsc::unbounded_channel();
        let listen = std::net::SocketAddr::from(([127, 0, 0, 1], 0));
        Topology::new(listen, "proxy.test".to_owned(), Default::default(), 16, sender)
    }

    /// The proxy port of the upstream broker at `address`; -1 if it has no route.
    pub(crate) fn proxy_port(topology: &Topology, address: &str) -> i32 {
        topology.port_of(address).map_or(-1, i32::from)
    }

    pub(crate) fn encode_response<R: Encodable>(
        api_key: ApiKey,
        version: i16,
        correlation_id: i32,
        body: &R,
    ) -> BytesMut {
        let header = ResponseHeader::default().with_correlation_id(correlation_id);
        encode(api_key, version, &header, body).unwrap_or_default()
    }

    pub(crate) fn decode_response<R: Decodable + Default>(
        api_key: ApiKey,
        version: i16,
        frame: BytesMut,
    ) -> (i32, R) {
        match decode::<R>(api_key, version, frame.freeze()) {
            Ok((header, body)) => (header.correlation_id, body),
            Err(error) => panic!("rewritten response does not decode: {error}"),
        }
    }
}
