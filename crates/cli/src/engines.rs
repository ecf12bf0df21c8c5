//! The storage URL -> engine factory.
//!
//! It lives in the binary, not in `skiff-storage`, because engines depend on the storage crate;
//! a factory there would make a dependency cycle. Adding an engine is one match arm here.

use anyhow::{bail, Context};
use skiff_storage::Storage;
use url::Url;

/// Opens the engine a storage URL names: `memory://`, `sqlite://PATH`.
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
        other => bail!("unknown storage scheme {other:?}: use memory:// or sqlite://PATH"),
    }
}
