//! Sans-io glue between Skiff and the `kafka-protocol` codec.
//!
//! - [`frame`]: length-prefixed framing with hard limits, checked before any allocation.
//! - [`batch`]: the fixed 61-byte v2 record-batch header: parse, validate (CRC), rewrite offsets.
//! - [`header`]: request-header decoding that tells "unknown API" from "malformed".
//! - [`records`]: the records inside a batch, for the few places that must look at them
//!   (row engines, compaction): decode, re-encode, keep some.
//! - [`produce`]: Produce answers refusing a partition, shared by the broker and the proxy.
//! - [`inflate`]: decompression with a bound on the output (compression bombs are refused).
//! - [`names`]: Kafka's names for API keys and error codes.
//!
//! No tokio here: the broker owns the sockets; this crate only looks at bytes.

pub mod batch;
pub mod frame;
pub mod header;
pub mod inflate;
pub mod names;
pub mod produce;
pub mod records;

pub use kafka_protocol;
pub use kafka_protocol::error::ResponseError as ErrorCode;
