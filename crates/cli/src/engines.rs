//! The storage URL -> engine factory.
//!
//! It lives in the binary, not in `skiff-storage`, because engines depend on the storage crate;
//! a factory there would make a dependency cycle. Adding an engine is one match arm here.

use anyhow::{bail, Context};
use skiff_metrics::Metrics;
use skiff_storage::faults::{with_faults, Faults};
use skiff_storage::Storage;
use url::Url;

/// Opens the engine a storage URL names: `memory://`, `sqlite://PATH`,
/// `postgres://user:password@host:port/database` (or `postgresql://`), `s3://bucket[/prefix]`.
/// With `metrics`, every storage call is metered under the engine's name, and the S3 engine's
/// request counts are exported.
pub(crate) fn open(storage_url: &str, metrics: Option<&mut Metrics>) -> anyhow::Result<Storage> {
    open_with_faults(storage_url, metrics, None)
}

/// Like [`open`], with `faults` (for testing only) injected between the engine and the
/// metering, so the storage metrics count injected errors as the errors they pretend to be.
pub(crate) fn open_with_faults(
    storage_url: &str,
    mut metrics: Option<&mut Metrics>,
    faults: Option<Faults>,
) -> anyhow::Result<Storage> {
    let (scheme, rest) = storage_url.split_once("://").with_context(|| {
        format!("storage url {storage_url:?} has no scheme (try sqlite://skiff.db)")
    })?;
    let (engine, storage) = match scheme {
        "memory" => ("memory", skiff_storage_memory::MemoryEngine::storage()),
        "sqlite" => {
            let url = Url::parse(storage_url).ok();
            let query = url.as_ref().and_then(|url| url.query()).unwrap_or_default();
            let path = rest.split('?').next().unwrap_or(rest);
            if path.is_empty() {
                bail!("sqlite storage needs a file path, e.g. sqlite://skiff.db");
            }
            let storage = skiff_storage_sqlite::open(std::path::Path::new(path), query)
                .with_context(|| format!("opening {storage_url}"))?;
            ("sqlite", storage)
        }
        "postgres" | "postgresql" => {
            let storage = skiff_storage_postgres::open(storage_url)
                .with_context(|| format!("opening {}", redacted(storage_url)))?;
            ("postgres", storage)
        }
        "s3" => {
            let (storage, requests) = skiff_storage_s3::open_counted(storage_url)
                .with_context(|| format!("opening {storage_url} (credentials from AWS_*)"))?;
            if let Some(metrics) = metrics.as_deref_mut() {
                metrics.add_s3_requests(Box::new(move || {
                    let totals = requests.totals();
                    let kinds = [("get", totals.gets), ("put", totals.puts)];
                    let kinds = kinds
                        .into_iter()
                        .chain([("list", totals.lists), ("delete", totals.deletes)]);
                    kinds.collect()
                }));
            }
            ("s3", storage)
        }
        other => bail!(
            "unknown storage scheme {other:?}: use memory://, sqlite://PATH, \
             postgres://user:password@host:port/database or s3://bucket[/prefix]"
        ),
    };
    let storage = match faults {
        Some(faults) => with_faults(storage, faults),
        None => storage,
    };
    Ok(match metrics {
        Some(metrics) => skiff_metrics::metered(storage, engine, metrics),
        None => storage,
    })
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
