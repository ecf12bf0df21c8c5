/// The identity a connection acts as: Kafka's `KafkaPrincipal`, a type and a name, written
/// `User:alice`. ACLs name principals this way.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Principal {
    pub kind: String,
    pub name: String,
}

impl Principal {
    /// A SASL user.
    pub fn user(name: impl Into<String>) -> Self {
        Self { kind: "User".to_owned(), name: name.into() }
    }

    /// Who a client is before (or without) authenticating: Kafka's `User:ANONYMOUS`.
    pub fn anonymous() -> Self {
        Self::user("ANONYMOUS")
    }

    /// The principal of a mutual-TLS client: its certificate's subject name, as Kafka's
    /// default principal builder writes it (`User:CN=app,OU=team,O=example`, RFC 4514, most
    /// specific first). `None` for a certificate that does not parse.
    pub fn from_certificate(der: &[u8]) -> Option<Self> {
        use x509_cert::der::Decode;
        let certificate = x509_cert::Certificate::from_der(der).ok()?;
        Some(Self::user(certificate.tbs_certificate.subject.to_string()))
    }
}

impl std::fmt::Display for Principal {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}:{}", self.kind, self.name)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A self-signed certificate with subject `O=example, OU=team, CN=app` (openssl).
    const CERTIFICATE: &str = "MIIBtjCCAVugAwIBAgIUXMfto4GLj+EYo/W44DPa2gJ0DkgwCgYIKoZIzj0EAwIwLzEQMA4GA1UECgwHZXhhbXBsZTENMAsGA1UECwwEdGVhbTEMMAoGA1UEAwwDYXBwMCAXDTI2MTIwNzAzMjUyMFoYDzIxMjYxMTEzMDMyNTIwWjAvMRAwDgYDVQQKDAdleGFtcGxlMQ0wCwYDVQQLDAR0ZWFtMQwwCgYDVQQDDANhcHAwWTATBgcqhkjOPQIBBggqhkjOPQMBBwNCAAQZuRFYkqzwMTZjb5b4lfeWS2p7aVc/o+AqzchU6p256l9qUACX0E1MY8kc647iVFtMqiITC4OCSE5AAatvp/oMo1MwUTAdBgNVHQ4EFgQUM2mwq/760tG7NOlWBir5p31eXnAwHwYDVR0jBBgwFoAUM2mwq/760tG7NOlWBir5p31eXnAwDwYDVR0TAQH/BAUwAwEB/zAKBggqhkjOPQQDAgNJADBGAiEA+F2LPAMG74aFfJC5EVUU4P1nyaHfEH1RIYofveE3m5wCIQD6TUlIvin2XboUNqUSY6EGMBW+7beIrWZZEeIw7Xe99Q==";

    #[test]
    fn principals_print_as_kafka_prints_them() {
        use base64::Engine;
        assert_eq!(Principal::user("alice").to_string(), "User:alice");
        assert_eq!(Principal::anonymous().to_string(), "User:ANONYMOUS");
        assert_eq!(Principal::from_certificate(b"not a certificate"), None);
        let der = base64::engine::general_purpose::STANDARD.decode(CERTIFICATE).expect("base64");
        let principal = Principal::from_certificate(&der).map(|principal| principal.to_string());
        assert_eq!(principal.as_deref(), Some("User:CN=app,OU=team,O=example"));
    }
}
