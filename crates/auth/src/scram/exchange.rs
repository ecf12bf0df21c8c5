//! The server side of a SCRAM exchange (RFC 5802 section 5):
//!
//! ```text
//! client-first  n,,n=alice,r=<client nonce>
//! server-first  r=<client nonce><server nonce>,s=<salt>,i=<iterations>
//! client-final  c=biws,r=<both nonces>,p=<proof>
//! server-final  v=<server signature>
//! ```
//! [`ClientFirst::parse`] reads the first message and names the user, so that the caller can
//! look the credential up (in storage: this module does no I/O); [`ClientFirst::answer`] gives
//! the server-first message and the [`Pending`] exchange that checks the client's proof.
//!
//! Kafka's dialect: no channel binding, no `m=` extension, and a `tokenauth` extension that
//! asks for delegation-token authentication, which Skiff does not offer.

use base64::engine::general_purpose::STANDARD;
use base64::Engine;

use super::{random_bytes, ScramCredential, ScramMechanism};
use crate::AuthError;

/// Random bytes in a server nonce (base64 makes them printable and comma-free).
const NONCE_BYTES: usize = 24;

/// The client's first message, parsed.
#[derive(Debug, Clone)]
pub struct ClientFirst {
    mechanism: ScramMechanism,
    /// `n,,` or `y,,` or `n,a=alice,`: echoed back base64-encoded in the final message.
    gs2_header: String,
    /// The message without the GS2 header: part of what both sides sign.
    bare: String,
    user: String,
    nonce: String,
}

impl ClientFirst {
    pub fn parse(mechanism: ScramMechanism, message: &[u8]) -> Result<Self, AuthError> {
        let malformed = |reason: &str| AuthError::Malformed {
            mechanism: mechanism.name(),
            reason: reason.to_owned(),
        };
        let text = std::str::from_utf8(message).map_err(|_| malformed("not UTF-8"))?;
        let (flag, rest) = text.split_once(',').ok_or_else(|| malformed("no GS2 header"))?;
        match flag {
            "n" | "y" => {}
            flag if flag.starts_with("p=") => {
                return Err(AuthError::Unsupported("SCRAM channel binding is not supported".into()))
            }
            _ => return Err(malformed("unknown channel binding flag")),
        }
        let (authzid, bare) = rest.split_once(',').ok_or_else(|| malformed("no GS2 header"))?;
        let gs2_header = text[..flag.len() + authzid.len() + 2].to_owned();
        let mut attributes = bare.split(',');
        let user_attribute = attributes.next().unwrap_or_default();
        if user_attribute.starts_with("m=") {
            return Err(AuthError::Unsupported("SCRAM extension m= is not supported".into()));
        }
        let user = user_attribute
            .strip_prefix("n=")
            .map(decode_name)
            .ok_or_else(|| malformed("no user name (n=)"))?
            .ok_or_else(|| malformed("bad escape in the user name"))?;
        let nonce = attributes
            .next()
            .and_then(|attribute| attribute.strip_prefix("r="))
            .ok_or_else(|| malformed("no nonce (r=)"))?;
        if nonce.is_empty() || !nonce.bytes().all(|byte| (0x21..=0x7e).contains(&byte)) {
            return Err(malformed("the nonce is not printable"));
        }
        for extension in attributes {
            if extension.eq_ignore_ascii_case("tokenauth=true") {
                return Err(AuthError::Unsupported(
                    "delegation-token authentication is not supported".into(),
                ));
            }
        }
        if let Some(authzid) = authzid.strip_prefix("a=") {
            if decode_name(authzid).as_deref() != Some(user.as_str()) {
                return Err(AuthError::Unsupported(
                    "an authorization id other than the user name is not supported".into(),
                ));
            }
        } else if !authzid.is_empty() {
            return Err(malformed("bad authorization id"));
        }
        if user.is_empty() {
            return Err(malformed("empty user name"));
        }
        Ok(Self { mechanism, gs2_header, bare: bare.to_owned(), user, nonce: nonce.to_owned() })
    }

    /// The user the client claims to be.
    pub fn user(&self) -> &str {
        &self.user
    }

    /// The server-first message for the user's credential, with a fresh server nonce.
    pub fn answer(self, credential: ScramCredential) -> (Vec<u8>, Pending) {
        let nonce = STANDARD.encode(random_bytes(NONCE_BYTES));
        self.answer_with_nonce(credential, &nonce)
    }

    /// [`ClientFirst::answer`] with a chosen server nonce (the RFC's test vectors).
    pub fn answer_with_nonce(
        self,
        credential: ScramCredential,
        server_nonce: &str,
    ) -> (Vec<u8>, Pending) {
        let nonce = format!("{}{server_nonce}", self.nonce);
        let server_first = format!(
            "r={nonce},s={},i={}",
            STANDARD.encode(&credential.salt),
            credential.iterations
        );
        let pending = Pending {
            mechanism: self.mechanism,
            credential,
            signed_prefix: format!("{},{server_first}", self.bare),
            nonce,
            channel_binding: STANDARD.encode(self.gs2_header.as_bytes()),
            user: self.user,
        };
        (server_first.into_bytes(), pending)
    }
}

/// An exchange waiting for the client's final message.
#[derive(Debug)]
pub struct Pending {
    mechanism: ScramMechanism,
    credential: ScramCredential,
    /// `client-first-bare "," server-first`: the start of the AuthMessage both sides sign.
    signed_prefix: String,
    /// Client and server nonce together: the final message must repeat it.
    nonce: String,
    /// The GS2 header base64-encoded: the final message's `c=` must repeat it.
    channel_binding: String,
    user: String,
}

impl Pending {
    pub fn user(&self) -> &str {
        &self.user
    }

    /// Checks the client's proof; on success returns the server-final message (the server's
    /// signature, which proves to the client that the server knows its credential).
    pub fn finish(self, message: &[u8]) -> Result<Vec<u8>, AuthError> {
        let mechanism = self.mechanism;
        let malformed = |reason: &str| AuthError::Malformed {
            mechanism: mechanism.name(),
            reason: reason.to_owned(),
        };
        let text = std::str::from_utf8(message).map_err(|_| malformed("not UTF-8"))?;
        let (without_proof, proof) =
            text.rsplit_once(",p=").ok_or_else(|| malformed("no proof (p=)"))?;
        let mut attributes = without_proof.split(',');
        if attributes.next().and_then(|c| c.strip_prefix("c=")) != Some(&self.channel_binding) {
            return Err(malformed("the channel binding (c=) does not repeat the GS2 header"));
        }
        // librdkafka repeats its own nonce before the combined one (`r=<client><client><server>`);
        // Kafka accepts a nonce that ends with the exchange's, and so must we. The nonce as sent
        // is part of what the proof signs either way.
        let nonce = attributes.next().and_then(|r| r.strip_prefix("r="));
        if !nonce.is_some_and(|nonce| nonce.ends_with(&self.nonce)) {
            return Err(malformed("the nonce (r=) is not the one of this exchange"));
        }
        let proof = STANDARD.decode(proof).map_err(|_| malformed("the proof is not base64"))?;
        if proof.len() != mechanism.key_length() {
            return Err(malformed("the proof has the wrong length"));
        }
        let auth_message = format!("{},{without_proof}", self.signed_prefix);
        let client_signature = mechanism.hmac(&self.credential.stored_key, auth_message.as_bytes());
        let client_key: Vec<u8> = proof
            .iter()
            .zip(&client_signature)
            .map(|(proof, signature)| proof ^ signature)
            .collect();
        if !self.credential.stored_key_matches(mechanism, &client_key) {
            return Err(AuthError::InvalidCredentials);
        }
        let server_signature = mechanism.hmac(&self.credential.server_key, auth_message.as_bytes());
        Ok(format!("v={}", STANDARD.encode(server_signature)).into_bytes())
    }
}

/// A `saslname`: `=2C` stands for `,` and `=3D` for `=`; any other `=` is malformed.
fn decode_name(name: &str) -> Option<String> {
    let mut decoded = String::with_capacity(name.len());
    let mut rest = name;
    while let Some(at) = rest.find('=') {
        decoded.push_str(&rest[..at]);
        let escape = rest.get(at..at + 3)?;
        decoded.push(match escape {
            "=2C" => ',',
            "=3D" => '=',
            _ => return None,
        });
        rest = &rest[at + 3..];
    }
    decoded.push_str(rest);
    Some(decoded)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// RFC 7677 section 3: user `user`, password `pencil`.
    const CLIENT_FIRST: &str = "n,,n=user,r=rOprNGfwEbeRWgbNEkqO";
    const SERVER_NONCE: &str = "%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0";
    const SERVER_FIRST: &str =
        "r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,s=W22ZaJ0SNY7soEsUEjb6gQ==,i=4096";
    const CLIENT_FINAL: &str = "c=biws,r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,p=dHzbZapWIk4jUhN+Ute9ytag9zjfMHgsqmmiz7AndVQ=";
    const SERVER_FINAL: &str = "v=6rriTRBi23WpRR/wtup+mMhUZUn/dB5nLTJRsjl95G4=";

    fn rfc_credential(password: &str) -> ScramCredential {
        let mechanism = ScramMechanism::Sha256;
        let salt = STANDARD.decode("W22ZaJ0SNY7soEsUEjb6gQ==").expect("the RFC's salt");
        let salted = mechanism.salted_password(password.as_bytes(), &salt, 4096);
        ScramCredential::from_salted_password(mechanism, salt, &salted, 4096)
    }

    fn rfc_pending(password: &str) -> Pending {
        let first = ClientFirst::parse(ScramMechanism::Sha256, CLIENT_FIRST.as_bytes())
            .expect("the RFC's client-first message");
        assert_eq!(first.user(), "user");
        let (server_first, pending) =
            first.answer_with_nonce(rfc_credential(password), SERVER_NONCE);
        assert_eq!(String::from_utf8_lossy(&server_first), SERVER_FIRST);
        pending
    }

    #[test]
    fn the_rfc_7677_exchange_succeeds_with_the_right_password() {
        let server_final = rfc_pending("pencil").finish(CLIENT_FINAL.as_bytes());
        assert_eq!(server_final.map(String::from_utf8), Ok(Ok(SERVER_FINAL.to_owned())));
    }

    #[test]
    fn a_wrong_password_or_a_tampered_message_fails() {
        assert_eq!(
            rfc_pending("pencil!").finish(CLIENT_FINAL.as_bytes()),
            Err(AuthError::InvalidCredentials)
        );
        // librdkafka's form: the client nonce once more in front (the proof no longer matches
        // here, since it signed the RFC's message: what matters is that it is not malformed).
        let librdkafka = CLIENT_FINAL.replace("r=", "r=rOprNGfwEbeRWgbNEkqO");
        assert_eq!(
            rfc_pending("pencil").finish(librdkafka.as_bytes()),
            Err(AuthError::InvalidCredentials)
        );
        let other_nonce = CLIENT_FINAL.replace("k0,p=", "k1,p=");
        assert!(matches!(
            rfc_pending("pencil").finish(other_nonce.as_bytes()),
            Err(AuthError::Malformed { .. })
        ));
        let other_binding = CLIENT_FINAL.replace("c=biws", "c=eSws");
        assert!(matches!(
            rfc_pending("pencil").finish(other_binding.as_bytes()),
            Err(AuthError::Malformed { .. })
        ));
        for bad in ["", "c=biws", "c=biws,r=x,p=!!", "c=biws,r=x,p=AAAA", "\u{0}\u{ff}"] {
            assert!(rfc_pending("pencil").finish(bad.as_bytes()).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn client_first_messages_are_read_as_kafka_clients_write_them() {
        let parse = |text: &str| ClientFirst::parse(ScramMechanism::Sha512, text.as_bytes());
        assert_eq!(
            parse("n,,n=a=2Cb=3Dc,r=abc").map(|first| first.user().to_owned()),
            Ok("a,b=c".to_owned())
        );
        assert!(parse("y,,n=alice,r=abc").is_ok());
        assert!(parse("n,a=alice,n=alice,r=abc").is_ok());
        assert!(parse("n,,n=alice,r=abc,someext=1").is_ok());
        assert!(matches!(parse("n,a=bob,n=alice,r=abc"), Err(AuthError::Unsupported(_))));
        assert!(matches!(parse("p=tls-unique,,n=alice,r=abc"), Err(AuthError::Unsupported(_))));
        assert!(matches!(parse("n,,n=alice,r=abc,tokenauth=true"), Err(AuthError::Unsupported(_))));
        assert!(matches!(parse("n,,m=x,n=alice,r=abc"), Err(AuthError::Unsupported(_))));
        for bad in [
            "",
            "n",
            "n,,",
            "n,,n=alice",
            "n,,n=alice,r=",
            "n,,n=a=2,r=x",
            "x,,n=a,r=b",
            "n,,n=,r=abc",
            "n,,r=abc",
        ] {
            assert!(matches!(parse(bad), Err(AuthError::Malformed { .. })), "{bad:?}");
        }
    }
}
