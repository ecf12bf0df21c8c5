//! The broker's side of a connection's SASL session ([`skiff_auth::session`], which the proxy
//! shares): a session made from the listener and the client's certificate, and the frame
//! limits it implies.

pub(crate) use skiff_auth::session::Session;
use skiff_auth::Principal;
use skiff_net::{ConnectionInfo, FrameKind};

use crate::config::SaslConfig;

/// The session of a new connection: SASL required on a SASL listener; a mutual-TLS client's
/// certificate subject is its principal until it logs in.
pub(crate) fn new(connection: &ConnectionInfo, sasl: &SaslConfig) -> Session {
    let certificate = connection
        .client_certificate
        .as_ref()
        .and_then(|certificate| Principal::from_certificate(certificate));
    Session::new(connection.listener.protocol.uses_sasl(), certificate, sasl.max_reauth)
}

/// What the next frame is and how large it may be: small until a SASL client has
/// authenticated, and a bare token after a version 0 handshake.
pub(crate) fn frame_kind(session: &Session, max_request_bytes: usize) -> FrameKind {
    let limit = session.frame_limit(max_request_bytes);
    if session.expects_raw_token() {
        FrameKind::Token { max_bytes: limit }
    } else {
        FrameKind::Request { max_request_bytes: limit }
    }
}
