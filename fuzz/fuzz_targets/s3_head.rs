//! S3 partition head objects as a broker reads them from a bucket others can write to: any
//! bytes must decode to a head the engine can use without panicking, or be refused as corrupt.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| skiff_storage_s3::fuzzing::head(data));
