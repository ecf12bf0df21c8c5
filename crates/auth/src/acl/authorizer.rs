//! The decision: may this principal, connected from this host, perform this operation on this
//! resource? Kafka's `AclAuthorizer` rules, over a snapshot of the cluster's ACLs.

use std::net::IpAddr;
use std::sync::Arc;

use super::model::{AclBinding, Operation, PatternType, Permission, ResourceType, WILDCARD};
use crate::Principal;

/// Kafka's authorizer settings.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AuthorizerConfig {
    /// `super.users`: principals (`User:admin`) allowed everything, whatever the ACLs say.
    pub super_users: Vec<String>,
    /// `allow.everyone.if.no.acl.found`: whether a resource that no ACL names is open to all.
    /// Off by default, as in Kafka: once ACLs are on, what is not allowed is denied.
    pub allow_everyone_if_no_acl_found: bool,
}

/// A snapshot of the cluster's ACLs and the rules to read them with.
#[derive(Debug, Clone, Default)]
pub struct Authorizer {
    acls: Arc<Vec<AclBinding>>,
    config: Arc<AuthorizerConfig>,
}

impl Authorizer {
    pub fn new(acls: Vec<AclBinding>, config: AuthorizerConfig) -> Self {
        Self { acls: Arc::new(acls), config: Arc::new(config) }
    }

    /// The same rules over newer ACLs.
    pub fn with_acls(&self, acls: Vec<AclBinding>) -> Self {
        Self { acls: Arc::new(acls), config: self.config.clone() }
    }

    pub fn acls(&self) -> &[AclBinding] {
        &self.acls
    }

    /// Whether `principal` from `host` may perform `operation` on the resource.
    pub fn allows(
        &self,
        principal: &Principal,
        host: IpAddr,
        operation: Operation,
        resource_type: ResourceType,
        name: &str,
    ) -> bool {
        let principal_name = principal.to_string();
        if self.config.super_users.contains(&principal_name) {
            return true;
        }
        let mut covering =
            self.acls.iter().filter(|acl| acl.covers(resource_type, name)).peekable();
        if covering.peek().is_none() {
            return self.config.allow_everyone_if_no_acl_found;
        }
        let host = host.to_string();
        let applies = |acl: &&AclBinding| {
            principal_matches(&acl.principal, principal, &principal_name)
                && (acl.host == WILDCARD || acl.host == host)
        };
        let mut allowed = false;
        for acl in covering.filter(applies) {
            match acl.permission {
                Permission::Deny if denies(acl.operation, operation) => return false,
                Permission::Allow if allows(acl.operation, operation) => allowed = true,
                _ => {}
            }
        }
        allowed
    }

    /// Whether `principal` may perform `operation` on at least one resource of the type:
    /// Kafka's `authorizeByResourceType`, which lets an idempotent producer in with WRITE on
    /// any topic instead of IDEMPOTENT_WRITE on the cluster. An ALLOW counts unless a DENY of
    /// the same principal covers all it names (the DENY's pattern is `*`, the same literal
    /// name, or a prefix of it).
    pub fn allows_any(
        &self,
        principal: &Principal,
        host: IpAddr,
        operation: Operation,
        resource_type: ResourceType,
    ) -> bool {
        let principal_name = principal.to_string();
        if self.config.super_users.contains(&principal_name) {
            return true;
        }
        let mut of_type = self.acls.iter().filter(|acl| acl.resource_type == resource_type);
        if self.config.allow_everyone_if_no_acl_found && of_type.next().is_none() {
            return true;
        }
        let host = host.to_string();
        let applying: Vec<&AclBinding> = self
            .acls
            .iter()
            .filter(|acl| {
                acl.resource_type == resource_type
                    && principal_matches(&acl.principal, principal, &principal_name)
                    && (acl.host == WILDCARD || acl.host == host)
            })
            .collect();
        let denied = |allow: &AclBinding| {
            applying.iter().any(|deny| {
                deny.permission == Permission::Deny
                    && denies(deny.operation, operation)
                    && match deny.pattern_type {
                        PatternType::Literal => {
                            deny.resource_name == WILDCARD
                                || (allow.pattern_type == PatternType::Literal
                                    && deny.resource_name == allow.resource_name)
                        }
                        PatternType::Prefixed => {
                            allow.resource_name.starts_with(&deny.resource_name)
                        }
                    }
            })
        };
        applying.iter().any(|acl| {
            acl.permission == Permission::Allow && allows(acl.operation, operation) && !denied(acl)
        })
    }
}

/// `User:*` matches every principal of type User.
fn principal_matches(acl_principal: &str, principal: &Principal, principal_name: &str) -> bool {
    acl_principal == principal_name
        || acl_principal
            .split_once(':')
            .is_some_and(|(kind, name)| kind == principal.kind && name == WILDCARD)
}

/// A DENY of the operation itself or of ALL.
fn denies(acl: Operation, wanted: Operation) -> bool {
    acl == Operation::All || acl == wanted
}

/// An ALLOW of the operation, of ALL, or of an operation that implies it.
fn allows(acl: Operation, wanted: Operation) -> bool {
    use Operation::*;
    acl == All
        || acl == wanted
        || (wanted == Describe && matches!(acl, Read | Write | Delete | Alter))
        || (wanted == DescribeConfigs && acl == AlterConfigs)
}

#[cfg(test)]
mod tests {
    use super::*;
    use Operation::*;

    fn acl(
        name: &str,
        pattern: PatternType,
        principal: &str,
        host: &str,
        operation: Operation,
        permission: Permission,
    ) -> AclBinding {
        AclBinding {
            resource_type: ResourceType::Topic,
            resource_name: name.to_owned(),
            pattern_type: pattern,
            principal: principal.to_owned(),
            host: host.to_owned(),
            operation,
            permission,
        }
    }

    fn localhost() -> IpAddr {
        IpAddr::from([127, 0, 0, 1])
    }

    fn check(authorizer: &Authorizer, user: &str, operation: Operation, topic: &str) -> bool {
        authorizer.allows(
            &Principal::user(user),
            localhost(),
            operation,
            ResourceType::Topic,
            topic,
        )
    }

    #[test]
    fn what_is_not_allowed_is_denied_and_deny_wins() {
        let authorizer = Authorizer::new(
            vec![
                acl("orders", PatternType::Literal, "User:alice", "*", Write, Permission::Allow),
                acl("orders", PatternType::Literal, "User:*", "*", Read, Permission::Allow),
                acl("orders", PatternType::Literal, "User:mallory", "*", All, Permission::Deny),
            ],
            AuthorizerConfig::default(),
        );
        assert!(check(&authorizer, "alice", Write, "orders"));
        assert!(check(&authorizer, "alice", Read, "orders"), "User:* covers alice");
        assert!(!check(&authorizer, "bob", Write, "orders"));
        assert!(!check(&authorizer, "mallory", Read, "orders"), "a DENY wins over User:*'s ALLOW");
        assert!(!check(&authorizer, "alice", Delete, "orders"));
        assert!(
            !check(&authorizer, "alice", Write, "payments"),
            "no ACL names it: denied by default"
        );
        let service = Principal { kind: "Service".into(), name: "x".into() };
        assert!(
            !authorizer.allows(&service, localhost(), Read, ResourceType::Topic, "orders"),
            "User:* is users only"
        );
    }

    #[test]
    fn read_write_delete_alter_imply_describe() {
        for operation in [Read, Write, Delete, Alter] {
            let authorizer = Authorizer::new(
                vec![acl(
                    "t",
                    PatternType::Literal,
                    "User:alice",
                    "*",
                    operation,
                    Permission::Allow,
                )],
                AuthorizerConfig::default(),
            );
            assert!(check(&authorizer, "alice", Describe, "t"), "{operation}");
            assert!(!check(&authorizer, "alice", DescribeConfigs, "t"), "{operation}");
        }
        let configs = Authorizer::new(
            vec![acl(
                "t",
                PatternType::Literal,
                "User:alice",
                "*",
                AlterConfigs,
                Permission::Allow,
            )],
            AuthorizerConfig::default(),
        );
        assert!(check(&configs, "alice", DescribeConfigs, "t"));
        // A DENY of Read does not deny Describe (implication is for ALLOW only).
        let deny_read = Authorizer::new(
            vec![
                acl("t", PatternType::Literal, "User:alice", "*", Read, Permission::Deny),
                acl("t", PatternType::Literal, "User:alice", "*", Describe, Permission::Allow),
            ],
            AuthorizerConfig::default(),
        );
        assert!(check(&deny_read, "alice", Describe, "t"));
        assert!(!check(&deny_read, "alice", Read, "t"));
    }

    #[test]
    fn prefixes_wildcards_hosts_and_super_users() {
        let config = AuthorizerConfig {
            super_users: vec!["User:admin".into()],
            allow_everyone_if_no_acl_found: false,
        };
        let authorizer = Authorizer::new(
            vec![
                acl("team-a.", PatternType::Prefixed, "User:alice", "*", Write, Permission::Allow),
                acl("*", PatternType::Literal, "User:bob", "10.0.0.1", Read, Permission::Allow),
            ],
            config,
        );
        assert!(check(&authorizer, "alice", Write, "team-a.orders"));
        assert!(!check(&authorizer, "alice", Write, "team-b.orders"));
        assert!(!check(&authorizer, "bob", Read, "anything"), "bob is allowed from 10.0.0.1 only");
        let from_there = authorizer.allows(
            &Principal::user("bob"),
            IpAddr::from([10, 0, 0, 1]),
            Read,
            ResourceType::Topic,
            "x",
        );
        assert!(from_there);
        assert!(
            check(&authorizer, "admin", Delete, "team-b.orders"),
            "super users may do anything"
        );
        let group = authorizer.allows(
            &Principal::user("bob"),
            IpAddr::from([10, 0, 0, 1]),
            Read,
            ResourceType::Group,
            "x",
        );
        assert!(!group, "a topic ACL says nothing about groups");
    }

    #[test]
    fn an_unnamed_resource_is_open_only_when_configured() {
        let open = Authorizer::new(
            vec![acl("orders", PatternType::Literal, "User:alice", "*", Read, Permission::Allow)],
            AuthorizerConfig { super_users: vec![], allow_everyone_if_no_acl_found: true },
        );
        assert!(check(&open, "bob", Write, "payments"), "no ACL names payments");
        assert!(!check(&open, "bob", Read, "orders"), "orders has ACLs, none for bob");
    }

    #[test]
    fn allowed_on_some_resource_of_a_type() {
        let any = |authorizer: &Authorizer, user: &str| {
            authorizer.allows_any(&Principal::user(user), localhost(), Write, ResourceType::Topic)
        };
        let authorizer = Authorizer::new(
            vec![
                acl("orders", PatternType::Literal, "User:alice", "*", Write, Permission::Allow),
                acl("logs.", PatternType::Prefixed, "User:bob", "*", All, Permission::Allow),
                acl("logs.", PatternType::Prefixed, "User:bob", "*", Write, Permission::Deny),
                acl("x", PatternType::Literal, "User:carol", "*", Read, Permission::Allow),
            ],
            AuthorizerConfig::default(),
        );
        assert!(any(&authorizer, "alice"));
        assert!(!any(&authorizer, "bob"), "the DENY covers everything the ALLOW names");
        assert!(!any(&authorizer, "carol"), "READ is not WRITE");
        assert!(!any(&authorizer, "dave"));
        let open = Authorizer::new(
            vec![],
            AuthorizerConfig { super_users: vec![], allow_everyone_if_no_acl_found: true },
        );
        assert!(any(&open, "dave"), "no topic ACL at all, and open when none is found");
    }
}
