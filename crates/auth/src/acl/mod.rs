//! Kafka's ACL model and the decision an authorizer makes with it.
//!
//! - [`model`]: resources, pattern types, operations, permissions and the binding that ties a
//!   principal and host to them, with Kafka's wire codes.
//! - [`authorizer`]: whether a principal from a host may perform an operation on a resource,
//!   with Kafka's rules: super users may do anything; a DENY that matches wins over any ALLOW;
//!   READ, WRITE, DELETE and ALTER imply DESCRIBE, ALTER_CONFIGS implies DESCRIBE_CONFIGS; a
//!   resource no ACL names at all is open only with `allow.everyone.if.no.acl.found`.
//! - [`store`]: every ACL of a cluster as one state-store document, so that every broker
//!   enforces the same rules and a change is one compare-and-set.

pub mod authorizer;
pub mod model;
pub mod store;

pub use authorizer::{Authorizer, AuthorizerConfig};
pub use model::{AclBinding, AclFilter, Operation, PatternType, Permission, ResourceType};
pub use store::AclStore;
