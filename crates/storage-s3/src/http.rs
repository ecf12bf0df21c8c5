//! object_store's HTTP client in the static build.
//!
//! object_store builds its reqwest client itself and, by default, resolves host names with
//! `getaddrinfo` (its address-shuffling resolver), which a static glibc binary cannot do (see
//! `skiff-resolve`). Its only hook is the [`HttpConnector`]: in the static build this one builds
//! the client from `skiff_resolve::http::client_builder()`, so `https://s3.eu-west-1.amazonaws.com`
//! or `http://minio:9000` resolve through `/etc/hosts` and `/etc/resolv.conf`. Other builds keep
//! object_store's own client.
//!
//! It honours the client options Skiff sets (`allow_http`, `timeout`, `connect_timeout`,
//! `pool_idle_timeout`; object_store's instance-metadata client changes the first two) and a
//! user agent if one is set; the rest of `ClientOptions` (proxies, extra root certificates,
//! HTTP/2 tuning) is not read because Skiff sets none of it.

use std::time::Duration;

use object_store::client::{HttpClient, HttpConnector};
use object_store::{ClientConfigKey, ClientOptions};

/// An [`HttpConnector`] whose clients resolve names with `skiff-resolve`.
#[derive(Debug, Default, Clone, Copy)]
pub(crate) struct ResolvingConnector;

impl HttpConnector for ResolvingConnector {
    fn connect(&self, options: &ClientOptions) -> object_store::Result<HttpClient> {
        let mut builder = skiff_resolve::http::client_builder();
        if let Some(agent) = options.get_config_value(&ClientConfigKey::UserAgent) {
            builder = builder.user_agent(agent);
        }
        if let Some(timeout) = duration(options, ClientConfigKey::Timeout)? {
            builder = builder.timeout(timeout);
        }
        if let Some(timeout) = duration(options, ClientConfigKey::ConnectTimeout)? {
            builder = builder.connect_timeout(timeout);
        }
        if let Some(timeout) = duration(options, ClientConfigKey::PoolIdleTimeout)? {
            builder = builder.pool_idle_timeout(timeout);
        }
        let allow_http = options
            .get_config_value(&ClientConfigKey::AllowHttp)
            .is_some_and(|allowed| allowed.eq_ignore_ascii_case("true"));
        let client = builder.https_only(!allow_http).build().map_err(generic)?;
        Ok(HttpClient::new(client))
    }
}

/// A duration option, which `ClientOptions` reports in humantime's format ("5s", "1m 30s").
fn duration(
    options: &ClientOptions,
    key: ClientConfigKey,
) -> object_store::Result<Option<Duration>> {
    let Some(text) = options.get_config_value(&key) else { return Ok(None) };
    humantime::parse_duration(&text)
        .map(Some)
        .map_err(|error| generic(format!("client option {key:?}={text:?}: {error}")))
}

fn generic(error: impl Into<Box<dyn std::error::Error + Send + Sync>>) -> object_store::Error {
    object_store::Error::Generic { store: "S3", source: error.into() }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The options Skiff sets come back from `ClientOptions` and parse, so the static build's
    /// client gets the same timeouts as object_store's own.
    #[test]
    fn skiff_client_options_are_read_back() {
        let options = ClientOptions::new()
            .with_timeout(Duration::from_millis(1500))
            .with_connect_timeout(Duration::from_secs(5))
            .with_pool_idle_timeout(Duration::from_secs(60));
        let read = |key| duration(&options, key).expect("parses");
        assert_eq!(read(ClientConfigKey::Timeout), Some(Duration::from_millis(1500)));
        assert_eq!(read(ClientConfigKey::ConnectTimeout), Some(Duration::from_secs(5)));
        assert_eq!(read(ClientConfigKey::PoolIdleTimeout), Some(Duration::from_secs(60)));
        assert!(ResolvingConnector.connect(&options.with_allow_http(true)).is_ok());
    }
}
