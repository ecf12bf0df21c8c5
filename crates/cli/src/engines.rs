//! The storage URL -> engine factory.
//!
//! It lives in the binary, not in `skiff-storage`, because engines depend on the storage crate;
//! a factory there would make a dependency cycle. Adding an engine is one match arm here.

use anyhow::{bail, Context};
use skiff_storage::Storage;
use url::Url;

/// Opens the engine a storage URL names: `memory://`, `sqlite://PATH`,
/// `postgres://user:password@host:port/database` (or `postgresql://`), `s3://bucket[/prefix]`.
pub(crate) fn open(storage_url: &str) -> anyhow::Result<Storage> {
    let (scheme, rest) = storage_url.split_once("://").with_context(|| {
        format!("storage url {storage_url:?} has no scheme (try sqlite://skiff.db)")
    })?;
    match scheme {
        "memory" => Ok(skiff_storage_memory::MemoryEngine::storage()),
        "sqlite" => {
            let url = Url::parse(storage_url).ok();
            let query = url.as_ref().and_then(|url| url.query()).unwrap_or_default();
            let path = rest.split('?').next().unwrap_or(rest);
            if path.is_empty() {
                bail!("sqlite storage needs a file path, e.g. sqlite://skiff.db");
            }
            skiff_storage_sqlite::open(std::path::Path::new(path), query)
                .with_context(|| format!("opening {storage_url}"))
        }
        "postgres" | "postgresql" => skiff_storage_postgres::open(storage_url)
            .with_context(|| format!("opening {}", redacted(storage_url))),
        "s3" => skiff_storage_s3::open(storage_url)
            .with_context(|| format!("opening {storage_url} (credentials from AWS_*)")),
        other => bail!(
            "unknown storage scheme {other:?}: use memory://, sqlite://PATH, \
             postgres://user:password@host:port/database or s3://bucket[/prefix]"
        ),
    }
}

/// The URL without its password, for messages and logs.
pub(crate) fn redacted(storage_url: &str) -> String {
    match Url::parse(storage_url) {
        Ok(mut url) if url.password().is_some() => {
            let _ = url.set_password(Some("***"));
            url.to_string()
        }
        _ => storage_url.to_owned(),
    }
}
