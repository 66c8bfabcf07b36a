//! The frame decoder on arbitrary bytes, as a connection's read buffer would hold them.
//!
//! Frames are split off one after another until the decoder wants more bytes (`Ok(None)`) or
//! gives up (`Err`), under three sets of limits. Whatever the bytes, it must never panic, a
//! partial frame must stay in the buffer untouched, and every frame it accepts must encode back
//! into bytes it accepts as the same frame.

#![no_main]

use bytes::BytesMut;
use libfuzzer_sys::fuzz_target;
use rpc::frame::{Frame, Limits};

fuzz_target!(|data: &[u8]| {
    let limits = [
        Limits::default(),
        // Tight: both size checks trip on inputs of a few hundred bytes.
        Limits { max_metadata: 64, max_body: 256 },
        // Loose: a metadata limit above the ceiling, which must still apply.
        Limits { max_metadata: u32::MAX, max_body: 1 << 20 },
    ];
    for limits in &limits {
        parse_all(data, limits);
    }
});

fn parse_all(data: &[u8], limits: &Limits) {
    let mut buf = BytesMut::from(data);
    loop {
        let before = buf.len();
        match Frame::parse(&mut buf, limits) {
            Ok(Some(frame)) => {
                assert!(buf.len() < before, "a parsed frame must consume bytes");
                assert_round_trips(&frame, limits);
            }
            Ok(None) => {
                assert_eq!(buf.len(), before, "an incomplete frame must stay in the buffer");
                return;
            }
            Err(_) => return,
        }
    }
}

fn assert_round_trips(frame: &Frame, limits: &Limits) {
    let mut encoded = BytesMut::new();
    frame.encode(&mut encoded);
    let reparsed = Frame::parse(&mut encoded, limits);
    assert_eq!(reparsed, Ok(Some(frame.clone())), "the frame re-encoded from {frame:?}");
    assert!(encoded.is_empty(), "the re-encoded frame left {} bytes behind", encoded.len());
}
