//! The crate's public API per format: validation, references, canonical forms, compatibility,
//! and garbage that must never panic.

mod avro;
mod garbage;
mod json;
mod protobuf;
