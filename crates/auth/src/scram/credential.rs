//! What Kafka calls a SCRAM credential: `salt`, `iterations`, `StoredKey` and `ServerKey`.
//!
//! ```text
//! SaltedPassword = Hi(password, salt, iterations)
//! StoredKey      = H(HMAC(SaltedPassword, "Client Key"))
//! ServerKey      = HMAC(SaltedPassword, "Server Key")
//! ```
//! A server that holds these can check a client's proof and prove itself in return, but
//! cannot recover the password nor log in as the user with them.

use serde::{Deserialize, Serialize};
use subtle::ConstantTimeEq;

use super::{random_bytes, ScramMechanism};

/// Bytes of a generated salt.
const SALT_LENGTH: usize = 32;

/// One mechanism's credential of one user, as stored.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ScramCredential {
    #[serde(with = "base64_bytes")]
    pub salt: Vec<u8>,
    pub iterations: u32,
    #[serde(with = "base64_bytes")]
    pub stored_key: Vec<u8>,
    #[serde(with = "base64_bytes")]
    pub server_key: Vec<u8>,
}

impl std::fmt::Debug for ScramCredential {
    /// Shows the iteration count only: keys stay out of logs.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ScramCredential")
            .field("iterations", &self.iterations)
            .finish_non_exhaustive()
    }
}

impl ScramCredential {
    /// A credential for `password` with a fresh random salt.
    pub fn new(mechanism: ScramMechanism, password: &str, iterations: u32) -> Self {
        let salt = random_bytes(SALT_LENGTH);
        let salted = mechanism.salted_password(password.as_bytes(), &salt, iterations);
        Self::from_salted_password(mechanism, salt, &salted, iterations)
    }

    /// The credential from a salted password a client computed (AlterUserScramCredentials
    /// sends the salt and `Hi(password, salt, i)`, never the password).
    pub fn from_salted_password(
        mechanism: ScramMechanism,
        salt: Vec<u8>,
        salted_password: &[u8],
        iterations: u32,
    ) -> Self {
        let client_key = mechanism.hmac(salted_password, b"Client Key");
        Self {
            salt,
            iterations,
            stored_key: mechanism.hash(&client_key),
            server_key: mechanism.hmac(salted_password, b"Server Key"),
        }
    }

    /// Whether `password` is the one this credential was made from (SASL PLAIN). Costs the
    /// credential's iterations of PBKDF2, like a SCRAM login does on the client.
    pub fn matches_password(&self, mechanism: ScramMechanism, password: &str) -> bool {
        let salted = mechanism.salted_password(password.as_bytes(), &self.salt, self.iterations);
        let client_key = mechanism.hmac(&salted, b"Client Key");
        self.stored_key_matches(mechanism, &client_key)
    }

    /// Whether `H(client_key)` is the stored key, compared in constant time.
    pub(crate) fn stored_key_matches(&self, mechanism: ScramMechanism, client_key: &[u8]) -> bool {
        let stored = mechanism.hash(client_key);
        bool::from(stored.ct_eq(&self.stored_key))
    }

    /// Whether the iteration count is within what Kafka accepts.
    pub fn iterations_acceptable(iterations: i64) -> bool {
        (i64::from(ScramMechanism::MIN_ITERATIONS)..=i64::from(ScramMechanism::MAX_ITERATIONS))
            .contains(&iterations)
    }
}

mod base64_bytes {
    use base64::engine::general_purpose::STANDARD;
    use base64::Engine;
    use serde::{Deserialize, Deserializer, Serializer};

    pub(super) fn serialize<S: Serializer>(bytes: &[u8], serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(&STANDARD.encode(bytes))
    }

    pub(super) fn deserialize<'de, D: Deserializer<'de>>(
        deserializer: D,
    ) -> Result<Vec<u8>, D::Error> {
        let text = String::deserialize(deserializer)?;
        STANDARD.decode(text).map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use base64::engine::general_purpose::STANDARD;
    use base64::Engine;

    #[test]
    fn a_credential_matches_its_password_only() {
        for mechanism in ScramMechanism::ALL {
            let credential = ScramCredential::new(mechanism, "pencil", 4096);
            assert_eq!(credential.stored_key.len(), mechanism.key_length());
            assert!(credential.matches_password(mechanism, "pencil"));
            assert!(!credential.matches_password(mechanism, "pencil "));
            assert!(!credential.matches_password(mechanism, ""));
            let again = ScramCredential::new(mechanism, "pencil", 4096);
            assert_ne!(again.salt, credential.salt, "each credential gets its own salt");
            assert_ne!(again.stored_key, credential.stored_key);
        }
    }

    #[test]
    fn credentials_round_trip_through_json_without_the_password() {
        let credential = ScramCredential::new(ScramMechanism::Sha512, "secret-password", 4096);
        let json = serde_json::to_string(&credential).expect("serializes");
        assert!(!json.contains("secret-password"));
        let back: ScramCredential = serde_json::from_str(&json).expect("deserializes");
        assert_eq!(back, credential);
        assert!(!format!("{credential:?}").contains(&STANDARD.encode(&credential.stored_key)));
    }

    #[test]
    fn kafka_bounds_iterations() {
        assert!(ScramCredential::iterations_acceptable(4096));
        assert!(ScramCredential::iterations_acceptable(16384));
        assert!(!ScramCredential::iterations_acceptable(4095));
        assert!(!ScramCredential::iterations_acceptable(16385));
        assert!(!ScramCredential::iterations_acceptable(-1));
    }
}
