//! A table location: the URL a topic's table lives under, as an object store and a root path.
//!
//! - `file:///absolute/path`: a local directory (created if missing), for one machine or a
//!   shared file system.
//! - `s3://bucket[/prefix][?endpoint=URL]`: any S3-compatible store, configured like the S3
//!   storage engine (credentials and region from the `AWS_*` environment).

use std::sync::Arc;

use object_store::local::LocalFileSystem;
use object_store::path::Path;
use object_store::ObjectStore;

use crate::SinkError;

/// Where tables are written.
#[derive(Clone)]
pub struct Location {
    store: Arc<dyn ObjectStore>,
    root: Path,
    url: String,
}

impl std::fmt::Debug for Location {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Location").field("url", &self.url).finish_non_exhaustive()
    }
}

impl Location {
    /// Checks a location URL without touching the store: what a topic config is checked with.
    pub fn check(url: &str) -> Result<(), SinkError> {
        match url.split_once("://") {
            Some(("file", path)) if path.starts_with('/') => Ok(()),
            Some(("file", _)) => Err(invalid(url, "a file location needs an absolute path")),
            Some(("s3", rest)) if !rest.is_empty() && !rest.starts_with('/') => Ok(()),
            Some(("s3", _)) => Err(invalid(url, "an s3 location names a bucket")),
            _ => Err(invalid(url, "use file:///absolute/path or s3://bucket/prefix")),
        }
    }

    /// Opens the store a location URL names (a local directory is created if missing).
    pub fn open(url: &str) -> Result<Location, SinkError> {
        Location::check(url)?;
        let (store, root): (Arc<dyn ObjectStore>, Path) = match url.split_once("://") {
            Some(("file", path)) => {
                let path = path.split('?').next().unwrap_or(path);
                std::fs::create_dir_all(path)
                    .map_err(|e| invalid(url, &format!("cannot create the directory: {e}")))?;
                let local = LocalFileSystem::new_with_prefix(path)
                    .map_err(|e| invalid(url, &e.to_string()))?;
                (Arc::new(local), Path::default())
            }
            _ => skiff_storage_s3::object_store_client(url)
                .map_err(|e| invalid(url, &e.to_string()))?,
        };
        Ok(Location { store, root, url: url.to_owned() })
    }

    /// The URL this location was opened from.
    pub fn url(&self) -> &str {
        &self.url
    }

    /// The object store.
    pub fn store(&self) -> &Arc<dyn ObjectStore> {
        &self.store
    }

    /// The path of `parts` (joined with `/`) under the location's root.
    pub fn path(&self, parts: &[&str]) -> Path {
        let mut path = self.root.clone();
        for part in parts {
            path = path.join(*part);
        }
        path
    }
}

fn invalid(url: &str, reason: &str) -> SinkError {
    SinkError::Location(format!("table location {url:?}: {reason}"))
}

/// An object store failure as a sink error (retried by the writer).
pub(crate) fn store_error(error: object_store::Error) -> SinkError {
    SinkError::Store(error.to_string())
}
