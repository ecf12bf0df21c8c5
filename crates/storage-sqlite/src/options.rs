//! The `sqlite://PATH?key=value&...` query string.
//!
//! Unknown keys are refused rather than ignored: a typo in a durability setting must not
//! silently leave the default in place (or, worse, make someone believe it changed).

use std::time::Duration;

use skiff_storage::{Result, StorageError};

/// `PRAGMA synchronous` for the write connection.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Synchronous {
    /// Every commit waits for the WAL to reach the disk: an acknowledged append survives a power
    /// loss. The default.
    Full,
    /// Like `Full`, and also syncs the directory after the WAL is reset.
    Extra,
    /// Commits do not wait for the disk; a power loss (not a process crash) may lose the last
    /// acknowledged writes. Faster on slow disks.
    Normal,
}

impl Synchronous {
    pub(crate) fn pragma_value(self) -> &'static str {
        match self {
            Self::Full => "FULL",
            Self::Extra => "EXTRA",
            Self::Normal => "NORMAL",
        }
    }
}

/// Settings read from the storage URL's query string.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Options {
    pub(crate) synchronous: Synchronous,
    /// How long a connection waits for another one (possibly another broker) to release the
    /// database before giving up with `Unavailable`.
    pub(crate) busy_timeout: Duration,
}

impl Default for Options {
    fn default() -> Self {
        Self { synchronous: Synchronous::Full, busy_timeout: Duration::from_secs(5) }
    }
}

impl Options {
    /// Parses `key=value` pairs separated by `&`; empty pieces are ignored.
    pub(crate) fn parse(query: &str) -> Result<Self> {
        let mut options = Self::default();
        for pair in query.split('&').filter(|pair| !pair.is_empty()) {
            let (key, value) = pair.split_once('=').unwrap_or((pair, ""));
            match key {
                "synchronous" => options.synchronous = parse_synchronous(value)?,
                "busy_timeout_ms" => options.busy_timeout = parse_millis(key, value)?,
                other => {
                    return Err(StorageError::InvalidArgument(format!(
                        "unknown sqlite option {other:?}: known options are synchronous \
                         (full, normal, extra) and busy_timeout_ms"
                    )))
                }
            }
        }
        Ok(options)
    }
}

fn parse_synchronous(value: &str) -> Result<Synchronous> {
    match value.to_ascii_lowercase().as_str() {
        "full" => Ok(Synchronous::Full),
        "extra" => Ok(Synchronous::Extra),
        "normal" => Ok(Synchronous::Normal),
        _ => Err(StorageError::InvalidArgument(format!(
            "sqlite option synchronous={value:?} is not one of full, normal, extra"
        ))),
    }
}

fn parse_millis(key: &str, value: &str) -> Result<Duration> {
    value.parse::<u64>().map(Duration::from_millis).map_err(|_| {
        StorageError::InvalidArgument(format!(
            "sqlite option {key}={value:?} is not a whole number of milliseconds"
        ))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn empty_query_gives_durable_defaults() {
        assert_eq!(Options::parse("").ok(), Some(Options::default()));
        assert_eq!(Options::default().synchronous, Synchronous::Full);
    }

    #[test]
    fn known_options_parse() {
        let options = Options::parse("synchronous=NORMAL&busy_timeout_ms=250&").ok();
        assert_eq!(
            options,
            Some(Options {
                synchronous: Synchronous::Normal,
                busy_timeout: Duration::from_millis(250)
            })
        );
    }

    #[test]
    fn unknown_keys_and_bad_values_are_invalid() {
        for query in ["sync=normal", "synchronous=off", "busy_timeout_ms=soon", "journal_mode"] {
            let result = Options::parse(query);
            assert!(matches!(result, Err(StorageError::InvalidArgument(_))), "{query}: {result:?}");
        }
    }
}
