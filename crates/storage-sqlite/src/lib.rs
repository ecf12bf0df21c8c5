//! `sqlite://PATH`: one embedded database file in WAL mode (work in progress).

use std::path::Path;

use skiff_storage::{Result, Storage, StorageError};

/// Opens (creating if needed) the SQLite database at `path`.
pub fn open(path: &Path, _query: &str) -> Result<Storage> {
    Err(StorageError::Unavailable(format!("sqlite engine not built yet: {}", path.display())))
}
