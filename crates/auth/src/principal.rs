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
}

impl std::fmt::Display for Principal {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}:{}", self.kind, self.name)
    }
}
