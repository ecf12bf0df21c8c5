//! Who a client is: the SASL mechanisms a broker accepts, and the users it knows.
//!
//! - [`scram`]: SCRAM-SHA-256 and SCRAM-SHA-512 (RFC 5802, RFC 7677): salted, iterated
//!   credentials ([`ScramCredential`]), the server side of the exchange and the client side
//!   ([`scram::ScramClient`], to log in to another broker).
//! - [`plain`]: SASL PLAIN (RFC 4616), checked against the same SCRAM credentials, so no
//!   password is ever stored, not even for PLAIN; and the message a PLAIN client sends.
//! - [`users`]: the users and their credentials, kept in the storage engine's state store like
//!   every other fact, so every broker on one storage URL knows the same users.
//! - [`Principal`]: the identity a connection acts as once authenticated (`User:alice`).
//! - [`acl`]: Kafka's ACL model, the authorizer's decision and the ACLs in storage.
//! - [`session`]: the SASL state of one client connection (handshake, exchange, expiry), the
//!   same for the broker and the proxy.
//! - [`quota`]: Kafka's client quotas (per user and client id), their precedence, the
//!   sampled rate and throttle time, and the quotas in storage (enforced by the broker's
//!   `quotas` module).
//!
//! The cryptography is RustCrypto's (`pbkdf2`, `hmac`, `sha2`, `subtle`); this crate only
//! reads and writes the mechanisms' messages and keeps the credentials.

pub mod acl;
pub mod plain;
mod principal;
pub mod quota;
pub mod scram;
pub mod session;
pub mod users;

pub use principal::Principal;
pub use scram::{ScramCredential, ScramMechanism};
pub use users::{User, Users};

/// A SASL mechanism a listener may accept.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Mechanism {
    Plain,
    Scram(ScramMechanism),
}

impl Mechanism {
    /// Every mechanism Skiff implements, in the order brokers offer them.
    pub const ALL: [Mechanism; 3] = [
        Mechanism::Plain,
        Mechanism::Scram(ScramMechanism::Sha256),
        Mechanism::Scram(ScramMechanism::Sha512),
    ];

    /// The IANA name clients ask for: `PLAIN`, `SCRAM-SHA-256`, `SCRAM-SHA-512`.
    pub fn name(self) -> &'static str {
        match self {
            Mechanism::Plain => "PLAIN",
            Mechanism::Scram(scram) => scram.name(),
        }
    }

    /// The mechanism of that name (names are case sensitive in SASL).
    pub fn from_name(name: &str) -> Option<Mechanism> {
        Mechanism::ALL.into_iter().find(|mechanism| mechanism.name() == name)
    }

    /// Parses a comma-separated list such as Kafka's `sasl.enabled.mechanisms`.
    pub fn parse_list(list: &str) -> Result<Vec<Mechanism>, String> {
        let mut mechanisms = Vec::new();
        for name in list.split(',').map(str::trim).filter(|name| !name.is_empty()) {
            let mechanism = Mechanism::from_name(&name.to_ascii_uppercase()).ok_or_else(|| {
                format!(
                    "unknown SASL mechanism {name}: expected PLAIN, SCRAM-SHA-256 or SCRAM-SHA-512"
                )
            })?;
            if !mechanisms.contains(&mechanism) {
                mechanisms.push(mechanism);
            }
        }
        if mechanisms.is_empty() {
            return Err("no SASL mechanism given".to_owned());
        }
        Ok(mechanisms)
    }
}

impl std::fmt::Display for Mechanism {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

/// Why an authentication failed. The message is for the broker's log and the client's error
/// message; it never holds a password, a proof or a key.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AuthError {
    /// The client's message is not what the mechanism expects at this step.
    #[error("malformed {mechanism} message: {reason}")]
    Malformed { mechanism: &'static str, reason: String },
    /// No such user, or the user has no credential for this mechanism.
    #[error("unknown user or no {mechanism} credential for it")]
    UnknownUser { mechanism: &'static str },
    /// The password or proof did not match the stored credential.
    #[error("invalid credentials")]
    InvalidCredentials,
    /// Something the mechanism allows but Skiff does not offer (channel binding, delegation
    /// tokens, an authorization id other than the user).
    #[error("{0}")]
    Unsupported(String),
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mechanism_lists_parse_like_kafkas_setting() {
        let all = Mechanism::parse_list("PLAIN, scram-sha-256,SCRAM-SHA-512,PLAIN");
        assert_eq!(all, Ok(Mechanism::ALL.to_vec()));
        assert!(Mechanism::parse_list("GSSAPI").is_err_and(|error| error.contains("GSSAPI")));
        assert!(Mechanism::parse_list(" , ").is_err());
        assert_eq!(
            Mechanism::from_name("SCRAM-SHA-512").map(Mechanism::name),
            Some("SCRAM-SHA-512")
        );
        assert_eq!(Mechanism::from_name("plain"), None, "SASL names are case sensitive");
    }
}
