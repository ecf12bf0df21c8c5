//! `s3://bucket[/prefix][?key=value&...]`: where objects go and how produce requests coalesce.
//!
//! Credentials, region and endpoint come from the standard `AWS_*` environment
//! (`AWS_ACCESS_KEY_ID`, `AWS_SECRET_ACCESS_KEY`, `AWS_SESSION_TOKEN`, `AWS_REGION`,
//! `AWS_ENDPOINT_URL`, `AWS_ALLOW_HTTP`, `AWS_VIRTUAL_HOSTED_STYLE_REQUEST`, ...), read by
//! `object_store`. An `http://` endpoint is allowed without `AWS_ALLOW_HTTP`: naming one is
//! consent enough. Unknown query keys are refused, as with `sqlite://`.

use std::time::Duration;

use object_store::aws::{AmazonS3Builder, AmazonS3ConfigKey};
use object_store::{BackoffConfig, ClientOptions, RetryConfig};
use skiff_storage::{Result, StorageError};
use url::Url;

use crate::http::ResolvingConnector;

/// Settings read from the storage URL.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Options {
    pub(crate) bucket: String,
    /// Key prefix inside the bucket (no leading or trailing `/`), possibly empty.
    pub(crate) prefix: String,
    /// How long the first produce request of a group waits for others to share its object.
    pub(crate) flush_delay: Duration,
    /// A group is written at once when its batches reach this many bytes.
    pub(crate) flush_bytes: usize,
    /// How long a fetch waiting at the end of a partition trusts a head it read (other brokers'
    /// appends become visible within this; this broker's own appends at once).
    pub(crate) tail_cache: Duration,
    /// How long object-store errors are retried (with backoff) before `Unavailable`.
    pub(crate) retry_timeout: Duration,
    /// How long one request may take before it counts as failed (and is retried).
    pub(crate) request_timeout: Duration,
    /// How often unreferenced data objects are looked for (zero: never).
    pub(crate) collect_interval: Duration,
    /// How old an unreferenced data object must be to be deleted.
    pub(crate) collect_grace: Duration,
    /// An endpoint overriding `AWS_ENDPOINT_URL` (e.g. a local S3-compatible server).
    pub(crate) endpoint: Option<String>,
}

impl Options {
    pub(crate) fn parse(url: &str) -> Result<Self> {
        let invalid = |message: String| StorageError::InvalidArgument(message);
        let parsed =
            Url::parse(url).map_err(|error| invalid(format!("s3 url {url:?}: {error}")))?;
        let bucket = parsed.host_str().unwrap_or_default().to_owned();
        if bucket.is_empty() {
            return Err(invalid(format!("s3 url {url:?} names no bucket (s3://bucket/prefix)")));
        }
        let mut options = Self {
            bucket,
            prefix: parsed.path().trim_matches('/').to_owned(),
            flush_delay: Duration::from_millis(5),
            flush_bytes: 4 * 1024 * 1024,
            tail_cache: Duration::from_millis(250),
            retry_timeout: Duration::from_secs(15),
            request_timeout: Duration::from_secs(10),
            collect_interval: Duration::from_secs(600),
            collect_grace: Duration::from_secs(3600),
            endpoint: None,
        };
        for (key, value) in parsed.query_pairs() {
            match key.as_ref() {
                "flush_ms" => options.flush_delay = Duration::from_millis(number(&key, &value)?),
                "flush_bytes" => options.flush_bytes = number(&key, &value)? as usize,
                "tail_cache_ms" => {
                    options.tail_cache = Duration::from_millis(number(&key, &value)?)
                }
                "retry_timeout_ms" => {
                    options.retry_timeout = Duration::from_millis(number(&key, &value)?)
                }
                "request_timeout_ms" => {
                    options.request_timeout = Duration::from_millis(number(&key, &value)?)
                }
                "collect_interval_ms" => {
                    options.collect_interval = Duration::from_millis(number(&key, &value)?)
                }
                "collect_grace_ms" => {
                    options.collect_grace = Duration::from_millis(number(&key, &value)?)
                }
                "endpoint" => options.endpoint = Some(value.into_owned()),
                other => {
                    return Err(invalid(format!(
                        "unknown s3 option {other:?}: known options are flush_ms, flush_bytes, \
                         tail_cache_ms, retry_timeout_ms, request_timeout_ms, collect_interval_ms, \
                         collect_grace_ms and endpoint"
                    )))
                }
            }
        }
        Ok(options)
    }

    /// An `object_store` client for the bucket, configured from the environment.
    pub(crate) fn client(&self) -> Result<object_store::aws::AmazonS3> {
        let mut builder = AmazonS3Builder::from_env().with_bucket_name(&self.bucket);
        if let Some(endpoint) = &self.endpoint {
            builder = builder.with_endpoint(endpoint);
        }
        if endpoint_is_http(&builder) {
            builder = builder.with_allow_http(true);
        }
        if builder.get_config_value(&AmazonS3ConfigKey::Region).is_none() {
            if let Ok(region) = std::env::var("AWS_DEFAULT_REGION") {
                builder = builder.with_region(region);
            }
        }
        let retry = RetryConfig {
            backoff: BackoffConfig {
                init_backoff: Duration::from_millis(50),
                max_backoff: Duration::from_secs(2),
                base: 2.0,
            },
            max_retries: 10,
            retry_timeout: self.retry_timeout,
        };
        let client = ClientOptions::new()
            .with_timeout(self.request_timeout)
            .with_connect_timeout(Duration::from_secs(5))
            .with_pool_idle_timeout(Duration::from_secs(60));
        let client = if endpoint_is_http(&builder) { client.with_allow_http(true) } else { client };
        if skiff_resolve::BUILTIN {
            builder = builder.with_http_connector(ResolvingConnector);
        }
        builder
            .with_retry(retry)
            .with_client_options(client)
            .build()
            .map_err(|error| StorageError::InvalidArgument(format!("s3 client: {error}")))
    }
}

fn endpoint_is_http(builder: &AmazonS3Builder) -> bool {
    builder
        .get_config_value(&AmazonS3ConfigKey::Endpoint)
        .is_some_and(|endpoint| endpoint.starts_with("http://"))
}

fn number(key: &str, value: &str) -> Result<u64> {
    value.parse::<u64>().map_err(|_| {
        StorageError::InvalidArgument(format!("s3 option {key}={value:?} is not a whole number"))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bucket_prefix_and_options_parse() {
        let options = Options::parse("s3://logs/skiff/prod/?flush_ms=20&flush_bytes=1000")
            .expect("valid url");
        assert_eq!(options.bucket, "logs");
        assert_eq!(options.prefix, "skiff/prod");
        assert_eq!(options.flush_delay, Duration::from_millis(20));
        assert_eq!(options.flush_bytes, 1000);
        let bare = Options::parse("s3://logs").expect("valid url");
        assert_eq!((bare.bucket.as_str(), bare.prefix.as_str()), ("logs", ""));
    }

    #[test]
    fn unknown_keys_bad_numbers_and_missing_buckets_are_invalid() {
        for url in ["s3://b?flush=1", "s3://b?flush_ms=soon", "s3:///prefix"] {
            let result = Options::parse(url);
            assert!(matches!(result, Err(StorageError::InvalidArgument(_))), "{url}: {result:?}");
        }
    }
}
