//! The log store of one topic's Delta table, on the object store the table location names.
//!
//! deltalake 1.1 and skiff-sink both use object_store 0.13, so the location's store instance is
//! handed to deltalake as is for `s3://` locations: one S3 client, configured once (the
//! `AWS_*` environment, `?endpoint=`), whose conditional puts (`If-None-Match: *`) are what
//! makes a Delta commit atomic. deltalake's own S3 support (the `s3` feature, `deltalake-aws`,
//! DynamoDB locking) is not built.
//!
//! A `file://` location's store is rooted at the location's directory, but deltalake's kernel
//! turns `file://` URLs into absolute paths (`/dir/topic/_delta_log/...`), which a rooted store
//! would misplace; so a local table gets a store of the whole file system instead. Local
//! commits are atomic the same way: an exclusive create of the version's file.

use std::sync::Arc;

use deltalake::logstore::{default_logstore, LogStoreRef, StorageConfig};
use object_store::local::LocalFileSystem;
use object_store::path::Path;
use object_store::prefix::PrefixStore;
use object_store::ObjectStore;
use skiff_sink::table::Location;
use skiff_sink::SinkError;
use url::Url;

/// The table of `topic` under `location`: its URL and a log store over it.
pub(crate) fn log_store(location: &Location, topic: &str) -> Result<LogStoreRef, SinkError> {
    let (root, url) = root_and_url(location, topic)?;
    let prefix = Path::from_url_path(url.path().trim_end_matches('/'))
        .map_err(|e| invalid(location, &e.to_string()))?;
    let table: Arc<dyn ObjectStore> = Arc::new(PrefixStore::new(root.clone(), prefix));
    Ok(default_logstore(table, root, &url, &StorageConfig::default()))
}

/// The store whose root a table URL's path is relative to, and that URL.
fn root_and_url(
    location: &Location,
    topic: &str,
) -> Result<(Arc<dyn ObjectStore>, Url), SinkError> {
    let table = location.path(&[topic]);
    let url = location.url();
    match url.split_once("://") {
        Some(("file", rest)) => {
            let dir = rest.split('?').next().unwrap_or(rest).trim_end_matches('/');
            // deltalake's kernel refuses a local table root that does not exist (rather than
            // finding no table there), so it is created up front, as the location's own is.
            std::fs::create_dir_all(format!("{dir}/{table}"))
                .map_err(|e| invalid(location, &format!("cannot create the directory: {e}")))?;
            let url = Url::parse(&format!("file://{dir}/{table}/"))
                .map_err(|e| invalid(location, &e.to_string()))?;
            Ok((Arc::new(LocalFileSystem::new()), url))
        }
        Some(("s3", rest)) => {
            let bucket = rest.split(['/', '?']).next().unwrap_or_default();
            let url = Url::parse(&format!("s3://{bucket}/{table}/"))
                .map_err(|e| invalid(location, &e.to_string()))?;
            Ok((location.store().clone(), url))
        }
        _ => Err(invalid(location, "a Delta table needs a file:// or s3:// location")),
    }
}

fn invalid(location: &Location, reason: &str) -> SinkError {
    SinkError::Location(format!("Delta table location {:?}: {reason}", location.url()))
}
