//! SASL messages as an unauthenticated client sends them (SaslAuthenticate bytes or bare v0
//! tokens): PLAIN, SCRAM's client-first and client-final. Any bytes must be parsed or refused
//! with an error, never panic.
#![no_main]

use std::sync::OnceLock;

use libfuzzer_sys::fuzz_target;
use skiff_auth::plain::PlainMessage;
use skiff_auth::scram::ClientFirst;
use skiff_auth::{ScramCredential, ScramMechanism};

/// One credential for every run: deriving it costs 4096 PBKDF2 rounds.
fn credential() -> &'static ScramCredential {
    static CREDENTIAL: OnceLock<ScramCredential> = OnceLock::new();
    CREDENTIAL.get_or_init(|| ScramCredential::new(ScramMechanism::Sha256, "pencil", 4096))
}

fuzz_target!(|data: &[u8]| {
    let _ = PlainMessage::parse(data);
    let _ = ClientFirst::parse(ScramMechanism::Sha512, data);
    // The client-final message of an exchange that began well.
    if let Ok(first) =
        ClientFirst::parse(ScramMechanism::Sha256, b"n,,n=user,r=fyko+d2lbbFgONRv9qkxdawL")
    {
        let (_, pending) = first.answer_with_nonce(credential().clone(), "3rfcNHYJY1ZVvWVs7j");
        let _ = pending.finish(data);
    }
});
