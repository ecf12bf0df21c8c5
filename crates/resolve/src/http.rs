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

/// A user and password taken out of a URL (`http://alice:secret@registry:8081`), so that
/// requests send them as HTTP basic authentication while the URL that logs and error messages
/// show carries none. `Debug` hides the password.
#[derive(Clone, PartialEq, Eq)]
pub struct BasicAuth {
    pub user: String,
    pub password: Option<String>,
}

impl std::fmt::Debug for BasicAuth {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("BasicAuth").field("user", &self.user).finish_non_exhaustive()
    }
}

impl BasicAuth {
    /// Removes the URL's user and password (percent-decoded), if it has a user.
    pub fn take_from(url: &mut reqwest::Url) -> Option<BasicAuth> {
        if url.username().is_empty() {
            return None;
        }
        let decode = |text: &str| {
            percent_encoding::percent_decode_str(text).decode_utf8_lossy().into_owned()
        };
        let credentials =
            BasicAuth { user: decode(url.username()), password: url.password().map(decode) };
        // Only URLs that cannot be a base reject these; such URLs have no user either.
        let _ = url.set_username("");
        let _ = url.set_password(None);
        Some(credentials)
    }

    /// `url` as it may be shown: without its user and password (unchanged if not a URL).
    pub fn hidden_in(url: &str) -> String {
        match reqwest::Url::parse(url) {
            Ok(mut parsed) => {
                Self::take_from(&mut parsed);
                parsed.to_string()
            }
            Err(_) => url.to_owned(),
        }
    }

    /// The request with these credentials.
    pub fn apply(&self, request: reqwest::RequestBuilder) -> reqwest::RequestBuilder {
        request.basic_auth(&self.user, self.password.as_ref())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn credentials_leave_the_url_decoded() {
        let mut url =
            reqwest::Url::parse("http://alice:se%20cret%40x@registry:8081/base").expect("url");
        let taken = BasicAuth::take_from(&mut url);
        assert_eq!(url.as_str(), "http://registry:8081/base");
        assert_eq!(
            taken,
            Some(BasicAuth { user: "alice".into(), password: Some("se cret@x".into()) })
        );
        assert!(!format!("{taken:?}").contains("cret"));
        assert_eq!(BasicAuth::hidden_in("http://a:b@h:1/"), "http://h:1/");
        let mut plain = reqwest::Url::parse("http://registry:8081").expect("url");
        assert_eq!(BasicAuth::take_from(&mut plain), None);
    }
}
