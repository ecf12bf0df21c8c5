//! Record batches as produce hands them to the broker: split into v2 batches, each header
//! read, records decoded (inflating compressed ones with a bound) with duplicate headers kept.
#![no_main]

use bytes::Bytes;
use libfuzzer_sys::fuzz_target;
use skiff_protocol::batch::split_batches;
use skiff_protocol::records::decode_within;

fuzz_target!(|data: &[u8]| {
    let Ok(batches) = split_batches(&Bytes::copy_from_slice(data)) else { return };
    for batch in batches {
        let _ = batch.header.last_offset();
        let _ = decode_within(&batch, 1 << 20);
    }
});
