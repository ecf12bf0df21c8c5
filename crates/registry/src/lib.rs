//! A Confluent-compatible Schema Registry whose every fact lives in the storage engine's
//! [`skiff_storage::StateStore`], so every broker on one storage URL serves the same ids,
//! subjects and versions, and a restart loses nothing.
//!
//! - [`registry`]: [`Registry`], its reads and the look-ups the broker's produce path uses
//!   ([`Registry::schema_by_id`], [`Registry::version_ids`], [`Registry::latest`],
//!   [`Registry::subjects_of`]).
//! - `register`: registration (ids, fingerprints, versions), look-up and compatibility.
//! - `subjects`: listing, soft and permanent deletes, references.
//! - `settings`: compatibility levels and modes.
//! - `stored`: the key layout under `registry/` and the stored JSON documents.
//! - `cas`: read-modify-write by compare-and-set with jittered backoff.
//! - `format`: the only module that touches `skiff-schema` (parsing, canonical forms,
//!   compatibility).
//! - [`http`]: the REST API (axum), routes and Confluent's error shape.

mod cas;
mod error;
mod format;
pub mod http;
mod register;
pub mod registry;
mod settings;
mod stored;
mod subjects;

#[cfg(test)]
mod tests;

pub use error::{RegistryError, Result};
pub use format::compatibility::Level;
pub use format::{Reference, Schema, SchemaType};
pub use register::{NewSchema, Registered};
pub use registry::{RegisteredSchema, Registry, SubjectVersion, VersionSpec};
pub use settings::Setting;
pub use stored::{is_schema_key, Mode};
