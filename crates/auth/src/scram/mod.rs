//! SCRAM (RFC 5802) with SHA-256 and SHA-512 (RFC 7677), as Kafka names and uses them.
//!
//! - [`credential`]: what is stored per user and mechanism: a salt, an iteration count and two
//!   keys derived from the salted password. The password itself is never kept, and the keys
//!   cannot be used to log in (a client must prove it knows the password, not the keys).
//! - [`exchange`]: the server side of the two round trips (client-first, server-first,
//!   client-final, server-final).
//! - [`client`]: the client side of the same exchange ([`ScramClient`]), for logging in to
//!   another broker with credentials of our own (the proxy's upstream).
//!
//! The primitives are RustCrypto's: PBKDF2 (`Hi` in the RFC), HMAC and SHA-2.

pub mod client;
pub mod credential;
pub mod exchange;

use hmac::{Hmac, KeyInit, Mac};
use sha2::{Digest, Sha256, Sha512};

pub use client::{ScramClient, ScramClientFinal};
pub use credential::ScramCredential;
pub use exchange::{ClientFirst, Pending};

/// The SCRAM hash functions Kafka supports.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum ScramMechanism {
    Sha256,
    Sha512,
}

impl ScramMechanism {
    pub const ALL: [ScramMechanism; 2] = [ScramMechanism::Sha256, ScramMechanism::Sha512];

    /// Fewer iterations than this are refused (Kafka's minimum).
    pub const MIN_ITERATIONS: u32 = 4096;
    /// More iterations than this are refused (Kafka's maximum): each authentication pays for
    /// them.
    pub const MAX_ITERATIONS: u32 = 16384;

    pub fn name(self) -> &'static str {
        match self {
            ScramMechanism::Sha256 => "SCRAM-SHA-256",
            ScramMechanism::Sha512 => "SCRAM-SHA-512",
        }
    }

    pub fn from_name(name: &str) -> Option<ScramMechanism> {
        ScramMechanism::ALL.into_iter().find(|mechanism| mechanism.name() == name)
    }

    /// The number Kafka's Describe/AlterUserScramCredentials use: 1 and 2.
    pub fn kafka_code(self) -> i8 {
        match self {
            ScramMechanism::Sha256 => 1,
            ScramMechanism::Sha512 => 2,
        }
    }

    pub fn from_kafka_code(code: i8) -> Option<ScramMechanism> {
        ScramMechanism::ALL.into_iter().find(|mechanism| mechanism.kafka_code() == code)
    }

    /// Length of the hash, hence of every key and proof.
    pub fn key_length(self) -> usize {
        match self {
            ScramMechanism::Sha256 => 32,
            ScramMechanism::Sha512 => 64,
        }
    }

    /// `Hi(password, salt, i)`: PBKDF2 with HMAC of this hash, one block.
    pub fn salted_password(self, password: &[u8], salt: &[u8], iterations: u32) -> Vec<u8> {
        let mut out = vec![0; self.key_length()];
        match self {
            ScramMechanism::Sha256 => {
                pbkdf2::pbkdf2_hmac::<Sha256>(password, salt, iterations, &mut out)
            }
            ScramMechanism::Sha512 => {
                pbkdf2::pbkdf2_hmac::<Sha512>(password, salt, iterations, &mut out)
            }
        }
        out
    }

    /// `HMAC(key, data)`.
    pub fn hmac(self, key: &[u8], data: &[u8]) -> Vec<u8> {
        match self {
            ScramMechanism::Sha256 => hmac_of::<Hmac<Sha256>>(key, data),
            ScramMechanism::Sha512 => hmac_of::<Hmac<Sha512>>(key, data),
        }
    }

    /// `H(data)`.
    pub fn hash(self, data: &[u8]) -> Vec<u8> {
        match self {
            ScramMechanism::Sha256 => Sha256::digest(data).to_vec(),
            ScramMechanism::Sha512 => Sha512::digest(data).to_vec(),
        }
    }
}

impl std::fmt::Display for ScramMechanism {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

fn hmac_of<M: Mac + KeyInit>(key: &[u8], data: &[u8]) -> Vec<u8> {
    // HMAC hashes keys longer than a block and pads shorter ones: any length is valid.
    let mut mac = <M as KeyInit>::new_from_slice(key).expect("HMAC takes keys of any length");
    mac.update(data);
    mac.finalize().into_bytes().to_vec()
}

/// Random bytes for salts and nonces, from the operating system.
pub(crate) fn random_bytes(length: usize) -> Vec<u8> {
    let mut bytes = vec![0; length];
    // The OS random source failing is not something a broker can carry on without.
    getrandom::fill(&mut bytes).expect("the operating system's random source failed");
    bytes
}
