//! The frame: a fixed 24-byte header, then metadata, then body.
//!
//! Decoding follows mini-redis: [`Frame::check`] looks at the header only and says whether a whole
//! frame is buffered (or why the bytes can never become a valid frame); [`Frame::parse`] then splits
//! it off the buffer without copying. Neither ever panics, whatever the input: truncated input is
//! `Ok(None)`, anything else that is wrong is a typed [`FrameError`] and the caller closes that
//! connection. See `PROTOCOL.md` for the byte table.
//!
//! Encoding is here too, and only here: [`encode_request`], [`encode_response`] and
//! [`encode_control`] append a frame straight into a connection's write buffer (no intermediate
//! [`Frame`]), and [`Frame::encode`] writes a whole decoded frame back out.

use bytes::{Buf, BufMut, Bytes, BytesMut};

use crate::metadata::{self, Metadata, MetadataError};

/// The two bytes every frame starts with: ASCII `SK`.
pub const MAGIC: u16 = 0x534B;
/// The protocol version this crate speaks (2: the handshake and the credential entry).
pub const VERSION: u8 = 2;
/// Size of the fixed header in bytes.
pub const HEADER_LEN: usize = 24;

/// What a frame is for.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[repr(u8)]
pub enum Kind {
    /// A call from client to server.
    Request = 0,
    /// The answer to a request, carrying the request's id.
    Response = 1,
    /// Liveness probe; the peer answers with [`Kind::Pong`] and the same id.
    Ping = 2,
    /// Answer to a ping.
    Pong = 3,
    /// The client no longer wants the answer to request `id`: the server may stop working on it.
    Cancel = 4,
    /// The server is shutting down: no new requests on this connection; in-flight ones still complete.
    GoAway = 5,
}

impl Kind {
    fn from_u8(byte: u8) -> Option<Self> {
        Some(match byte {
            0 => Kind::Request,
            1 => Kind::Response,
            2 => Kind::Ping,
            3 => Kind::Pong,
            4 => Kind::Cancel,
            5 => Kind::GoAway,
            _ => return None,
        })
    }
}

/// The outcome a response frame reports. Requests and control frames carry [`Status::Ok`].
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[repr(u8)]
pub enum Status {
    /// The handler ran and returned `Ok`; the body is the encoded value.
    Ok = 0,
    /// The handler ran and returned its own error; the body is the encoded application error.
    AppError = 1,
    /// The server was at its in-flight limit and did not run the handler.
    Overloaded = 2,
    /// The deadline had passed before the handler started, or while it ran.
    DeadlineExceeded = 3,
    /// No service with that name is registered on the server.
    UnknownService = 4,
    /// The service has no such method.
    UnknownMethod = 5,
    /// The body could not be decoded into the method's arguments, or the codec is unknown.
    BadRequest = 6,
    /// The handler panicked; the body is a UTF-8 message.
    Internal = 7,
    /// The server is draining and did not run the handler.
    ShuttingDown = 8,
}

impl Status {
    fn from_u8(byte: u8) -> Option<Self> {
        Some(match byte {
            0 => Status::Ok,
            1 => Status::AppError,
            2 => Status::Overloaded,
            3 => Status::DeadlineExceeded,
            4 => Status::UnknownService,
            5 => Status::UnknownMethod,
            6 => Status::BadRequest,
            7 => Status::Internal,
            8 => Status::ShuttingDown,
            _ => return None,
        })
    }
}

/// Hard size limits, checked from the header before any of the frame is buffered.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Limits {
    /// Largest metadata section accepted, in bytes.
    pub max_metadata: u32,
    /// Largest body accepted, in bytes.
    pub max_body: u32,
}

impl Limits {
    /// Ceiling on `max_metadata`: metadata is a few short fields, never bulk data.
    pub const METADATA_CEILING: u32 = 64 * 1024;
}

impl Default for Limits {
    fn default() -> Self {
        Limits { max_metadata: 4 * 1024, max_body: 8 * 1024 * 1024 }
    }
}

/// Why a sequence of bytes is not a frame. Every variant except `Incomplete` is fatal for the
/// connection it came from (and only for that connection).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum FrameError {
    /// The first two bytes are not [`MAGIC`]: the peer does not speak this protocol.
    #[error("bad magic {0:#06x}: the peer does not speak the seckill RPC protocol")]
    BadMagic(u16),
    /// A protocol version this implementation does not know.
    #[error("unsupported protocol version {0}")]
    UnsupportedVersion(u8),
    /// A frame kind this implementation does not know.
    #[error("unknown frame kind {0}")]
    UnknownKind(u8),
    /// A status this implementation does not know.
    #[error("unknown status {0}")]
    UnknownStatus(u8),
    /// The metadata section is larger than allowed.
    #[error("metadata of {len} bytes exceeds the limit of {max}")]
    MetadataTooLarge {
        /// Announced length.
        len: u32,
        /// Configured limit.
        max: u32,
    },
    /// The body is larger than allowed.
    #[error("body of {len} bytes exceeds the limit of {max}")]
    BodyTooLarge {
        /// Announced length.
        len: u32,
        /// Configured limit.
        max: u32,
    },
    /// The metadata section is not a valid list of entries.
    #[error("malformed metadata: {0}")]
    BadMetadata(#[from] MetadataError),
}

/// One decoded frame. `body` shares the read buffer's memory (no copy).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Frame {
    /// What the frame is for.
    pub kind: Kind,
    /// Codec id of the body (see [`crate::Codec`]); kept raw so an unknown id can be answered politely.
    pub codec: u8,
    /// Outcome, meaningful on responses.
    pub status: Status,
    /// Request id; a response carries the id of its request.
    pub id: u64,
    /// Parsed metadata.
    pub metadata: Metadata,
    /// Encoded body.
    pub body: Bytes,
}

/// The fixed part of a frame, as read off the wire.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Header {
    /// What the frame is for.
    pub kind: Kind,
    /// Raw codec id.
    pub codec: u8,
    /// Outcome.
    pub status: Status,
    /// Request id.
    pub id: u64,
    /// Length of the metadata section.
    pub metadata_len: u32,
    /// Length of the body.
    pub body_len: u32,
}

impl Header {
    /// Bytes of the whole frame this header announces.
    pub fn frame_len(&self) -> usize {
        HEADER_LEN + self.metadata_len as usize + self.body_len as usize
    }

    /// Appends this header to `dst`.
    pub fn encode(&self, dst: &mut BytesMut) {
        dst.reserve(HEADER_LEN);
        dst.put_u16(MAGIC);
        dst.put_u8(VERSION);
        dst.put_u8(self.kind as u8);
        dst.put_u8(self.codec);
        dst.put_u8(self.status as u8);
        dst.put_u16(0); // reserved
        dst.put_u64(self.id);
        dst.put_u32(self.metadata_len);
        dst.put_u32(self.body_len);
    }
}

impl Frame {
    /// Reads and validates the header at the start of `src`.
    ///
    /// Returns `Ok(None)` while fewer than [`HEADER_LEN`] bytes are present. Limits are enforced
    /// here, so an oversized frame is rejected before its body is ever buffered.
    pub fn check(src: &[u8], limits: &Limits) -> Result<Option<Header>, FrameError> {
        // Judge the magic as soon as it is there, so a wrong peer is cut off at once.
        if src.len() >= 2 {
            let magic = u16::from_be_bytes([src[0], src[1]]);
            if magic != MAGIC {
                return Err(FrameError::BadMagic(magic));
            }
        }
        if src.len() < HEADER_LEN {
            return Ok(None);
        }
        let mut cur = &src[2..HEADER_LEN];
        let version = cur.get_u8();
        if version != VERSION {
            return Err(FrameError::UnsupportedVersion(version));
        }
        let kind_byte = cur.get_u8();
        let kind = Kind::from_u8(kind_byte).ok_or(FrameError::UnknownKind(kind_byte))?;
        let codec = cur.get_u8();
        let status_byte = cur.get_u8();
        let status = Status::from_u8(status_byte).ok_or(FrameError::UnknownStatus(status_byte))?;
        let _reserved = cur.get_u16();
        let id = cur.get_u64();
        let metadata_len = cur.get_u32();
        let body_len = cur.get_u32();
        let max_metadata = limits.max_metadata.min(Limits::METADATA_CEILING);
        if metadata_len > max_metadata {
            return Err(FrameError::MetadataTooLarge { len: metadata_len, max: max_metadata });
        }
        if body_len > limits.max_body {
            return Err(FrameError::BodyTooLarge { len: body_len, max: limits.max_body });
        }
        Ok(Some(Header { kind, codec, status, id, metadata_len, body_len }))
    }

    /// Splits one whole frame off the front of `src`, or returns `Ok(None)` if it is not all there yet
    /// (in which case `src` is untouched and the caller reads more bytes).
    pub fn parse(src: &mut BytesMut, limits: &Limits) -> Result<Option<Frame>, FrameError> {
        let Some(header) = Frame::check(src, limits)? else {
            return Ok(None);
        };
        let total = header.frame_len();
        if src.len() < total {
            // Make room for the rest now so the next read completes the frame.
            src.reserve(total - src.len());
            return Ok(None);
        }
        let metadata_end = HEADER_LEN + header.metadata_len as usize;
        let frame = src.split_to(total).freeze();
        // A malformed section closes the connection, so the frame's bytes are not needed again.
        let metadata = Metadata::decode(&frame.slice(HEADER_LEN..metadata_end))?;
        let body = frame.slice(metadata_end..);
        Ok(Some(Frame { kind: header.kind, codec: header.codec, status: header.status, id: header.id, metadata, body }))
    }

    /// Appends the whole frame to `dst`.
    pub fn encode(&self, dst: &mut BytesMut) {
        let header = Header {
            kind: self.kind,
            codec: self.codec,
            status: self.status,
            id: self.id,
            metadata_len: 0,
            body_len: body_len(&self.body),
        };
        encode_with_metadata(dst, header, |dst| self.metadata.encode(dst), &self.body);
    }
}

/// Appends a request frame: the call's names, its remaining deadline, its trace id and its
/// credential as metadata.
pub(crate) fn encode_request(dst: &mut BytesMut, id: u64, codec: u8, entries: &metadata::Entries<'_>, body: &[u8]) {
    let header =
        Header { kind: Kind::Request, codec, status: Status::Ok, id, metadata_len: 0, body_len: body_len(body) };
    encode_with_metadata(dst, header, |dst| entries.encode(dst), body);
}

/// Appends a response frame (no metadata).
pub(crate) fn encode_response(dst: &mut BytesMut, id: u64, codec: u8, status: Status, body: &[u8]) {
    Header { kind: Kind::Response, codec, status, id, metadata_len: 0, body_len: body_len(body) }.encode(dst);
    dst.extend_from_slice(body);
}

/// Appends a frame with no metadata and no body (ping, pong, cancel, go-away).
pub(crate) fn encode_control(dst: &mut BytesMut, kind: Kind, id: u64) {
    Header { kind, codec: 0, status: Status::Ok, id, metadata_len: 0, body_len: 0 }.encode(dst);
}

/// Writes the header with a placeholder metadata length, the metadata, then patches the length
/// in: metadata is written once, in place, never measured first.
fn encode_with_metadata(dst: &mut BytesMut, header: Header, metadata: impl FnOnce(&mut BytesMut), body: &[u8]) {
    header.encode(dst);
    let metadata_start = dst.len();
    metadata(dst);
    let len = (dst.len() - metadata_start) as u32;
    dst[metadata_start - 8..metadata_start - 4].copy_from_slice(&len.to_be_bytes());
    dst.extend_from_slice(body);
}

/// Length of a body as it goes into the header. Bodies are bounded by [`Limits::max_body`] long
/// before `u32::MAX`; a larger one saturates and the peer rejects it as too large.
fn body_len(body: &[u8]) -> u32 {
    u32::try_from(body.len()).unwrap_or(u32::MAX)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> Frame {
        Frame {
            kind: Kind::Request,
            codec: 1,
            status: Status::Ok,
            id: 42,
            metadata: Metadata::request("Echo", "echo", Some(1500), 7),
            body: Bytes::from_static(b"hello"),
        }
    }

    #[test]
    fn request_frames_carry_their_call() {
        let mut buf = BytesMut::new();
        let entries = metadata::Entries {
            service: "Echo",
            method: "echo",
            deadline_us: Some(1500),
            trace_id: 7,
            credential: Some(b"me"),
        };
        encode_request(&mut buf, 9, 2, &entries, b"[1]");
        let frame = Frame::parse(&mut buf, &Limits::default()).unwrap().unwrap();
        assert_eq!((frame.kind, frame.codec, frame.id, &frame.body[..]), (Kind::Request, 2, 9, &b"[1]"[..]));
        let expected = Metadata {
            credential: Some(Bytes::from_static(b"me")),
            ..Metadata::request("Echo", "echo", Some(1500), 7)
        };
        assert_eq!(frame.metadata, expected);
        encode_response(&mut buf, 9, 2, Status::AppError, b"x");
        encode_control(&mut buf, Kind::Cancel, 3);
        let response = Frame::parse(&mut buf, &Limits::default()).unwrap().unwrap();
        assert_eq!((response.kind, response.status, &response.body[..]), (Kind::Response, Status::AppError, &b"x"[..]));
        let cancel = Frame::parse(&mut buf, &Limits::default()).unwrap().unwrap();
        assert_eq!((cancel.kind, cancel.id, cancel.body.len()), (Kind::Cancel, 3, 0));
        assert!(buf.is_empty());
    }

    #[test]
    fn round_trip() {
        let mut buf = BytesMut::new();
        sample().encode(&mut buf);
        let parsed = Frame::parse(&mut buf, &Limits::default()).unwrap().unwrap();
        assert_eq!(parsed, sample());
        assert!(buf.is_empty());
    }

    #[test]
    fn truncated_waits_for_more() {
        let mut full = BytesMut::new();
        sample().encode(&mut full);
        for cut in 0..full.len() {
            let mut part = BytesMut::from(&full[..cut]);
            assert_eq!(Frame::parse(&mut part, &Limits::default()), Ok(None), "cut at {cut}");
            assert_eq!(part.len(), cut, "a partial frame must stay in the buffer");
        }
    }

    #[test]
    fn bad_magic_is_rejected_from_two_bytes() {
        let mut buf = BytesMut::from(&b"GE"[..]);
        assert_eq!(Frame::parse(&mut buf, &Limits::default()), Err(FrameError::BadMagic(0x4745)));
    }

    #[test]
    fn oversized_body_is_rejected_from_the_header_alone() {
        let limits = Limits { max_metadata: 64, max_body: 10 };
        let mut buf = BytesMut::new();
        Header { kind: Kind::Request, codec: 1, status: Status::Ok, id: 1, metadata_len: 0, body_len: 11 }
            .encode(&mut buf);
        assert_eq!(Frame::parse(&mut buf, &limits), Err(FrameError::BodyTooLarge { len: 11, max: 10 }));
    }

    #[test]
    fn oversized_metadata_is_rejected() {
        let limits = Limits { max_metadata: 64, max_body: 10 };
        let mut buf = BytesMut::new();
        Header { kind: Kind::Request, codec: 1, status: Status::Ok, id: 1, metadata_len: 65, body_len: 0 }
            .encode(&mut buf);
        assert_eq!(Frame::parse(&mut buf, &limits), Err(FrameError::MetadataTooLarge { len: 65, max: 64 }));
    }

    #[test]
    fn unknown_version_kind_and_status_are_typed_errors() {
        let mut good = BytesMut::new();
        sample().encode(&mut good);
        let cases = [
            (2, 9, FrameError::UnsupportedVersion(9)),
            (3, 77, FrameError::UnknownKind(77)),
            (5, 200, FrameError::UnknownStatus(200)),
        ];
        for (offset, byte, expected) in cases {
            let mut buf = good.clone();
            buf[offset] = byte;
            assert_eq!(Frame::parse(&mut buf, &Limits::default()), Err(expected));
        }
    }
}
