//! SASL PLAIN (RFC 4616): one message, `authzid NUL user NUL password`.
//!
//! Kafka checks PLAIN passwords against a list of plaintext passwords in its JAAS file; Skiff
//! checks them against the user's SCRAM credential instead (recomputing the salted password),
//! so one `skiff user add` serves every mechanism and no password is ever stored. PLAIN sends
//! the password itself: use it over TLS (`SASL_SSL`).
//!
//! [`client_message`] writes the message for the other direction: the proxy logging in to its
//! upstream broker.

use crate::AuthError;

/// The message a PLAIN client sends to log in as `user`: `NUL user NUL password`.
///
/// The authorization id is left empty, which means "act as the user" and is what Kafka's
/// clients send. A user name or password holding a NUL cannot be sent this way: the server
/// would split it elsewhere and refuse the message as malformed.
pub fn client_message(user: &str, password: &str) -> Vec<u8> {
    let mut message = Vec::with_capacity(user.len() + password.len() + 2);
    message.push(0);
    message.extend_from_slice(user.as_bytes());
    message.push(0);
    message.extend_from_slice(password.as_bytes());
    message
}

/// A PLAIN message, parsed. The password is kept out of `Debug`.
pub struct PlainMessage {
    pub user: String,
    pub password: String,
}

impl std::fmt::Debug for PlainMessage {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PlainMessage").field("user", &self.user).finish_non_exhaustive()
    }
}

impl PlainMessage {
    pub fn parse(message: &[u8]) -> Result<Self, AuthError> {
        let malformed =
            |reason: &str| AuthError::Malformed { mechanism: "PLAIN", reason: reason.to_owned() };
        let text = std::str::from_utf8(message).map_err(|_| malformed("not UTF-8"))?;
        let mut parts = text.split('\0');
        let (Some(authzid), Some(user), Some(password), None) =
            (parts.next(), parts.next(), parts.next(), parts.next())
        else {
            return Err(malformed("expected authzid NUL user NUL password"));
        };
        if user.is_empty() || password.is_empty() {
            return Err(malformed("empty user name or password"));
        }
        if !authzid.is_empty() && authzid != user {
            return Err(AuthError::Unsupported(
                "an authorization id other than the user name is not supported".into(),
            ));
        }
        Ok(Self { user: user.to_owned(), password: password.to_owned() })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plain_messages_parse_and_hide_the_password() {
        let message = PlainMessage::parse(b"\0alice\0s3cret").expect("valid");
        assert_eq!((message.user.as_str(), message.password.as_str()), ("alice", "s3cret"));
        assert!(!format!("{message:?}").contains("s3cret"));
        assert!(PlainMessage::parse(b"alice\0alice\0pw").is_ok());
        assert!(matches!(PlainMessage::parse(b"bob\0alice\0pw"), Err(AuthError::Unsupported(_))));
        for bad in
            [&b""[..], b"alice", b"\0alice", b"\0\0pw", b"\0alice\0", b"\0a\0b\0c", b"\0\xff\0pw"]
        {
            assert!(
                matches!(PlainMessage::parse(bad), Err(AuthError::Malformed { .. })),
                "{bad:?}"
            );
        }
    }

    #[test]
    fn client_messages_are_read_back_by_the_server_side() {
        let message = client_message("alice", "s3cret");
        assert_eq!(message, b"\0alice\0s3cret");
        let parsed = PlainMessage::parse(&message).expect("valid");
        assert_eq!((parsed.user.as_str(), parsed.password.as_str()), ("alice", "s3cret"));
        let parsed =
            PlainMessage::parse(&client_message("a=b,c", "p\u{e4}ss word")).expect("valid");
        assert_eq!((parsed.user.as_str(), parsed.password.as_str()), ("a=b,c", "p\u{e4}ss word"));
    }
}
