//! The client side of a SCRAM exchange (RFC 5802 section 3), for logging in to another broker
//! (the proxy's upstream) with credentials of our own:
//!
//! ```text
//! client-first  n,,n=alice,r=<client nonce>                         ScramClient::first_message
//! server-first  r=<client nonce><server nonce>,s=<salt>,i=<iterations>
//! client-final  c=biws,r=<both nonces>,p=<proof>                    ScramClient::answer
//! server-final  v=<server signature>                                ScramClientFinal::verify
//! ```
//! The client proves it knows the password without sending it; the server proves in return
//! that it holds the user's credential, which [`ScramClientFinal::verify`] checks: a login is
//! only complete once the server's signature has been verified.
//!
//! Everything the server sends is treated as hostile: it is parsed without panicking, and the
//! iteration count it asks for is bounded by [`ScramMechanism::MIN_ITERATIONS`] and
//! [`ScramMechanism::MAX_ITERATIONS`], so that a server cannot make us burn CPU (nor accept a
//! count too low to protect the password).
//!
//! Kafka's dialect: no channel binding (GS2 header `n,,`), no authorization id other than the
//! user, no SASLprep of the user name or password (Kafka's clients use them as UTF-8 as is).

use base64::engine::general_purpose::STANDARD;
use base64::Engine;
use subtle::ConstantTimeEq;

use super::{random_bytes, ScramMechanism};
use crate::AuthError;

/// Random bytes in a client nonce (base64 makes them printable and comma-free).
const NONCE_BYTES: usize = 24;

/// No channel binding, no authorization id: the header Kafka's clients send.
const GS2_HEADER: &str = "n,,";

/// At most this many characters of the server's text are quoted in an error, escaped: errors
/// end up in logs, and the server is not trusted with what goes there.
const QUOTED_CHARS: usize = 100;

/// A SCRAM login in progress, before the server's first message.
///
/// The password is kept until the server names the salt and iteration count; it stays out of
/// `Debug`.
pub struct ScramClient {
    mechanism: ScramMechanism,
    /// `n=<saslname>,r=<nonce>`: the client-first message without its GS2 header, the start of
    /// what both sides sign.
    bare: String,
    nonce: String,
    password: String,
}

impl std::fmt::Debug for ScramClient {
    /// Shows the mechanism and the first message only: the password stays out of logs.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ScramClient")
            .field("mechanism", &self.mechanism)
            .field("bare", &self.bare)
            .finish_non_exhaustive()
    }
}

impl ScramClient {
    /// A login as `user` with `password`, with a fresh random client nonce.
    ///
    /// An empty user name is not refused here: the server refuses it.
    pub fn new(mechanism: ScramMechanism, user: &str, password: &str) -> Self {
        let nonce = STANDARD.encode(random_bytes(NONCE_BYTES));
        Self::with_nonce(mechanism, user, password, &nonce)
    }

    /// [`ScramClient::new`] with a chosen client nonce (the RFC's test vectors). The nonce must
    /// be printable ASCII without commas; a real login must use a fresh random one.
    pub fn with_nonce(mechanism: ScramMechanism, user: &str, password: &str, nonce: &str) -> Self {
        Self {
            mechanism,
            bare: format!("n={},r={nonce}", encode_name(user)),
            nonce: nonce.to_owned(),
            password: password.to_owned(),
        }
    }

    /// The client-first message: `n,,n=<user>,r=<client nonce>`.
    pub fn first_message(&self) -> Vec<u8> {
        format!("{GS2_HEADER}{}", self.bare).into_bytes()
    }

    /// Reads the server-first message and gives the client-final message (with the proof that
    /// we know the password) and the [`ScramClientFinal`] that checks the server's answer.
    ///
    /// ```text
    /// SaltedPassword  = Hi(password, salt, iterations)
    /// ClientKey       = HMAC(SaltedPassword, "Client Key")
    /// StoredKey       = H(ClientKey)
    /// AuthMessage     = client-first-bare "," server-first "," client-final-without-proof
    /// ClientSignature = HMAC(StoredKey, AuthMessage)
    /// ClientProof     = ClientKey XOR ClientSignature
    /// ServerSignature = HMAC(HMAC(SaltedPassword, "Server Key"), AuthMessage)
    /// ```
    /// An `e=` error from the server is [`AuthError::Unsupported`] with the server's reason
    /// (see [`ScramClientFinal::verify`]), and so is an iteration count outside Kafka's bounds
    /// or a mandatory extension (`m=`); anything else unexpected is [`AuthError::Malformed`].
    pub fn answer(self, server_first: &[u8]) -> Result<(Vec<u8>, ScramClientFinal), AuthError> {
        let mechanism = self.mechanism;
        let text = std::str::from_utf8(server_first)
            .map_err(|_| malformed(mechanism, "the server-first message is not UTF-8"))?;
        let ServerFirst { nonce, salt, iterations } =
            ServerFirst::parse(mechanism, text, &self.nonce)?;
        let salted = mechanism.salted_password(self.password.as_bytes(), &salt, iterations);
        let without_proof = format!("c={},r={nonce}", STANDARD.encode(GS2_HEADER));
        let auth_message = format!("{},{text},{without_proof}", self.bare);
        let client_key = mechanism.hmac(&salted, b"Client Key");
        let stored_key = mechanism.hash(&client_key);
        let client_signature = mechanism.hmac(&stored_key, auth_message.as_bytes());
        let proof: Vec<u8> = client_key
            .iter()
            .zip(&client_signature)
            .map(|(key, signature)| key ^ signature)
            .collect();
        let server_key = mechanism.hmac(&salted, b"Server Key");
        let server_signature = mechanism.hmac(&server_key, auth_message.as_bytes());
        let client_final = format!("{without_proof},p={}", STANDARD.encode(proof));
        Ok((client_final.into_bytes(), ScramClientFinal { mechanism, server_signature }))
    }
}

/// A login waiting for the server-final message: the server's signature we expect.
pub struct ScramClientFinal {
    mechanism: ScramMechanism,
    server_signature: Vec<u8>,
}

impl std::fmt::Debug for ScramClientFinal {
    /// Shows the mechanism only: the expected signature stays out of logs.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ScramClientFinal")
            .field("mechanism", &self.mechanism)
            .finish_non_exhaustive()
    }
}

impl ScramClientFinal {
    /// Checks the server-final message `v=<server signature>` (extensions after it are
    /// ignored), comparing in constant time. Only a server that holds the user's credential
    /// can sign the exchange, so a signature that does not match means we are not talking to
    /// the server we think: [`AuthError::InvalidCredentials`], though it was the client that
    /// authenticated successfully.
    ///
    /// An `e=<reason>` from the server (RFC 5802's `server-error`, such as `invalid-proof`) is
    /// [`AuthError::Unsupported`] with the reason quoted: that variant's message is shown as
    /// is, whereas [`AuthError::Malformed`] would call a well-formed refusal malformed. Kafka
    /// itself does not send `e=` (it fails SaslAuthenticate instead), other servers may.
    /// Anything else is [`AuthError::Malformed`].
    pub fn verify(self, server_final: &[u8]) -> Result<(), AuthError> {
        let mechanism = self.mechanism;
        let text = std::str::from_utf8(server_final)
            .map_err(|_| malformed(mechanism, "the server-final message is not UTF-8"))?;
        let first = text.split(',').next().unwrap_or_default();
        if let Some(reason) = first.strip_prefix("e=") {
            return Err(server_error(mechanism, reason));
        }
        let signature = first
            .strip_prefix("v=")
            .ok_or_else(|| malformed(mechanism, "no server signature (v=)"))?;
        let signature = STANDARD
            .decode(signature)
            .map_err(|_| malformed(mechanism, "the server signature is not base64"))?;
        if signature.len() != self.server_signature.len() {
            return Err(malformed(mechanism, "the server signature has the wrong length"));
        }
        if bool::from(signature.ct_eq(&self.server_signature)) {
            Ok(())
        } else {
            Err(AuthError::InvalidCredentials)
        }
    }
}

/// The server-first message, parsed and checked.
struct ServerFirst<'a> {
    /// Client and server nonce together: the client-final message repeats it.
    nonce: &'a str,
    salt: Vec<u8>,
    iterations: u32,
}

impl<'a> ServerFirst<'a> {
    /// `[m=...,]r=<nonce>,s=<salt>,i=<iterations>[,extensions]`, or `e=<reason>`.
    fn parse(
        mechanism: ScramMechanism,
        text: &'a str,
        client_nonce: &str,
    ) -> Result<Self, AuthError> {
        let mut attributes = text.split(',');
        let first = attributes.next().unwrap_or_default();
        if let Some(reason) = first.strip_prefix("e=") {
            return Err(server_error(mechanism, reason));
        }
        if first.starts_with("m=") {
            // RFC 5802: a client that does not understand a mandatory extension must fail.
            return Err(AuthError::Unsupported(format!(
                "the server requires a {mechanism} extension (m=) that Skiff does not support"
            )));
        }
        let nonce = first
            .strip_prefix("r=")
            .ok_or_else(|| malformed(mechanism, "no nonce (r=) in the server-first message"))?;
        check_nonce(mechanism, nonce, client_nonce)?;
        let salt = attributes
            .next()
            .and_then(|attribute| attribute.strip_prefix("s="))
            .ok_or_else(|| malformed(mechanism, "no salt (s=) in the server-first message"))?;
        let salt =
            STANDARD.decode(salt).map_err(|_| malformed(mechanism, "the salt is not base64"))?;
        if salt.is_empty() {
            return Err(malformed(mechanism, "the salt is empty"));
        }
        let iterations = attributes.next().and_then(|attribute| attribute.strip_prefix("i="));
        let iterations = iterations
            .ok_or_else(|| malformed(mechanism, "no iteration count (i=) in the server-first"))?;
        let iterations = parse_iterations(mechanism, iterations)?;
        Ok(Self { nonce, salt, iterations })
    }
}

/// The server's nonce must start with ours (so that the exchange is the one we started) and
/// add its own part (so that it is fresh on the server's side too), in printable characters.
fn check_nonce(
    mechanism: ScramMechanism,
    nonce: &str,
    client_nonce: &str,
) -> Result<(), AuthError> {
    if !nonce.starts_with(client_nonce) || nonce.len() <= client_nonce.len() {
        return Err(malformed(mechanism, "the server nonce does not extend the client nonce"));
    }
    if !nonce.bytes().all(|byte| (0x21..=0x7e).contains(&byte)) {
        return Err(malformed(mechanism, "the server nonce is not printable"));
    }
    Ok(())
}

/// Decimal digits within Kafka's bounds. A count outside them is refused before any PBKDF2
/// work: too many would cost us CPU, too few would weaken what the proof reveals.
fn parse_iterations(mechanism: ScramMechanism, iterations: &str) -> Result<u32, AuthError> {
    if iterations.is_empty() || !iterations.bytes().all(|byte| byte.is_ascii_digit()) {
        return Err(malformed(mechanism, "the iteration count is not a number"));
    }
    let bounds = ScramMechanism::MIN_ITERATIONS..=ScramMechanism::MAX_ITERATIONS;
    match iterations.parse::<u32>() {
        Ok(count) if bounds.contains(&count) => Ok(count),
        _ => Err(AuthError::Unsupported(format!(
            "the server asks for {} {mechanism} iterations; Skiff accepts {} to {}",
            quote(iterations),
            ScramMechanism::MIN_ITERATIONS,
            ScramMechanism::MAX_ITERATIONS
        ))),
    }
}

/// The server refused the exchange (`e=<reason>`).
fn server_error(mechanism: ScramMechanism, reason: &str) -> AuthError {
    AuthError::Unsupported(format!("the server refused the {mechanism} login: {}", quote(reason)))
}

fn malformed(mechanism: ScramMechanism, reason: &str) -> AuthError {
    AuthError::Malformed { mechanism: mechanism.name(), reason: reason.to_owned() }
}

/// The server's text, fit for a log line: control characters escaped, at most
/// [`QUOTED_CHARS`] characters.
fn quote(text: &str) -> String {
    let mut quoted: String = text.chars().take(QUOTED_CHARS).flat_map(char::escape_debug).collect();
    if text.chars().nth(QUOTED_CHARS).is_some() {
        quoted.push_str("...");
    }
    quoted
}

/// A `saslname`: `=` becomes `=3D` and `,` becomes `=2C` (in that order, so that the `=` of
/// `=2C` is not escaped again).
fn encode_name(name: &str) -> String {
    name.replace('=', "=3D").replace(',', "=2C")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::scram::{ClientFirst, ScramCredential};

    /// RFC 7677 section 3: user `user`, password `pencil`.
    const CLIENT_NONCE: &str = "rOprNGfwEbeRWgbNEkqO";
    const CLIENT_FIRST: &str = "n,,n=user,r=rOprNGfwEbeRWgbNEkqO";
    const SERVER_FIRST: &str =
        "r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,s=W22ZaJ0SNY7soEsUEjb6gQ==,i=4096";
    const CLIENT_FINAL: &str = "c=biws,r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,p=dHzbZapWIk4jUhN+Ute9ytag9zjfMHgsqmmiz7AndVQ=";
    const SERVER_FINAL: &str = "v=6rriTRBi23WpRR/wtup+mMhUZUn/dB5nLTJRsjl95G4=";

    fn rfc_client() -> ScramClient {
        ScramClient::with_nonce(ScramMechanism::Sha256, "user", "pencil", CLIENT_NONCE)
    }

    fn rfc_final() -> ScramClientFinal {
        let (client_final, expect) = rfc_client().answer(SERVER_FIRST.as_bytes()).expect("valid");
        assert_eq!(String::from_utf8_lossy(&client_final), CLIENT_FINAL);
        expect
    }

    /// The whole exchange against this crate's server side; returns the server's verdict on
    /// our proof and ours on its signature.
    fn exchange(
        mechanism: ScramMechanism,
        user: &str,
        password: &str,
        credential: ScramCredential,
    ) -> Result<(), AuthError> {
        let client = ScramClient::new(mechanism, user, password);
        let first = ClientFirst::parse(mechanism, &client.first_message())?;
        assert_eq!(first.user(), user);
        let (server_first, pending) = first.answer(credential);
        let (client_final, expect) = client.answer(&server_first)?;
        let server_final = pending.finish(&client_final)?;
        expect.verify(&server_final)
    }

    #[test]
    fn the_rfc_7677_exchange_gives_the_rfcs_messages() {
        assert_eq!(String::from_utf8_lossy(&rfc_client().first_message()), CLIENT_FIRST);
        assert_eq!(rfc_final().verify(SERVER_FINAL.as_bytes()), Ok(()));
        // Extensions after the signature are ignored.
        assert_eq!(rfc_final().verify(format!("{SERVER_FINAL},x=1").as_bytes()), Ok(()));
        // A client that knows another password computes another proof.
        let wrong =
            ScramClient::with_nonce(ScramMechanism::Sha256, "user", "pencil!", CLIENT_NONCE);
        let (client_final, _) = wrong.answer(SERVER_FIRST.as_bytes()).expect("valid");
        assert_ne!(String::from_utf8_lossy(&client_final), CLIENT_FINAL);
    }

    #[test]
    fn a_full_exchange_with_the_server_side_succeeds_for_both_mechanisms() {
        for mechanism in ScramMechanism::ALL {
            for user in ["alice", "a=b,c", "=2C,=3D="] {
                let credential = ScramCredential::new(mechanism, "pencil", 4096);
                assert_eq!(exchange(mechanism, user, "pencil", credential), Ok(()), "{user:?}");
            }
        }
    }

    #[test]
    fn the_server_refuses_a_wrong_password() {
        for mechanism in ScramMechanism::ALL {
            let credential = ScramCredential::new(mechanism, "pencil", 4096);
            assert_eq!(
                exchange(mechanism, "alice", "pencil!", credential),
                Err(AuthError::InvalidCredentials)
            );
        }
        // A credential of the other hash does not match either (its keys have another length,
        // which the server refuses without panicking).
        let credential = ScramCredential::new(ScramMechanism::Sha512, "pencil", 4096);
        assert!(exchange(ScramMechanism::Sha256, "alice", "pencil", credential).is_err());
    }

    #[test]
    fn a_tampered_or_foreign_server_signature_is_refused() {
        let mut signature = STANDARD.decode(&SERVER_FINAL[2..]).expect("the RFC's signature");
        signature[0] ^= 1;
        let tampered = format!("v={}", STANDARD.encode(&signature));
        assert_eq!(rfc_final().verify(tampered.as_bytes()), Err(AuthError::InvalidCredentials));

        // A server that signs with another credential for the same password (another salt).
        let mechanism = ScramMechanism::Sha512;
        let client = ScramClient::new(mechanism, "alice", "pencil");
        let first = ClientFirst::parse(mechanism, &client.first_message()).expect("valid");
        let (server_first, _) = first.answer(ScramCredential::new(mechanism, "pencil", 4096));
        let (_, expect) = client.answer(&server_first).expect("valid");
        let other = ScramClient::new(mechanism, "alice", "pencil");
        let first = ClientFirst::parse(mechanism, &other.first_message()).expect("valid");
        let (server_first, pending) = first.answer(ScramCredential::new(mechanism, "pencil", 4096));
        let (client_final, _) = other.answer(&server_first).expect("valid");
        let foreign = pending.finish(&client_final).expect("the right password");
        assert_eq!(expect.verify(&foreign), Err(AuthError::InvalidCredentials));
    }

    #[test]
    fn server_final_errors_and_garbage_are_refused() {
        let refused = rfc_final().verify(b"e=invalid-proof");
        assert!(
            matches!(&refused, Err(AuthError::Unsupported(message)) if message.contains("invalid-proof")),
            "{refused:?}"
        );
        for bad in [
            &b""[..],
            b",",
            b"v=",
            b"v=!!!!",
            b"v=AAAA",
            b"x=6rriTRBi23WpRR/wtup+mMhUZUn/dB5nLTJRsjl95G4=",
            b"v=6rriTRBi23WpRR/wtup+mMhUZUn/dB5nLTJRsjl95G4",
            b"\xff\xfe",
            b"\0",
        ] {
            let verdict = rfc_final().verify(bad);
            assert!(matches!(verdict, Err(AuthError::Malformed { .. })), "{bad:?}: {verdict:?}");
        }
    }

    #[test]
    fn hostile_server_first_messages_are_refused_without_panicking() {
        let answer = |server_first: &str| rfc_client().answer(server_first.as_bytes()).map(drop);
        let with = |from: &str, to: &str| answer(&SERVER_FIRST.replace(from, to));
        let malformed =
            |result: Result<(), AuthError>| matches!(result, Err(AuthError::Malformed { .. }));
        let unsupported =
            |result: Result<(), AuthError>| matches!(result, Err(AuthError::Unsupported(_)));

        assert_eq!(answer(&format!("{SERVER_FIRST},x=ignored")), Ok(()));
        // The server's nonce must extend ours, with something of its own.
        assert!(malformed(with("r=rOpr", "r=xOpr")));
        assert!(malformed(with("%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0", "")));
        assert!(malformed(with("%hvY", "%h\u{1}Y")));
        assert!(malformed(with("%hvY", "%h vY")));
        // The salt must be base64 and not empty.
        assert!(malformed(with("s=W22ZaJ0SNY7soEsUEjb6gQ==", "s=")));
        assert!(malformed(with("s=W22ZaJ0SNY7soEsUEjb6gQ==", "s=!W22ZaJ0SNY7soEsUEjb6gQ=")));
        assert!(malformed(with("s=W22ZaJ0SNY7soEsUEjb6gQ==", "s=W22ZaJ0SNY7soEsUEjb6gQ=")));
        // The iteration count must be a number within Kafka's bounds.
        for count in ["1", "4095", "16385", "10000000", "0", "99999999999999999999999"] {
            assert!(unsupported(with("i=4096", &format!("i={count}"))), "{count}");
        }
        for count in ["", "-1", "+4096", "0x1000", "4096.0", " 4096"] {
            assert!(malformed(with("i=4096", &format!("i={count}"))), "{count:?}");
        }
        assert!(answer(&SERVER_FIRST.replace("i=4096", "i=16384")).is_ok());
        // A mandatory extension we do not know, or a refusal.
        assert!(unsupported(answer(&format!("m=ext,{SERVER_FIRST}"))));
        assert!(unsupported(answer("e=unknown-user")));
        // Attributes out of order or missing, and garbage.
        let salt_first = "s=W22ZaJ0SNY7soEsUEjb6gQ==,r=rOprNGfwEbeRWgbNEkqO%hvY,i=4096";
        for bad in [salt_first, "", ",", ",,", "r=", "r=rOprNGfwEbeRWgbNEkqOx", "\0"] {
            assert!(malformed(answer(bad)), "{bad:?}");
        }
        assert!(malformed(
            rfc_client().answer(b"r=rOprNGfwEbeRWgbNEkqO\xff,s=AA==,i=4096").map(drop)
        ));
        // Every truncation of a valid message is refused.
        for end in 0..SERVER_FIRST.len() {
            assert!(answer(&SERVER_FIRST[..end]).is_err(), "{:?}", &SERVER_FIRST[..end]);
        }
    }

    #[test]
    fn what_the_server_says_is_quoted_safely() {
        let hostile = format!("e=bad\nFAKE LOG LINE{}", "x".repeat(10_000));
        let Err(AuthError::Unsupported(message)) = rfc_client().answer(hostile.as_bytes()) else {
            panic!("an e= attribute is a refusal");
        };
        assert!(!message.contains('\n'), "{message}");
        assert!(message.len() < 300, "{message}");
    }

    #[test]
    fn first_messages_escape_the_user_and_carry_a_fresh_nonce() {
        let client = ScramClient::with_nonce(ScramMechanism::Sha512, "a=b,c", "pw", "n0nce");
        assert_eq!(String::from_utf8_lossy(&client.first_message()), "n,,n=a=3Db=2Cc,r=n0nce");
        let (one, two) = (
            ScramClient::new(ScramMechanism::Sha256, "alice", "secret-password"),
            ScramClient::new(ScramMechanism::Sha256, "alice", "secret-password"),
        );
        assert_ne!(one.first_message(), two.first_message());
        assert!(one.nonce.bytes().all(|byte| (0x21..=0x7e).contains(&byte) && byte != b','));
        assert!(!format!("{one:?}").contains("secret-password"));
    }
}
