//! reqwest clients that resolve host names as [`crate::lookup`] does.
//!
//! reqwest resolves through `getaddrinfo` on a blocking thread by default; in the static build
//! that fails for every name, so clients built here get [`crate::BuiltinResolver`] instead.
//! object_store (S3) and the Schema Registry clients build their reqwest clients from
//! [`client_builder`].

use std::sync::Arc;

use reqwest::dns::{Addrs, Name, Resolve, Resolving};

/// `reqwest::Client::builder()`, with the built-in resolver in the static build.
pub fn client_builder() -> reqwest::ClientBuilder {
    let builder = reqwest::Client::builder();
    if crate::BUILTIN {
        builder.dns_resolver(Arc::new(BuiltinDns))
    } else {
        builder
    }
}

/// reqwest's resolver hook over [`crate::BuiltinResolver::shared`].
#[derive(Debug, Clone, Copy)]
pub struct BuiltinDns;

impl Resolve for BuiltinDns {
    fn resolve(&self, name: Name) -> Resolving {
        let host = name.as_str().to_owned();
        Box::pin(async move {
            // reqwest puts the URL's port on each address itself.
            let addresses = crate::BuiltinResolver::shared().lookup(&host, 0).await?;
            Ok(Box::new(addresses.into_iter()) as Addrs)
        })
    }
}
