//! Shared by the integration tests: skiff-sink's table test kit, named for Delta.

#![allow(dead_code, unreachable_pub, unused_imports)]

use skiff_sink::table::Location;
pub use skiff_sink::testing::{
    order_file as file, venv_python, COMMITTED_AT_MS, ORDER_V1, ORDER_V2,
};

/// A new temporary directory and its `file://` location.
pub fn local() -> (std::path::PathBuf, Location) {
    skiff_sink::testing::local_location("delta")
}

/// A new prefix of the moto bucket as a location.
pub fn s3() -> Location {
    skiff_sink::testing::s3_location("delta")
}
