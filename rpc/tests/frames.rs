//! Property tests of the decoder: whatever the bytes, it never panics, and it says exactly what
//! is wrong with truncated, oversized and foreign input.

use bytes::{Bytes, BytesMut};
use proptest::prelude::*;
use rpc::frame::{Frame, FrameError, HEADER_LEN, Header, Kind, Limits, MAGIC, Status};
use rpc::metadata::Metadata;

fn kind() -> impl Strategy<Value = Kind> {
    prop_oneof![
        Just(Kind::Request),
        Just(Kind::Response),
        Just(Kind::Ping),
        Just(Kind::Pong),
        Just(Kind::Cancel),
        Just(Kind::GoAway)
    ]
}

fn status() -> impl Strategy<Value = Status> {
    prop_oneof![
        Just(Status::Ok),
        Just(Status::AppError),
        Just(Status::Overloaded),
        Just(Status::DeadlineExceeded),
        Just(Status::UnknownService),
        Just(Status::UnknownMethod),
        Just(Status::BadRequest),
        Just(Status::Internal),
        Just(Status::ShuttingDown)
    ]
}

prop_compose! {
    fn frame()(
        kind in kind(),
        codec in any::<u8>(),
        status in status(),
        id in any::<u64>(),
        service in "[A-Za-z]{0,20}",
        method in "[a-z_]{0,20}",
        deadline_us in proptest::option::of(any::<u64>()),
        trace_id in any::<u128>(),
        credential in proptest::option::of(proptest::collection::vec(any::<u8>(), 1..80)),
        body in proptest::collection::vec(any::<u8>(), 0..2048),
    ) -> Frame {
        let credential = credential.map(Bytes::from);
        let metadata = Metadata { service: service.into(), method: method.into(), deadline_us, trace_id, credential };
        Frame { kind, codec, status, id, metadata, body: Bytes::from(body) }
    }
}

fn encoded(frames: &[Frame]) -> BytesMut {
    let mut buf = BytesMut::new();
    for frame in frames {
        frame.encode(&mut buf);
    }
    buf
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn arbitrary_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..4096)) {
        let mut buf = BytesMut::from(&bytes[..]);
        // Parse until the decoder wants more bytes or rejects the stream; it must do one or the other.
        for _ in 0..bytes.len() + 1 {
            match Frame::parse(&mut buf, &Limits::default()) {
                Ok(Some(_)) => continue,
                Ok(None) | Err(_) => break,
            }
        }
    }

    #[test]
    fn arbitrary_bytes_after_a_valid_magic_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..512)) {
        let mut buf = BytesMut::from(&MAGIC.to_be_bytes()[..]);
        buf.extend_from_slice(&[1]);
        buf.extend_from_slice(&bytes);
        let _ = Frame::parse(&mut buf, &Limits::default());
    }

    #[test]
    fn frames_round_trip_back_to_back(frames in proptest::collection::vec(frame(), 1..8)) {
        let mut buf = encoded(&frames);
        for expected in &frames {
            let parsed = Frame::parse(&mut buf, &Limits::default()).unwrap().unwrap();
            prop_assert_eq!(&parsed, expected);
        }
        prop_assert!(buf.is_empty());
    }

    #[test]
    fn a_truncated_frame_waits_for_more_and_leaves_the_buffer_alone(frame in frame(), cut in any::<prop::sample::Index>()) {
        let full = encoded(std::slice::from_ref(&frame));
        let cut = cut.index(full.len()); // strictly shorter than the frame
        let mut part = BytesMut::from(&full[..cut]);
        prop_assert_eq!(Frame::parse(&mut part, &Limits::default()), Ok(None));
        prop_assert_eq!(part.len(), cut);
        // The rest arrives: now it parses.
        part.extend_from_slice(&full[cut..]);
        prop_assert_eq!(Frame::parse(&mut part, &Limits::default()).unwrap(), Some(frame));
    }

    #[test]
    fn an_oversized_body_is_rejected_exactly(max_body in 0u32..1_000_000, excess in 1u32..1_000_000, id in any::<u64>()) {
        let limits = Limits { max_metadata: 4096, max_body };
        let mut buf = BytesMut::new();
        Header { kind: Kind::Request, codec: 1, status: Status::Ok, id, metadata_len: 0, body_len: max_body + excess }.encode(&mut buf);
        prop_assert_eq!(Frame::parse(&mut buf, &limits), Err(FrameError::BodyTooLarge { len: max_body + excess, max: max_body }));
    }

    #[test]
    fn oversized_metadata_is_rejected_exactly(len in 4097u32..) {
        let mut buf = BytesMut::new();
        Header { kind: Kind::Request, codec: 1, status: Status::Ok, id: 1, metadata_len: len, body_len: 0 }.encode(&mut buf);
        prop_assert_eq!(Frame::parse(&mut buf, &Limits::default()), Err(FrameError::MetadataTooLarge { len, max: 4096 }));
    }

    #[test]
    fn a_foreign_magic_is_rejected_from_its_first_two_bytes(
        magic in any::<u16>().prop_filter("not ours", |m| *m != MAGIC),
        rest in proptest::collection::vec(any::<u8>(), 0..64),
    ) {
        let mut buf = BytesMut::from(&magic.to_be_bytes()[..]);
        buf.extend_from_slice(&rest);
        prop_assert_eq!(Frame::parse(&mut buf, &Limits::default()), Err(FrameError::BadMagic(magic)));
    }

    #[test]
    fn the_header_is_always_24_bytes(frame in frame()) {
        let buf = encoded(std::slice::from_ref(&frame));
        let header = Frame::check(&buf, &Limits::default()).unwrap().unwrap();
        prop_assert_eq!(header.frame_len(), buf.len());
        prop_assert_eq!(buf.len(), HEADER_LEN + header.metadata_len as usize + frame.body.len());
    }
}
