//! A request frame as the broker reads it: the fixed prefix, the header for that API and
//! version, then the body of any API and version kafka-protocol decodes (a superset of what
//! the broker answers). Nothing may panic or allocate beyond the frame's own size.
#![no_main]

use bytes::Bytes;
use kafka_protocol::messages::RequestKind;
use libfuzzer_sys::fuzz_target;
use skiff_protocol::header::{decode_header, peek_prefix};

fuzz_target!(|data: &[u8]| {
    let Ok(prefix) = peek_prefix(data) else { return };
    let mut frame = Bytes::copy_from_slice(data);
    let Ok((api_key, _header)) = decode_header(&mut frame, &prefix) else { return };
    let versions = api_key.valid_versions();
    if prefix.api_version < versions.min || prefix.api_version > versions.max {
        return; // the broker refuses these before decoding the body
    }
    let _ = RequestKind::decode(api_key, &mut frame, prefix.api_version);
});
