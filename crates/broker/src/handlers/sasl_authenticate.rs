//! SaslAuthenticate: one message of the SASL exchange the handshake began, and the broker's
//! reply to it. The last successful one tells the client how long its session lasts
//! (`session_lifetime_ms`, KIP-368). A failure is answered with SASL_AUTHENTICATION_FAILED
//! and closes the connection (the session decides; see [`crate::session`]).

use bytes::Bytes;
pub(super) use kafka_protocol::messages::SaslAuthenticateRequest;
use kafka_protocol::messages::SaslAuthenticateResponse;

use super::{str_bytes, RequestContext};
use crate::Broker;

pub(super) async fn handle(
    broker: &Broker,
    _version: i16,
    request: SaslAuthenticateRequest,
    context: &RequestContext<'_>,
) -> SaslAuthenticateResponse {
    let peer = context.connection.peer;
    match context.session.authenticate(&broker.users(), peer, &request.auth_bytes).await {
        Ok(step) => SaslAuthenticateResponse::default()
            .with_auth_bytes(Bytes::from(step.response))
            .with_session_lifetime_ms(step.lifetime_ms),
        Err(refusal) => SaslAuthenticateResponse::default()
            .with_error_code(refusal.code)
            .with_error_message(Some(str_bytes(refusal.message))),
    }
}
