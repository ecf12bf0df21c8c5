//! The key layout under `registry/` in the [`skiff_storage::StateStore`] and the JSON documents
//! stored there (documented for users in `docs/schema-registry.md`).
//!
//! | key | value | changed |
//! |---|---|---|
//! | `registry/next-id` | `{"next": n}`: the next schema id to hand out | compare-and-set |
//! | `registry/schemas/<id>` | [`StoredSchema`]: type, text, references and their resolved closure | created once, never changed |
//! | `registry/fingerprints/<sha256>` | `{"id": n}`: identical schemas get one id | created once |
//! | `registry/subjects/<subject>` | [`SubjectDoc`]: every version with its id and soft-deleted flag | compare-and-set |
//! | `registry/global/config`, `registry/global/mode` | `{"compatibility": ..}`, `{"mode": ..}` | put |
//! | `registry/subject-config/<subject>`, `registry/subject-mode/<subject>` | the same, per subject | put |

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::format::{Reference, SchemaType};

pub(crate) const NEXT_ID: &str = "registry/next-id";
pub(crate) const SUBJECTS: &str = "registry/subjects/";
pub(crate) const GLOBAL_CONFIG: &str = "registry/global/config";
pub(crate) const GLOBAL_MODE: &str = "registry/global/mode";

/// Where schema documents live, one per id.
const SCHEMAS: &str = "registry/schemas/";

pub(crate) fn schema_key(id: i32) -> String {
    format!("{SCHEMAS}{id}")
}

/// Whether `key` is a schema document's key: created once, when a schema gets a new id (what
/// the broker's metrics count as a schema created).
pub fn is_schema_key(key: &str) -> bool {
    key.starts_with(SCHEMAS)
}

pub(crate) fn fingerprint_key(fingerprint: &str) -> String {
    format!("registry/fingerprints/{fingerprint}")
}

pub(crate) fn subject_key(subject: &str) -> String {
    format!("{SUBJECTS}{subject}")
}

pub(crate) fn subject_config_key(subject: &str) -> String {
    format!("registry/subject-config/{subject}")
}

pub(crate) fn subject_mode_key(subject: &str) -> String {
    format!("registry/subject-mode/{subject}")
}

/// The identity of a schema: its type, canonical form and references. Two registrations with
/// the same fingerprint get the same id, whichever broker serves them.
pub(crate) fn fingerprint(
    schema_type: SchemaType,
    canonical: &str,
    references: &[Reference],
) -> String {
    let mut hasher = Sha256::new();
    hasher.update(schema_type.to_string().as_bytes());
    hasher.update([0]);
    hasher.update(canonical.as_bytes());
    for reference in references {
        hasher.update([0]);
        hasher.update(reference.name.as_bytes());
        hasher.update([0]);
        hasher.update(reference.subject.as_bytes());
        hasher.update([0]);
        hasher.update(reference.version.to_be_bytes());
    }
    hasher.finalize().iter().map(|byte| format!("{byte:02x}")).collect()
}

/// `registry/next-id`.
#[derive(Debug, Serialize, Deserialize)]
pub(crate) struct Counter {
    pub(crate) next: i32,
}

/// `registry/fingerprints/<sha256>`.
#[derive(Debug, Serialize, Deserialize)]
pub(crate) struct FingerprintDoc {
    pub(crate) id: i32,
}

/// `registry/schemas/<id>`: immutable once written.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub(crate) struct StoredSchema {
    #[serde(rename = "schemaType")]
    pub(crate) schema_type: String,
    pub(crate) schema: String,
    #[serde(default)]
    pub(crate) references: Vec<Reference>,
    /// The transitive closure of `references` as it was at registration, so the schema parses
    /// the same forever, whatever later happens to the referenced subjects.
    #[serde(default)]
    pub(crate) resolved: Vec<StoredResolved>,
}

/// One schema of a [`StoredSchema`]'s reference closure.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct StoredResolved {
    pub(crate) name: String,
    #[serde(rename = "schemaType")]
    pub(crate) schema_type: String,
    pub(crate) schema: String,
}

/// `registry/subjects/<subject>`: one document per subject, so every change to a subject is
/// one compare-and-set and two registrations racing on it get consecutive versions.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub(crate) struct SubjectDoc {
    pub(crate) versions: Vec<VersionEntry>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct VersionEntry {
    pub(crate) version: i32,
    pub(crate) id: i32,
    #[serde(default)]
    pub(crate) deleted: bool,
}

impl SubjectDoc {
    pub(crate) fn live(&self) -> impl Iterator<Item = &VersionEntry> {
        self.versions.iter().filter(|entry| !entry.deleted)
    }

    pub(crate) fn visible(&self, include_deleted: bool) -> impl Iterator<Item = &VersionEntry> {
        self.versions.iter().filter(move |entry| include_deleted || !entry.deleted)
    }

    /// The number the next registration gets: one past every version ever kept, soft-deleted
    /// ones included (as Confluent does).
    pub(crate) fn next_version(&self) -> i32 {
        self.versions.iter().map(|entry| entry.version).max().unwrap_or(0).saturating_add(1)
    }
}

/// What writes a subject accepts.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Mode {
    /// Registrations and deletes as usual.
    #[default]
    ReadWrite,
    /// Registrations and deletes refused with 42205.
    ReadOnly,
    /// Registrations may name their id and version (migrations from another registry);
    /// compatibility is not checked.
    Import,
}

impl FromStr for Mode {
    type Err = String;

    fn from_str(text: &str) -> Result<Self, String> {
        match text.to_ascii_uppercase().as_str() {
            "READWRITE" => Ok(Self::ReadWrite),
            "READONLY" => Ok(Self::ReadOnly),
            "IMPORT" => Ok(Self::Import),
            _ => Err(format!("unknown mode {text}")),
        }
    }
}

impl fmt::Display for Mode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::ReadWrite => "READWRITE",
            Self::ReadOnly => "READONLY",
            Self::Import => "IMPORT",
        })
    }
}

pub(crate) fn encode<T: Serialize>(value: &T) -> bytes::Bytes {
    // Serializing these plain structs cannot fail; an empty object would be refused on read.
    bytes::Bytes::from(serde_json::to_vec(value).unwrap_or_default())
}

pub(crate) fn decode<T: for<'de> Deserialize<'de>>(
    key: &str,
    bytes: &[u8],
) -> Result<T, skiff_storage::StorageError> {
    serde_json::from_slice(bytes)
        .map_err(|error| skiff_storage::StorageError::Corrupt(format!("{key}: {error}")))
}
