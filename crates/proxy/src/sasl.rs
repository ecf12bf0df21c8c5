//! SASL at the proxy, on both sides.
//!
//! - **Toward clients** (`--sasl-users`): every proxy port is a SASL listener (SASL_PLAINTEXT,
//!   or SASL_SSL with `--tls-cert`). SaslHandshake and SaslAuthenticate are answered here, by
//!   the same [`Session`] the broker uses, against users kept in a Skiff storage URL
//!   (`skiff user add`); nothing but ApiVersions goes upstream before a client authenticated.
//!   The exchange never reaches the upstream cluster, which may know nothing of SASL.
//! - **Toward the upstream cluster** (`--upstream-sasl-*`): every upstream connection the proxy
//!   opens logs in with the proxy's own credentials ([`login`]) before it carries any request,
//!   so a cluster that requires SASL is reached as one user, whoever the clients are.
//!
//! Together they put users and TLS in front of a plaintext legacy cluster, or give one set of
//! users to clients of a cluster whose credentials stay with the proxy.

use std::fmt;
use std::net::SocketAddr;
use std::time::Duration;

use bytes::{Bytes, BytesMut};
use kafka_protocol::messages::{
    ApiKey, RequestHeader, ResponseHeader, SaslAuthenticateRequest, SaslAuthenticateResponse,
    SaslHandshakeRequest, SaslHandshakeResponse,
};
use kafka_protocol::protocol::{Decodable, Encodable, StrBytes};
use skiff_auth::scram::ScramClient;
use skiff_auth::session::Session;
use skiff_auth::{Mechanism, Users};
use skiff_protocol::header::{decode_header, RequestPrefix};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use crate::error::ProxyError;

/// SaslHandshake versions the proxy offers. Version 0 is offered because librdkafka looks for
/// it before it uses SASL at all, but a client that then handshakes with version 0 (and would
/// send bare tokens) is disconnected: every current client uses version 1 when it is offered.
pub(crate) const HANDSHAKE_VERSIONS: (i16, i16) = (0, 1);
/// SaslAuthenticate versions the proxy answers (what the codec implements).
pub(crate) const AUTHENTICATE_VERSIONS: (i16, i16) = (0, 2);

/// SASL toward clients: who may log in, with which mechanisms, for how long.
#[derive(Clone)]
pub struct ClientSasl {
    /// The users, in a Skiff storage (the state store of `skiff user add`).
    pub users: Users,
    /// Mechanisms offered (`--sasl-enabled-mechanisms`).
    pub mechanisms: Vec<Mechanism>,
    /// How long an authentication lasts before the client must re-authenticate (KIP-368).
    pub max_reauth: Option<Duration>,
}

impl fmt::Debug for ClientSasl {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        formatter
            .debug_struct("ClientSasl")
            .field("mechanisms", &self.mechanisms)
            .field("max_reauth", &self.max_reauth)
            .finish_non_exhaustive()
    }
}

/// The proxy's own login to upstream brokers.
#[derive(Clone)]
pub struct UpstreamSasl {
    pub mechanism: Mechanism,
    pub username: String,
    pub password: String,
}

impl fmt::Debug for UpstreamSasl {
    /// Never prints the password.
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        formatter
            .debug_struct("UpstreamSasl")
            .field("mechanism", &self.mechanism)
            .field("username", &self.username)
            .finish_non_exhaustive()
    }
}

/// What becomes of a client request on a proxy that terminates SASL.
pub(crate) enum Terminated {
    /// An authenticated client's request (or ApiVersions): forward it.
    Forward(BytesMut),
    /// A SASL request answered here: the response frame (without length), and whether the
    /// connection closes once it is written (the authentication failed).
    Answered { frame: BytesMut, close: bool },
}

/// Answers SaslHandshake and SaslAuthenticate; lets through what the session admits.
pub(crate) async fn terminate(
    sasl: &ClientSasl,
    session: &Session,
    peer: SocketAddr,
    prefix: &RequestPrefix,
    frame: BytesMut,
) -> Result<Terminated, ProxyError> {
    let api_key = ApiKey::try_from(prefix.api_key).ok();
    let frame = match api_key {
        Some(ApiKey::SaslHandshake) => {
            let request = decode::<SaslHandshakeRequest>(prefix, frame)?;
            handshake(sasl, session, peer, prefix, &request)?
        }
        Some(ApiKey::SaslAuthenticate) => {
            let request = decode::<SaslAuthenticateRequest>(prefix, frame)?;
            authenticate(sasl, session, peer, prefix, &request).await?
        }
        _ => {
            let admitted = match api_key {
                Some(key) => session.admits(key),
                // An API the codec does not know is no SASL request: it needs a login too.
                None => session.authenticated(&format!("API {}", prefix.api_key)),
            };
            admitted.map_err(ProxyError::Sasl)?;
            return Ok(Terminated::Forward(frame));
        }
    };
    Ok(Terminated::Answered { frame, close: session.must_close() })
}

fn handshake(
    sasl: &ClientSasl,
    session: &Session,
    peer: SocketAddr,
    prefix: &RequestPrefix,
    request: &SaslHandshakeRequest,
) -> Result<BytesMut, ProxyError> {
    if prefix.api_version < 1 {
        return Err(ProxyError::Sasl(
            "SaslHandshake v0 (bare SASL tokens) is not supported by the proxy".to_owned(),
        ));
    }
    let mechanisms = sasl.mechanisms.iter().map(|m| StrBytes::from_static_str(m.name())).collect();
    let mut response = SaslHandshakeResponse::default().with_mechanisms(mechanisms);
    let outcome = session.handshake(&request.mechanism, &sasl.mechanisms, prefix.api_version);
    if let Err(refusal) = outcome {
        tracing::debug!(%peer, reason = %refusal.message, "SaslHandshake refused");
        response.error_code = refusal.code;
    }
    encode(ApiKey::SaslHandshake, prefix, &response)
}

async fn authenticate(
    sasl: &ClientSasl,
    session: &Session,
    peer: SocketAddr,
    prefix: &RequestPrefix,
    request: &SaslAuthenticateRequest,
) -> Result<BytesMut, ProxyError> {
    let response = match session.authenticate(&sasl.users, peer, &request.auth_bytes).await {
        Ok(step) => SaslAuthenticateResponse::default()
            .with_auth_bytes(Bytes::from(step.response))
            .with_session_lifetime_ms(step.lifetime_ms),
        Err(refusal) => SaslAuthenticateResponse::default()
            .with_error_code(refusal.code)
            .with_error_message(Some(StrBytes::from_string(refusal.message))),
    };
    encode(ApiKey::SaslAuthenticate, prefix, &response)
}

/// A client's SASL request (header checked, then the body).
fn decode<R: Decodable>(prefix: &RequestPrefix, frame: BytesMut) -> Result<R, ProxyError> {
    let mut bytes = frame.freeze();
    decode_header(&mut bytes, prefix).map_err(|error| ProxyError::Protocol(error.to_string()))?;
    R::decode(&mut bytes, prefix.api_version)
        .map_err(|error| ProxyError::Protocol(format!("undecodable SASL request: {error}")))
}

/// A response frame (header and body, no length) answering the request of `prefix`.
fn encode<R: Encodable>(
    api_key: ApiKey,
    prefix: &RequestPrefix,
    response: &R,
) -> Result<BytesMut, ProxyError> {
    let header = ResponseHeader::default().with_correlation_id(prefix.correlation_id);
    crate::rewrite::encode(api_key, prefix.api_version, &header, response)
}

/// Largest SASL response accepted from an upstream broker during the login.
const MAX_LOGIN_RESPONSE_BYTES: usize = 64 * 1024;

/// Logs a new upstream connection in as the proxy's user: SaslHandshake v1, then PLAIN's one
/// or SCRAM's two SaslAuthenticate round trips, before the connection carries anything else.
/// SCRAM checks the server's signature too, so a broker that does not know the password
/// cannot pass for the cluster.
pub(crate) async fn login(stream: &mut TcpStream, login: &UpstreamSasl) -> Result<(), String> {
    let handshake = SaslHandshakeRequest::default()
        .with_mechanism(StrBytes::from_static_str(login.mechanism.name()));
    let answer: SaslHandshakeResponse =
        round_trip(stream, ApiKey::SaslHandshake, 1, 0, &handshake).await?;
    if answer.error_code != 0 {
        let offered: Vec<&str> = answer.mechanisms.iter().map(|name| name.as_str()).collect();
        return Err(format!(
            "the upstream refused SASL mechanism {} (error {}; it offers {})",
            login.mechanism.name(),
            answer.error_code,
            offered.join(", ")
        ));
    }
    match login.mechanism {
        Mechanism::Plain => {
            let message = skiff_auth::plain::client_message(&login.username, &login.password);
            authenticate_step(stream, 1, message).await?;
        }
        Mechanism::Scram(mechanism) => {
            let client = ScramClient::new(mechanism, &login.username, &login.password);
            let server_first = authenticate_step(stream, 1, client.first_message()).await?;
            let (client_final, verifier) =
                client.answer(&server_first).map_err(|error| error.to_string())?;
            let server_final = authenticate_step(stream, 2, client_final).await?;
            verifier.verify(&server_final).map_err(|error| {
                format!("the upstream's SCRAM server signature is wrong: {error}")
            })?;
        }
    }
    Ok(())
}

/// One SaslAuthenticate round trip; the server's message, or why it refused.
async fn authenticate_step(
    stream: &mut TcpStream,
    correlation_id: i32,
    message: Vec<u8>,
) -> Result<Bytes, String> {
    let request = SaslAuthenticateRequest::default().with_auth_bytes(Bytes::from(message));
    let answer: SaslAuthenticateResponse =
        round_trip(stream, ApiKey::SaslAuthenticate, 2, correlation_id, &request).await?;
    if answer.error_code != 0 {
        let message = answer.error_message.as_ref().map_or("", |message| message.as_str());
        return Err(format!(
            "the upstream refused the login (error {}): {message}",
            answer.error_code
        ));
    }
    Ok(answer.auth_bytes)
}

/// Writes one request and reads its answer, on a connection nothing else uses yet.
async fn round_trip<Q: Encodable, R: Decodable>(
    stream: &mut TcpStream,
    api_key: ApiKey,
    version: i16,
    correlation_id: i32,
    request: &Q,
) -> Result<R, String> {
    let header = RequestHeader::default()
        .with_request_api_key(api_key as i16)
        .with_request_api_version(version)
        .with_correlation_id(correlation_id)
        .with_client_id(Some(StrBytes::from_static_str("skiff-proxy")));
    let mut frame = BytesMut::new();
    let encoded = header
        .encode(&mut frame, api_key.request_header_version(version))
        .and_then(|()| request.encode(&mut frame, version));
    encoded.map_err(|error| format!("cannot encode {api_key:?}: {error}"))?;
    let length = i32::try_from(frame.len()).map_err(|_| "SASL request too large".to_owned())?;
    let io = |error: std::io::Error| format!("{api_key:?}: {error}");
    stream.write_all(&length.to_be_bytes()).await.map_err(io)?;
    stream.write_all(&frame).await.map_err(io)?;
    let length = stream.read_i32().await.map_err(io)?;
    let length = usize::try_from(length)
        .ok()
        .filter(|length| *length <= MAX_LOGIN_RESPONSE_BYTES)
        .ok_or_else(|| format!("{api_key:?} answer of {length} bytes"))?;
    let mut answer = vec![0; length];
    stream.read_exact(&mut answer).await.map_err(io)?;
    let mut answer = Bytes::from(answer);
    let undecodable = |error| format!("undecodable {api_key:?} answer: {error}");
    let header = ResponseHeader::decode(&mut answer, api_key.response_header_version(version))
        .map_err(undecodable)?;
    if header.correlation_id != correlation_id {
        return Err(format!("{api_key:?} answered with correlation id {}", header.correlation_id));
    }
    R::decode(&mut answer, version).map_err(undecodable)
}
