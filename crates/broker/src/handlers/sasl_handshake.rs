//! SaslHandshake: the client names the SASL mechanism it will authenticate with; the answer
//! lists the mechanisms this broker enables (`--sasl-enabled-mechanisms`). Version 0 means the
//! exchange follows as bare tokens, version 1 as SaslAuthenticate requests (the connection's
//! [`skiff_auth::session::Session`] keeps track).

pub(super) use kafka_protocol::messages::SaslHandshakeRequest;
use kafka_protocol::messages::SaslHandshakeResponse;

use super::{str_bytes, RequestContext};
use crate::Broker;

pub(super) async fn handle(
    broker: &Broker,
    version: i16,
    request: SaslHandshakeRequest,
    context: &RequestContext<'_>,
) -> SaslHandshakeResponse {
    let enabled = &broker.config.sasl.mechanisms;
    let mechanisms = enabled.iter().map(|mechanism| str_bytes(mechanism.name())).collect();
    let response = SaslHandshakeResponse::default().with_mechanisms(mechanisms);
    match context.session.handshake(&request.mechanism, enabled, version) {
        Ok(_) => response,
        Err(refusal) => {
            tracing::debug!(peer = %context.connection.peer, reason = %refusal.message, "SaslHandshake refused");
            response.with_error_code(refusal.code)
        }
    }
}
