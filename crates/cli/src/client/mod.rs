//! A small Kafka client for the `skiff` user tools: one connection, one request at a time.
//!
//! One connection is enough because every Skiff broker serves every partition and group (brokers
//! hold no state), so the tools never need to route requests to a partition leader.
//!
//! - [`frame`]: request/response framing (pure, unit-tested).
//! - [`versions`]: ApiVersions negotiation table.
//! - [`errors`]: Kafka error codes in readable form.
//! - [`lookups`]: Metadata and ListOffsets helpers shared by the commands.
//! - [`records`]: record-batch encoding for Produce and decoding of fetched batches.

pub(crate) mod errors;
mod frame;
pub(crate) mod groups;
pub(crate) mod lookups;
pub(crate) mod records;
mod versions;

use std::time::Duration;

use anyhow::{anyhow, bail, Context};
use bytes::Bytes;
use kafka_protocol::messages::{ApiKey, ApiVersionsRequest, ApiVersionsResponse};
use kafka_protocol::protocol::{Encodable, Request, StrBytes};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use versions::VersionTable;

/// How long to wait for a TCP connection before trying the next bootstrap address.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);

/// Upper bound on one request's round trip; generous because Produce and CreateTopics carry
/// their own 30 s broker-side timeouts, but finite so a wedged broker cannot hang a script.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(60);

/// ApiVersions error meaning "I don't speak that version; here are the ones I do".
const UNSUPPORTED_VERSION: i16 = 35;

/// A connection to one broker with the negotiated API versions.
pub(crate) struct Client {
    stream: TcpStream,
    address: String,
    next_correlation_id: i32,
    versions: VersionTable,
}

impl Client {
    /// Connects to the first reachable address of a comma-separated bootstrap list and
    /// negotiates API versions.
    pub(crate) async fn connect(bootstrap: &str) -> anyhow::Result<Self> {
        let (stream, address) = open_stream(bootstrap).await?;
        let mut client =
            Self { stream, address, next_correlation_id: 0, versions: VersionTable::default() };
        client.versions = client.negotiate_versions().await?;
        Ok(client)
    }

    /// The version to speak for request type `R`: the highest that the broker, the codec and
    /// `cap` allow (pass `i16::MAX` for no cap).
    pub(crate) fn version<R: Request>(&self, cap: i16) -> anyhow::Result<i16> {
        self.versions.choose(api_key_of::<R>()?, R::VERSIONS, cap)
    }

    /// Whether the broker advertises `api_key`.
    pub(crate) fn supports(&self, api_key: ApiKey) -> bool {
        self.versions.supports(api_key)
    }

    /// Sends `request` as `version` and waits for its response.
    pub(crate) async fn send<R: Request>(
        &mut self,
        request: R,
        version: i16,
    ) -> anyhow::Result<R::Response> {
        let api_key = api_key_of::<R>()?;
        let body = self.round_trip(api_key, version, &request).await?;
        frame::decode_body(body, api_key, version)
    }

    /// Sends `request` without reading a response: Kafka sends none for Produce with acks=0.
    pub(crate) async fn send_without_response<R: Request>(
        &mut self,
        request: R,
        version: i16,
    ) -> anyhow::Result<()> {
        let api_key = api_key_of::<R>()?;
        self.write_request(api_key, version, &request).await?;
        Ok(())
    }

    /// ApiVersions v3 first; a broker that doesn't speak v3 answers UNSUPPORTED_VERSION, and
    /// v0 (which every broker speaks) gets us its table.
    async fn negotiate_versions(&mut self) -> anyhow::Result<VersionTable> {
        let request = ApiVersionsRequest::default()
            .with_client_software_name(StrBytes::from_static_str(frame::CLIENT_ID))
            .with_client_software_version(StrBytes::from_static_str(env!("CARGO_PKG_VERSION")));
        let body = self.round_trip(ApiKey::ApiVersions, 3, &request).await?;
        let response: ApiVersionsResponse =
            if leading_error_code(&body) == Some(UNSUPPORTED_VERSION) {
                let body =
                    self.round_trip(ApiKey::ApiVersions, 0, &ApiVersionsRequest::default()).await?;
                frame::decode_body(body, ApiKey::ApiVersions, 0)?
            } else {
                frame::decode_body(body, ApiKey::ApiVersions, 3)?
            };
        errors::check(response.error_code, None, "ApiVersions")?;
        Ok(VersionTable::from_response(&response))
    }

    async fn round_trip<B: Encodable>(
        &mut self,
        api_key: ApiKey,
        version: i16,
        body: &B,
    ) -> anyhow::Result<Bytes> {
        let exchange = async {
            let correlation_id = self.write_request(api_key, version, body).await?;
            self.read_response(api_key, version, correlation_id).await
        };
        tokio::time::timeout(REQUEST_TIMEOUT, exchange).await.map_err(|_| {
            anyhow!("{api_key:?} request timed out after {}s", REQUEST_TIMEOUT.as_secs())
        })?
    }

    async fn write_request<B: Encodable>(
        &mut self,
        api_key: ApiKey,
        version: i16,
        body: &B,
    ) -> anyhow::Result<i32> {
        let correlation_id = self.next_correlation_id;
        self.next_correlation_id = self.next_correlation_id.wrapping_add(1);
        let request = frame::encode_request(api_key, version, correlation_id, body)?;
        tracing::debug!(api = ?api_key, version, correlation_id, bytes = request.len(), "request");
        self.stream
            .write_all(&request)
            .await
            .with_context(|| format!("sending {api_key:?} to {}", self.address))?;
        Ok(correlation_id)
    }

    async fn read_response(
        &mut self,
        api_key: ApiKey,
        version: i16,
        correlation_id: i32,
    ) -> anyhow::Result<Bytes> {
        let mut prefix = [0u8; 4];
        self.stream
            .read_exact(&mut prefix)
            .await
            .map_err(|error| self.read_error(api_key, error))?;
        let length = frame::check_response_length(prefix)?;
        let mut frame = vec![0u8; length];
        self.stream
            .read_exact(&mut frame)
            .await
            .map_err(|error| self.read_error(api_key, error))?;
        frame::split_response(Bytes::from(frame), api_key, version, correlation_id)
    }

    /// A closed connection mid-request usually means the broker refused the request (Kafka
    /// brokers disconnect on versions they don't know), which deserves a plainer message.
    fn read_error(&self, api_key: ApiKey, error: std::io::Error) -> anyhow::Error {
        if error.kind() == std::io::ErrorKind::UnexpectedEof {
            anyhow!(
                "broker {} closed the connection instead of answering {api_key:?}",
                self.address
            )
        } else {
            anyhow::Error::new(error)
                .context(format!("reading the {api_key:?} response from {}", self.address))
        }
    }
}

/// The error code every ApiVersions response version starts with.
fn leading_error_code(body: &[u8]) -> Option<i16> {
    Some(i16::from_be_bytes([*body.first()?, *body.get(1)?]))
}

fn api_key_of<R: Request>() -> anyhow::Result<ApiKey> {
    ApiKey::try_from(R::KEY).map_err(|()| anyhow!("unknown API key {}", R::KEY))
}

/// Tries each comma-separated `HOST:PORT` in turn and reports every failure if none answers.
async fn open_stream(bootstrap: &str) -> anyhow::Result<(TcpStream, String)> {
    let mut failures = Vec::new();
    for address in bootstrap.split(',').map(str::trim).filter(|address| !address.is_empty()) {
        match tokio::time::timeout(CONNECT_TIMEOUT, skiff_resolve::connect(address)).await {
            Ok(Ok(stream)) => {
                // Requests are small and each waits for its answer: don't let Nagle delay them.
                stream.set_nodelay(true).with_context(|| format!("configuring {address}"))?;
                return Ok((stream, address.to_owned()));
            }
            Ok(Err(error)) => failures.push(format!("{address}: {error}")),
            Err(_) => failures.push(format!("{address}: no answer in {CONNECT_TIMEOUT:?}")),
        }
    }
    if failures.is_empty() {
        bail!("no bootstrap address given (use --bootstrap HOST:PORT or SKIFF_BOOTSTRAP)");
    }
    bail!(
        "cannot connect to a broker ({}); is one running there? (set --bootstrap or SKIFF_BOOTSTRAP)",
        failures.join("; ")
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_the_leading_error_code() {
        assert_eq!(leading_error_code(&[0, 35, 0, 0]), Some(35));
        assert_eq!(leading_error_code(&[0]), None);
    }

    #[tokio::test]
    async fn refused_connections_say_where_and_what_to_do() {
        // Port 1 on localhost is essentially never listening.
        let error = Client::connect("127.0.0.1:1").await.err().map(|error| error.to_string());
        let error = error.unwrap_or_default();
        assert!(error.contains("127.0.0.1:1"), "{error}");
        assert!(error.contains("SKIFF_BOOTSTRAP"), "{error}");
    }
}
