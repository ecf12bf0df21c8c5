//! Who is on a connection: the SASL state of one client connection, shared by the broker and
//! the proxy (which terminates SASL toward its clients with the same users).
//!
//! On a SASL listener (`SASL_PLAINTEXT`, `SASL_SSL`) a client must authenticate before any
//! request but ApiVersions, SaslHandshake and SaslAuthenticate: [`Session::admits`] is the
//! one check a connection makes before dispatching a request. SaslHandshake picks a
//! mechanism; SaslAuthenticate carries its messages ([`Session::authenticate`]), one round trip
//! for PLAIN, two for SCRAM; the users come from storage ([`Users`]), so every broker (and
//! proxy) on one storage URL accepts the same users. A client that handshakes with version 0
//! sends the mechanism's messages as bare size-prefixed tokens instead of SaslAuthenticate
//! requests (old clients); the connection hands those to the same [`Session::authenticate`].
//!
//! With `connections.max.reauth.ms` a session lasts that long (KIP-368): the client is told so
//! in SaslAuthenticate and re-authenticates on the same connection (a new SaslHandshake and
//! SaslAuthenticate, as the same principal); a connection whose session expired is closed at
//! its next request.
//!
//! A failed authentication is answered (SASL_AUTHENTICATION_FAILED with a message) and then
//! the connection is closed ([`Session::must_close`]), with a log line naming the peer, the
//! user and why, and never a password or proof.

use std::sync::Mutex;
use std::time::{Duration, Instant};

use kafka_protocol::messages::ApiKey;
use skiff_protocol::ErrorCode;
use tracing::{debug, warn};

use crate::plain::PlainMessage;
use crate::scram::{ClientFirst, Pending, ScramMechanism};
use crate::{AuthError, Mechanism, Principal, Users};

/// Largest frame a client may send before it has authenticated (Kafka's
/// `sasl.server.max.receive.size`): an unauthenticated client cannot make the broker buffer a
/// request of `--max-request-bytes`.
pub const MAX_UNAUTHENTICATED_BYTES: usize = 512 * 1024;

/// The requests every client may send before it is identified, whatever its ACLs and quotas:
/// finding out what the broker speaks, and authenticating.
pub fn is_authentication(api_key: ApiKey) -> bool {
    matches!(api_key, ApiKey::ApiVersions | ApiKey::SaslHandshake | ApiKey::SaslAuthenticate)
}

/// The SASL state of one connection, and who it acts as.
pub struct Session {
    /// Whether the listener requires SASL.
    required: bool,
    /// A mutual-TLS client's certificate subject: its principal unless it logs in with SASL.
    certificate: Option<Principal>,
    /// How long an authentication lasts (`connections.max.reauth.ms`); `None`: forever.
    max_reauth: Option<Duration>,
    state: Mutex<State>,
}

#[derive(Default)]
struct State {
    /// The mechanism of the last SaslHandshake, until its exchange ends.
    mechanism: Option<Mechanism>,
    /// The handshake was version 0: the exchange comes as bare tokens.
    raw_tokens: bool,
    /// A SCRAM exchange waiting for the client's final message.
    scram: Option<Pending>,
    /// Who the connection acts as, once authenticated, and with which mechanism.
    principal: Option<(Principal, Mechanism)>,
    /// When the session expires (`connections.max.reauth.ms`).
    expires: Option<Instant>,
    /// Authentication failed or the SASL state is broken: close after answering.
    close: bool,
}

/// Why a SASL request is refused: Kafka's error code and the message for the client.
pub struct Refusal {
    pub code: i16,
    pub message: String,
}

/// What a successful step answers.
pub struct Step {
    /// The mechanism's message for the client (the server-first or server-final message).
    pub response: Vec<u8>,
    /// With the last step, how long the session lasts (`session_lifetime_ms`; 0: forever).
    pub lifetime_ms: i64,
}

impl Session {
    /// The session of a new connection: `required` on a SASL listener; `certificate` is the
    /// principal of a mutual-TLS client's certificate, if any.
    pub fn new(
        required: bool,
        certificate: Option<Principal>,
        max_reauth: Option<Duration>,
    ) -> Self {
        Self { required, certificate, max_reauth, state: Mutex::new(State::default()) }
    }

    /// Who the connection acts as (Kafka's rules): the SASL user once authenticated, else a
    /// mutual-TLS client's certificate subject (`User:CN=...`), else `User:ANONYMOUS`.
    pub fn principal(&self) -> Principal {
        if let Some((principal, _)) = &self.state().principal {
            return principal.clone();
        }
        self.certificate.clone().unwrap_or_else(Principal::anonymous)
    }

    fn state(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Whether the connection may send a request of this API now; the reason to close the
    /// connection otherwise (Kafka closes it too).
    pub fn admits(&self, api_key: ApiKey) -> Result<(), String> {
        if is_authentication(api_key) {
            return Ok(());
        }
        self.authenticated(&format!("{api_key:?}"))
    }

    /// Whether a request that needs a login (`request` names it in the reason) may be sent
    /// now: on a SASL listener, only once the client authenticated and while its session lasts.
    pub fn authenticated(&self, request: &str) -> Result<(), String> {
        if !self.required {
            return Ok(());
        }
        let state = self.state();
        match (&state.principal, state.expires) {
            (None, _) => Err(format!("{request} request before SASL authentication")),
            (Some((principal, _)), Some(expires)) if Instant::now() >= expires => Err(format!(
                "the SASL session of {principal} expired (connections.max.reauth.ms) and the \
                 client did not re-authenticate"
            )),
            _ => Ok(()),
        }
    }

    /// Whether the connection must close once the current answer is written.
    pub fn must_close(&self) -> bool {
        self.state().close
    }

    /// The largest frame the client may send next: small until a SASL client has
    /// authenticated (Kafka's `sasl.server.max.receive.size`), `max_request_bytes` after.
    pub fn frame_limit(&self, max_request_bytes: usize) -> usize {
        if self.required && self.state().principal.is_none() {
            max_request_bytes.min(MAX_UNAUTHENTICATED_BYTES)
        } else {
            max_request_bytes
        }
    }

    /// Whether the next frame is a bare SASL token (after a version 0 handshake).
    pub fn expects_raw_token(&self) -> bool {
        let state = self.state();
        state.raw_tokens && state.mechanism.is_some()
    }

    /// SaslHandshake: the client asks for `name`. A re-authentication (KIP-368) must keep the
    /// mechanism it authenticated with.
    pub fn handshake(
        &self,
        name: &str,
        enabled: &[Mechanism],
        version: i16,
    ) -> Result<Mechanism, Refusal> {
        let mut state = self.state();
        if !self.required {
            return Err(Refusal {
                code: ErrorCode::IllegalSaslState.code(),
                message: "this listener does not use SASL".to_owned(),
            });
        }
        let Some(mechanism) = Mechanism::from_name(name).filter(|m| enabled.contains(m)) else {
            state.close = true;
            return Err(Refusal {
                code: ErrorCode::UnsupportedSaslMechanism.code(),
                message: format!("SASL mechanism {name} is not enabled"),
            });
        };
        let reauthenticating_otherwise =
            state.principal.as_ref().is_some_and(|(_, used)| *used != mechanism);
        if state.mechanism.is_some() || reauthenticating_otherwise {
            state.close = true;
            return Err(Refusal {
                code: ErrorCode::IllegalSaslState.code(),
                message: "a SASL exchange is already under way, or re-authentication changes \
                          the mechanism"
                    .to_owned(),
            });
        }
        state.mechanism = Some(mechanism);
        state.raw_tokens = version == 0;
        state.scram = None;
        Ok(mechanism)
    }

    /// One message of the exchange the handshake began (a SaslAuthenticate request or a bare
    /// token). On failure the connection is to be closed after the answer.
    pub async fn authenticate(
        &self,
        users: &Users,
        peer: std::net::SocketAddr,
        token: &[u8],
    ) -> Result<Step, Refusal> {
        let (mechanism, pending) = {
            let mut state = self.state();
            (state.mechanism, state.scram.take())
        };
        let Some(mechanism) = mechanism else {
            self.state().close = true;
            return Err(Refusal {
                code: ErrorCode::IllegalSaslState.code(),
                message: "SaslAuthenticate without a SaslHandshake first".to_owned(),
            });
        };
        let outcome = match (mechanism, pending) {
            (Mechanism::Plain, _) => plain(users, token).await.map(|user| (user, Vec::new())),
            (Mechanism::Scram(scram), None) => {
                return match scram_first(users, scram, token).await {
                    Ok((response, pending)) => {
                        self.state().scram = Some(pending);
                        Ok(Step { response, lifetime_ms: 0 })
                    }
                    Err(failure) => Err(self.failed(peer, mechanism, failure)),
                };
            }
            (Mechanism::Scram(_), Some(pending)) => {
                let user = pending.user().to_owned();
                pending
                    .finish(token)
                    .map(|response| (user.clone(), response))
                    .map_err(|error| Failure { user: Some(user), error: Reason::Auth(error) })
            }
        };
        match outcome {
            Ok((user, response)) => self.succeeded(peer, mechanism, user, response),
            Err(failure) => Err(self.failed(peer, mechanism, failure)),
        }
    }

    fn succeeded(
        &self,
        peer: std::net::SocketAddr,
        mechanism: Mechanism,
        user: String,
        response: Vec<u8>,
    ) -> Result<Step, Refusal> {
        let principal = Principal::user(user);
        let mut state = self.state();
        if let Some((before, _)) = &state.principal {
            if *before != principal {
                let failure = Failure {
                    user: Some(principal.name.clone()),
                    error: Reason::Other(format!("re-authentication as {principal}, not {before}")),
                };
                drop(state);
                return Err(self.failed(peer, mechanism, failure));
            }
            debug!(%peer, %principal, %mechanism, "SASL re-authenticated");
        } else {
            debug!(%peer, %principal, %mechanism, "SASL authenticated");
        }
        let lifetime = self.max_reauth;
        state.expires = lifetime.map(|lifetime| Instant::now() + lifetime);
        state.principal = Some((principal, mechanism));
        state.mechanism = None;
        state.raw_tokens = false;
        let lifetime_ms = lifetime.map_or(0, millis);
        Ok(Step { response, lifetime_ms })
    }

    fn failed(
        &self,
        peer: std::net::SocketAddr,
        mechanism: Mechanism,
        failure: Failure,
    ) -> Refusal {
        let mut state = self.state();
        state.close = true;
        state.mechanism = None;
        state.scram = None;
        let user = failure.user.as_deref().unwrap_or("");
        let reason = failure.error.to_string();
        warn!(%peer, user, %mechanism, %reason, "SASL authentication failed: closing connection");
        let message = match failure.error {
            // The same words whether the user is unknown or the password wrong: a client
            // cannot learn which users exist.
            Reason::Auth(AuthError::UnknownUser { .. } | AuthError::InvalidCredentials) => format!(
                "Authentication failed during authentication due to invalid credentials with \
                 SASL mechanism {mechanism}"
            ),
            Reason::Storage(_) => {
                "Authentication failed: the user store cannot be read right now".to_owned()
            }
            other => format!("Authentication failed: {other}"),
        };
        Refusal { code: ErrorCode::SaslAuthenticationFailed.code(), message }
    }
}

fn millis(duration: Duration) -> i64 {
    i64::try_from(duration.as_millis()).unwrap_or(i64::MAX)
}

/// Why an exchange failed, and for which user (when the client got as far as naming one).
struct Failure {
    user: Option<String>,
    error: Reason,
}

#[derive(Debug, thiserror::Error)]
enum Reason {
    #[error(transparent)]
    Auth(AuthError),
    #[error("reading the user: {0}")]
    Storage(skiff_storage::StorageError),
    #[error("{0}")]
    Other(String),
}

/// PLAIN: checks the password against the user's stored credential. PBKDF2 is CPU work of a
/// millisecond or more: it runs off the async workers.
async fn plain(users: &Users, token: &[u8]) -> Result<String, Failure> {
    let message = PlainMessage::parse(token)
        .map_err(|error| Failure { user: None, error: Reason::Auth(error) })?;
    let user = message.user.clone();
    let fail = |error| Failure { user: Some(user.clone()), error };
    let stored = users
        .get(&message.user)
        .await
        .map_err(|error| fail(Reason::Storage(error)))?
        .ok_or_else(|| fail(Reason::Auth(AuthError::UnknownUser { mechanism: "PLAIN" })))?;
    let matches = tokio::task::spawn_blocking(move || stored.matches_password(&message.password))
        .await
        .unwrap_or(false);
    if matches {
        Ok(user)
    } else {
        Err(fail(Reason::Auth(AuthError::InvalidCredentials)))
    }
}

/// SCRAM's first round trip: the client names the user, the server answers with the user's
/// salt and iterations and its nonce.
async fn scram_first(
    users: &Users,
    mechanism: ScramMechanism,
    token: &[u8],
) -> Result<(Vec<u8>, Pending), Failure> {
    let first = ClientFirst::parse(mechanism, token)
        .map_err(|error| Failure { user: None, error: Reason::Auth(error) })?;
    let user = first.user().to_owned();
    let fail = |error| Failure { user: Some(user.clone()), error };
    let credential = users
        .get(&user)
        .await
        .map_err(|error| fail(Reason::Storage(error)))?
        .and_then(|stored| stored.credential(mechanism).cloned())
        .ok_or_else(|| {
            fail(Reason::Auth(AuthError::UnknownUser { mechanism: mechanism.name() }))
        })?;
    Ok(first.answer(credential))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn session(sasl: bool) -> Session {
        Session::new(sasl, None, None)
    }

    #[test]
    fn a_sasl_listener_admits_only_the_handshake_before_authentication() {
        let session = self::session(true);
        for allowed in [ApiKey::ApiVersions, ApiKey::SaslHandshake, ApiKey::SaslAuthenticate] {
            assert!(session.admits(allowed).is_ok());
        }
        assert!(session.admits(ApiKey::Metadata).is_err_and(|why| why.contains("before SASL")));
        assert!(session.admits(ApiKey::Produce).is_err());
        let plaintext = self::session(false);
        assert!(plaintext.admits(ApiKey::Produce).is_ok());
        assert_eq!(plaintext.principal(), Principal::anonymous());
    }

    #[test]
    fn handshakes_check_the_mechanism_and_the_state() {
        let enabled = [Mechanism::Scram(ScramMechanism::Sha512)];
        let refused = self::session(true);
        assert!(refused.handshake("PLAIN", &enabled, 1).is_err());
        assert!(refused.must_close(), "an unsupported mechanism ends the connection");
        let session = self::session(true);
        assert!(session.handshake("SCRAM-SHA-512", &enabled, 1).is_ok());
        assert!(!session.expects_raw_token());
        assert!(session.handshake("SCRAM-SHA-512", &enabled, 1).is_err(), "twice");
        let old_client = self::session(true);
        assert!(old_client.handshake("SCRAM-SHA-512", &enabled, 0).is_ok());
        assert!(old_client.expects_raw_token());
        let plaintext = self::session(false);
        assert!(plaintext.handshake("PLAIN", &Mechanism::ALL, 1).is_err());
        assert!(!plaintext.must_close());
    }
}
