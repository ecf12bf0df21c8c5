//! Kafka's ACL vocabulary, with the codes CreateAcls, DescribeAcls and DeleteAcls use.

use serde::{Deserialize, Serialize};

/// What an ACL protects.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum ResourceType {
    Topic,
    Group,
    Cluster,
    TransactionalId,
    DelegationToken,
}

/// How an ACL's resource name matches names.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum PatternType {
    /// The name itself, or every name when it is `*`.
    Literal,
    /// Every name starting with it.
    Prefixed,
}

/// What a principal may or may not do.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum Operation {
    All,
    Read,
    Write,
    Create,
    Delete,
    Alter,
    Describe,
    ClusterAction,
    DescribeConfigs,
    AlterConfigs,
    IdempotentWrite,
    CreateTokens,
    DescribeTokens,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum Permission {
    Deny,
    Allow,
}

/// Kafka's numbering of each enum (`org.apache.kafka.common.acl` and `.resource`): 0 is
/// UNKNOWN and 1 is ANY (filters only) in every one of them.
macro_rules! kafka_codes {
    ($type:ident { $($variant:ident = $code:literal => $name:literal),* $(,)? }) => {
        impl $type {
            pub const ALL_VALUES: &'static [$type] = &[$($type::$variant),*];

            pub fn code(self) -> i8 {
                match self { $($type::$variant => $code),* }
            }

            /// The value of a code; `None` for UNKNOWN, ANY and codes Kafka does not define.
            pub fn from_code(code: i8) -> Option<$type> {
                match code { $($code => Some($type::$variant),)* _ => None }
            }

            /// Kafka's name, as `kafka-acls` prints it.
            pub fn name(self) -> &'static str {
                match self { $($type::$variant => $name),* }
            }

            /// The value of a name, case-insensitively, with `-` or `_` between words.
            pub fn from_name(name: &str) -> Option<$type> {
                let wanted = name.replace('-', "_").to_ascii_uppercase();
                Self::ALL_VALUES.iter().copied().find(|value| value.name() == wanted)
            }
        }

        impl std::fmt::Display for $type {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str(self.name())
            }
        }
    };
}

kafka_codes!(ResourceType {
    Topic = 2 => "TOPIC",
    Group = 3 => "GROUP",
    Cluster = 4 => "CLUSTER",
    TransactionalId = 5 => "TRANSACTIONAL_ID",
    DelegationToken = 6 => "DELEGATION_TOKEN",
});

kafka_codes!(PatternType {
    Literal = 3 => "LITERAL",
    Prefixed = 4 => "PREFIXED",
});

kafka_codes!(Operation {
    All = 2 => "ALL",
    Read = 3 => "READ",
    Write = 4 => "WRITE",
    Create = 5 => "CREATE",
    Delete = 6 => "DELETE",
    Alter = 7 => "ALTER",
    Describe = 8 => "DESCRIBE",
    ClusterAction = 9 => "CLUSTER_ACTION",
    DescribeConfigs = 10 => "DESCRIBE_CONFIGS",
    AlterConfigs = 11 => "ALTER_CONFIGS",
    IdempotentWrite = 12 => "IDEMPOTENT_WRITE",
    CreateTokens = 13 => "CREATE_TOKENS",
    DescribeTokens = 14 => "DESCRIBE_TOKENS",
});

kafka_codes!(Permission {
    Deny = 2 => "DENY",
    Allow = 3 => "ALLOW",
});

impl Operation {
    /// The operations an ACL on a resource of the type can grant (Kafka's
    /// `AclEntry.supportedOperations`): what an "authorized operations" answer lists.
    pub fn applicable_to(resource_type: ResourceType) -> &'static [Operation] {
        use Operation::*;
        match resource_type {
            ResourceType::Topic => {
                &[Read, Write, Create, Describe, Delete, Alter, DescribeConfigs, AlterConfigs]
            }
            ResourceType::Group => &[Read, Describe, Delete],
            ResourceType::Cluster => &[
                Create,
                ClusterAction,
                DescribeConfigs,
                AlterConfigs,
                IdempotentWrite,
                Alter,
                Describe,
            ],
            ResourceType::TransactionalId => &[Describe, Write],
            ResourceType::DelegationToken => &[Describe],
        }
    }
}

/// The one resource name of the cluster resource.
pub const CLUSTER_NAME: &str = "kafka-cluster";

/// The filter code of ANY in every enum, and MATCH among pattern types.
const ANY: i8 = 1;
const MATCH: i8 = 2;

/// A resource name or principal that matches everything in a literal ACL.
pub const WILDCARD: &str = "*";

/// One ACL: `principal` from `host` is allowed or denied `operation` on the resources the
/// pattern names.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct AclBinding {
    pub resource_type: ResourceType,
    pub resource_name: String,
    pub pattern_type: PatternType,
    /// `User:alice`, or `User:*` for every user.
    pub principal: String,
    /// An IP address, or `*` for every host.
    pub host: String,
    pub operation: Operation,
    pub permission: Permission,
}

impl AclBinding {
    /// Whether the binding is one Kafka would accept: a `Type:name` principal, a non-empty
    /// resource name (the cluster's is `kafka-cluster`), a host that is `*` or an IP address.
    pub fn check(&self) -> Result<(), String> {
        match self.principal.split_once(':') {
            Some((kind, name)) if !kind.is_empty() && !name.is_empty() => {}
            _ => {
                return Err(format!(
                    "the principal {:?} is not Type:name (e.g. User:alice)",
                    self.principal
                ))
            }
        }
        if self.resource_name.is_empty() {
            return Err("the resource name is empty".to_owned());
        }
        if self.resource_type == ResourceType::Cluster && self.resource_name != CLUSTER_NAME {
            return Err(format!("the cluster resource is named {CLUSTER_NAME}"));
        }
        if self.host != WILDCARD && self.host.parse::<std::net::IpAddr>().is_err() {
            return Err(format!("the host {:?} is neither * nor an IP address", self.host));
        }
        Ok(())
    }

    /// A binding from CreateAcls' codes, checked (ANY, MATCH and UNKNOWN are filter values,
    /// not a binding's).
    #[allow(clippy::too_many_arguments)]
    pub fn from_codes(
        resource_type: i8,
        resource_name: &str,
        pattern_type: i8,
        principal: &str,
        host: &str,
        operation: i8,
        permission: i8,
    ) -> Result<Self, String> {
        let binding = AclBinding {
            resource_type: ResourceType::from_code(resource_type)
                .ok_or_else(|| format!("invalid resource type {resource_type}"))?,
            resource_name: resource_name.to_owned(),
            pattern_type: PatternType::from_code(pattern_type)
                .ok_or_else(|| format!("invalid pattern type {pattern_type}"))?,
            principal: principal.to_owned(),
            host: host.to_owned(),
            operation: Operation::from_code(operation)
                .ok_or_else(|| format!("invalid operation {operation}"))?,
            permission: Permission::from_code(permission)
                .ok_or_else(|| format!("invalid permission type {permission}"))?,
        };
        binding.check()?;
        Ok(binding)
    }

    /// Whether this binding's pattern covers the resource `name` of `resource_type`.
    pub fn covers(&self, resource_type: ResourceType, name: &str) -> bool {
        self.resource_type == resource_type
            && match self.pattern_type {
                PatternType::Literal => {
                    self.resource_name == name || self.resource_name == WILDCARD
                }
                PatternType::Prefixed => name.starts_with(&self.resource_name),
            }
    }
}

/// How a filter matches resource patterns (DescribeAcls and DeleteAcls).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PatternFilter {
    /// Any pattern type, with the name compared as written.
    Any,
    /// Every pattern that would cover the name (literal, `*`, prefixes of it).
    Match,
    Exactly(PatternType),
}

/// A filter over bindings: `None` fields match anything (Kafka's ANY and null).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AclFilter {
    pub resource_type: Option<ResourceType>,
    pub resource_name: Option<String>,
    pub pattern: PatternFilter,
    pub principal: Option<String>,
    pub host: Option<String>,
    pub operation: Option<Operation>,
    pub permission: Option<Permission>,
}

impl AclFilter {
    /// A filter that matches every binding.
    pub fn any() -> Self {
        Self {
            resource_type: None,
            resource_name: None,
            pattern: PatternFilter::Any,
            principal: None,
            host: None,
            operation: None,
            permission: None,
        }
    }

    /// A filter from DescribeAcls' or DeleteAcls' codes: ANY (1) matches anything, a null
    /// string too; UNKNOWN (0) and undefined codes are refused.
    #[allow(clippy::too_many_arguments)]
    pub fn from_codes(
        resource_type: i8,
        resource_name: Option<&str>,
        pattern_type: i8,
        principal: Option<&str>,
        host: Option<&str>,
        operation: i8,
        permission: i8,
    ) -> Result<Self, String> {
        fn code<T>(code: i8, what: &str, from: fn(i8) -> Option<T>) -> Result<Option<T>, String> {
            match code {
                ANY => Ok(None),
                other => from(other).map(Some).ok_or_else(|| format!("invalid {what} {other}")),
            }
        }
        let pattern = match pattern_type {
            ANY => PatternFilter::Any,
            MATCH => PatternFilter::Match,
            other => PatternType::from_code(other)
                .map(PatternFilter::Exactly)
                .ok_or_else(|| format!("invalid pattern type {other}"))?,
        };
        Ok(AclFilter {
            resource_type: code(resource_type, "resource type", ResourceType::from_code)?,
            resource_name: resource_name.map(str::to_owned),
            pattern,
            principal: principal.map(str::to_owned),
            host: host.map(str::to_owned),
            operation: code(operation, "operation", Operation::from_code)?,
            permission: code(permission, "permission type", Permission::from_code)?,
        })
    }

    pub fn matches(&self, binding: &AclBinding) -> bool {
        let same =
            |wanted: &Option<String>, actual: &str| wanted.as_deref().is_none_or(|w| w == actual);
        let resource = match (&self.pattern, &self.resource_name) {
            (PatternFilter::Match, Some(name)) => match self.resource_type {
                Some(resource_type) => binding.covers(resource_type, name),
                None => binding.covers(binding.resource_type, name),
            },
            (PatternFilter::Exactly(pattern), name) => {
                binding.pattern_type == *pattern && same(name, &binding.resource_name)
            }
            (_, name) => same(name, &binding.resource_name),
        };
        resource
            && self.resource_type.is_none_or(|t| t == binding.resource_type)
            && same(&self.principal, &binding.principal)
            && same(&self.host, &binding.host)
            && self.operation.is_none_or(|o| o == binding.operation)
            && self.permission.is_none_or(|p| p == binding.permission)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    pub(crate) fn binding(
        resource: &str,
        pattern: PatternType,
        principal: &str,
        operation: Operation,
        permission: Permission,
    ) -> AclBinding {
        AclBinding {
            resource_type: ResourceType::Topic,
            resource_name: resource.to_owned(),
            pattern_type: pattern,
            principal: principal.to_owned(),
            host: WILDCARD.to_owned(),
            operation,
            permission,
        }
    }

    #[test]
    fn codes_and_names_are_kafkas() {
        assert_eq!(ResourceType::from_code(2), Some(ResourceType::Topic));
        assert_eq!(ResourceType::from_code(1), None, "ANY is a filter value, not a resource");
        assert_eq!(Operation::from_code(12), Some(Operation::IdempotentWrite));
        assert_eq!(Operation::from_name("describe-configs"), Some(Operation::DescribeConfigs));
        assert_eq!(PatternType::Prefixed.code(), 4);
        assert_eq!(Permission::from_name("allow"), Some(Permission::Allow));
        assert_eq!(ResourceType::TransactionalId.to_string(), "TRANSACTIONAL_ID");
    }

    #[test]
    fn bindings_are_checked_as_kafka_checks_them() {
        let good = binding(
            "orders",
            PatternType::Literal,
            "User:alice",
            Operation::Read,
            Permission::Allow,
        );
        assert!(good.check().is_ok());
        for bad in [
            AclBinding { principal: "alice".into(), ..good.clone() },
            AclBinding { principal: "User:".into(), ..good.clone() },
            AclBinding { resource_name: String::new(), ..good.clone() },
            AclBinding { host: "example.com".into(), ..good.clone() },
            AclBinding { resource_type: ResourceType::Cluster, ..good.clone() },
        ] {
            assert!(bad.check().is_err(), "{bad:?}");
        }
        let cluster = AclBinding {
            resource_type: ResourceType::Cluster,
            resource_name: CLUSTER_NAME.into(),
            ..good
        };
        assert!(cluster.check().is_ok());
    }

    #[test]
    fn filters_match_as_describe_and_delete_acls_do() {
        let literal = binding(
            "orders",
            PatternType::Literal,
            "User:alice",
            Operation::Read,
            Permission::Allow,
        );
        let prefixed =
            binding("ord", PatternType::Prefixed, "User:bob", Operation::Write, Permission::Deny);
        let wildcard =
            binding("*", PatternType::Literal, "User:*", Operation::Describe, Permission::Allow);
        let all = [&literal, &prefixed, &wildcard];
        let count = |filter: &AclFilter| all.iter().filter(|b| filter.matches(b)).count();
        assert_eq!(count(&AclFilter::any()), 3);
        let by_name = AclFilter { resource_name: Some("orders".into()), ..AclFilter::any() };
        assert_eq!(count(&by_name), 1, "ANY compares the name as written");
        let matching = AclFilter { pattern: PatternFilter::Match, ..by_name.clone() };
        assert_eq!(count(&matching), 3, "MATCH finds every pattern covering the name");
        let prefixed_only = AclFilter {
            pattern: PatternFilter::Exactly(PatternType::Prefixed),
            ..AclFilter::any()
        };
        assert_eq!(count(&prefixed_only), 1);
        let denies = AclFilter { permission: Some(Permission::Deny), ..AclFilter::any() };
        assert_eq!(count(&denies), 1);
        let alice = AclFilter { principal: Some("User:alice".into()), ..AclFilter::any() };
        assert_eq!(count(&alice), 1);
    }

    #[test]
    fn bindings_and_filters_come_from_kafkas_codes() {
        let binding = AclBinding::from_codes(2, "orders", 4, "User:alice", "*", 3, 3);
        assert_eq!(
            binding,
            Ok(binding_of("orders", PatternType::Prefixed, "User:alice", Operation::Read))
        );
        assert!(AclBinding::from_codes(1, "orders", 3, "User:a", "*", 3, 3).is_err(), "ANY");
        assert!(AclBinding::from_codes(2, "orders", 2, "User:a", "*", 3, 3).is_err(), "MATCH");
        assert!(AclBinding::from_codes(2, "orders", 3, "alice", "*", 3, 3).is_err(), "no type");
        let filter = AclFilter::from_codes(1, Some("orders.eu"), 2, None, None, 1, 1);
        let filter = filter.expect("a MATCH filter");
        assert_eq!(filter.pattern, PatternFilter::Match);
        assert!(filter.matches(&binding_of(
            "orders",
            PatternType::Prefixed,
            "User:bob",
            Operation::Write
        )));
        assert!(AclFilter::from_codes(0, None, 1, None, None, 1, 1).is_err(), "UNKNOWN");
        assert!(AclFilter::from_codes(2, None, 9, None, None, 1, 1).is_err());
    }

    fn binding_of(
        name: &str,
        pattern: PatternType,
        principal: &str,
        operation: Operation,
    ) -> AclBinding {
        binding(name, pattern, principal, operation, Permission::Allow)
    }
}
