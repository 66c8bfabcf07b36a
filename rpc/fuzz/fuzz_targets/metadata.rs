//! The metadata decoder on arbitrary bytes, as the metadata section of a frame.
//!
//! It must never panic, and whatever it accepts must encode back into a section it decodes to
//! the same value. The re-encoded section is never longer than the one decoded either (duplicate
//! and unknown entries are dropped, nothing is added), so metadata that fitted a frame's limit
//! still fits when forwarded.

#![no_main]

use bytes::{Bytes, BytesMut};
use libfuzzer_sys::fuzz_target;
use rpc::metadata::Metadata;

fuzz_target!(|data: &[u8]| {
    let section = Bytes::copy_from_slice(data);
    let Ok(metadata) = Metadata::decode(&section) else {
        return;
    };
    let mut encoded = BytesMut::new();
    metadata.encode(&mut encoded);
    assert!(encoded.len() <= section.len(), "re-encoding grew the section from {} to {}", section.len(), encoded.len());
    let encoded = encoded.freeze();
    assert_eq!(Metadata::decode(&encoded), Ok(metadata), "decoded {section:?}, re-encoded as {encoded:?}");
});
