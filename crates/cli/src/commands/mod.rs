//! One module per subcommand.

pub(crate) mod acl;
pub(crate) mod broker;
pub(crate) mod consume;
pub(crate) mod produce;
pub(crate) mod proxy;
pub(crate) mod quota;
pub(crate) mod sasl_flags;
pub(crate) mod schema;
pub(crate) mod table;
pub(crate) mod tls_flags;
pub(crate) mod topic;
pub(crate) mod user;
