//! Frame metadata: a list of `key (u8) | length (u16 BE) | value` entries.
//!
//! Requests carry the service, the method, the remaining deadline budget, the trace id, and the
//! caller's credential when it has one. Unknown keys are skipped, so a newer peer can add
//! entries without breaking an older one.

use bytes::{BufMut, Bytes, BytesMut};
use compact_str::CompactString;

const KEY_SERVICE: u8 = 1;
const KEY_METHOD: u8 = 2;
const KEY_DEADLINE: u8 = 3;
const KEY_TRACE_ID: u8 = 4;
const KEY_CREDENTIAL: u8 = 5;

/// Why a metadata section could not be parsed. Fatal for the connection it came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum MetadataError {
    /// An entry header (key and length) is cut short.
    #[error("truncated entry header")]
    TruncatedEntry,
    /// An entry claims more bytes than the section has.
    #[error("entry longer than the section")]
    EntryTooLong,
    /// The deadline entry is not a u64.
    #[error("deadline is not 8 bytes")]
    BadDeadline,
    /// The trace id entry is not a u128.
    #[error("trace id is not 16 bytes")]
    BadTraceId,
    /// A name (service, method) is not UTF-8.
    #[error("name is not UTF-8")]
    NotUtf8,
}

/// Parsed metadata of a frame. Names are short and stored inline ([`CompactString`]), which is
/// cheaper than sharing the read buffer: no reference count to touch per name.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Metadata {
    /// Service name; empty when absent (responses and control frames).
    pub service: CompactString,
    /// Method name; empty when absent.
    pub method: CompactString,
    /// Time the caller is still willing to wait, in microseconds, measured when the frame was sent.
    /// Relative rather than absolute so that clock skew between hosts does not matter.
    pub deadline_us: Option<u64>,
    /// Trace id carried across hops; 0 means none.
    pub trace_id: u128,
    /// Who the caller says it is: opaque bytes the service verifies (this crate never looks
    /// inside). Shares the read buffer's memory.
    pub credential: Option<Bytes>,
}

impl Metadata {
    /// Metadata of a request.
    pub fn request(service: &'static str, method: &'static str, deadline_us: Option<u64>, trace_id: u128) -> Self {
        Metadata {
            service: CompactString::const_new(service),
            method: CompactString::const_new(method),
            deadline_us,
            trace_id,
            credential: None,
        }
    }

    /// Appends the encoded entries to `dst`; absent fields are left out.
    pub fn encode(&self, dst: &mut BytesMut) {
        let entries = Entries {
            service: &self.service,
            method: &self.method,
            deadline_us: self.deadline_us,
            trace_id: self.trace_id,
            credential: self.credential.as_deref(),
        };
        entries.encode(dst);
    }

    /// Parses a metadata section. Fails on a truncated entry, or on a known key with a value of the
    /// wrong size or encoding.
    pub fn decode(section: &Bytes) -> Result<Metadata, MetadataError> {
        let mut meta = Metadata::default();
        let mut src = &section[..];
        while !src.is_empty() {
            let [key, len_hi, len_lo, rest @ ..] = src else {
                return Err(MetadataError::TruncatedEntry);
            };
            let len = u16::from_be_bytes([*len_hi, *len_lo]) as usize;
            if rest.len() < len {
                return Err(MetadataError::EntryTooLong);
            }
            let (value, tail) = rest.split_at(len);
            src = tail;
            match *key {
                KEY_SERVICE => meta.service = utf8(value)?,
                KEY_METHOD => meta.method = utf8(value)?,
                KEY_DEADLINE => {
                    let bytes: [u8; 8] = value.try_into().map_err(|_| MetadataError::BadDeadline)?;
                    meta.deadline_us = Some(u64::from_be_bytes(bytes));
                }
                KEY_TRACE_ID => {
                    let bytes: [u8; 16] = value.try_into().map_err(|_| MetadataError::BadTraceId)?;
                    meta.trace_id = u128::from_be_bytes(bytes);
                }
                // An empty credential is none: it encodes as no entry, so it must decode as one
                // (found by the `metadata` fuzz target).
                KEY_CREDENTIAL => meta.credential = (!value.is_empty()).then(|| section.slice_ref(value)),
                _ => {} // unknown keys are for newer peers
            }
        }
        Ok(meta)
    }
}

fn utf8(value: &[u8]) -> Result<CompactString, MetadataError> {
    CompactString::from_utf8(value).map_err(|_| MetadataError::NotUtf8)
}

/// The entries of a request, borrowed: encoded without building a [`Metadata`] first (the
/// client's hot path).
#[derive(Clone, Copy, Debug)]
pub(crate) struct Entries<'a> {
    pub(crate) service: &'a str,
    pub(crate) method: &'a str,
    pub(crate) deadline_us: Option<u64>,
    pub(crate) trace_id: u128,
    pub(crate) credential: Option<&'a [u8]>,
}

impl Entries<'_> {
    /// Appends the entries to `dst`; absent fields are left out.
    pub(crate) fn encode(&self, dst: &mut BytesMut) {
        put_entry(dst, KEY_SERVICE, self.service.as_bytes());
        put_entry(dst, KEY_METHOD, self.method.as_bytes());
        if let Some(us) = self.deadline_us {
            put_entry(dst, KEY_DEADLINE, &us.to_be_bytes());
        }
        if self.trace_id != 0 {
            put_entry(dst, KEY_TRACE_ID, &self.trace_id.to_be_bytes());
        }
        if let Some(credential) = self.credential {
            put_entry(dst, KEY_CREDENTIAL, credential);
        }
    }
}

fn put_entry(dst: &mut BytesMut, key: u8, value: &[u8]) {
    if value.is_empty() {
        return;
    }
    // Names are short by construction (Rust identifiers) and credentials a few dozen bytes; a
    // longer value is cut rather than producing an entry whose length does not fit its u16 field.
    let value = &value[..value.len().min(u16::MAX as usize)];
    dst.reserve(3 + value.len());
    dst.put_u8(key);
    dst.put_u16(value.len() as u16);
    dst.put_slice(value);
}

#[cfg(test)]
mod tests {
    use super::*;

    fn encoded(meta: &Metadata) -> BytesMut {
        let mut buf = BytesMut::new();
        meta.encode(&mut buf);
        buf
    }

    fn decode(bytes: &[u8]) -> Result<Metadata, MetadataError> {
        Metadata::decode(&Bytes::copy_from_slice(bytes))
    }

    #[test]
    fn request_metadata_round_trips() {
        let mut meta = Metadata::request("Stock", "reserve", Some(250_000), 0xfeed_beef);
        assert_eq!(decode(&encoded(&meta)).unwrap(), meta);
        meta.credential = Some(Bytes::from_static(b"who I am"));
        assert_eq!(decode(&encoded(&meta)).unwrap(), meta);
    }

    #[test]
    fn an_empty_credential_entry_is_no_credential() {
        let meta = decode(&[KEY_CREDENTIAL, 0, 0]).unwrap();
        assert_eq!(meta.credential, None);
        assert_eq!(decode(&encoded(&meta)).unwrap(), meta);
    }

    #[test]
    fn empty_metadata_is_empty() {
        assert!(encoded(&Metadata::default()).is_empty());
        assert_eq!(decode(&[]).unwrap(), Metadata::default());
    }

    #[test]
    fn unknown_keys_are_skipped() {
        let mut buf = BytesMut::new();
        put_entry(&mut buf, 200, b"future");
        put_entry(&mut buf, KEY_METHOD, b"get");
        let meta = decode(&buf).unwrap();
        assert_eq!(&meta.method[..], "get");
    }

    #[test]
    fn malformed_entries_are_errors() {
        assert_eq!(decode(&[1, 0]), Err(MetadataError::TruncatedEntry));
        assert_eq!(decode(&[1, 0, 5, b'a']), Err(MetadataError::EntryTooLong));
        assert_eq!(decode(&[3, 0, 1, 9]), Err(MetadataError::BadDeadline));
        assert_eq!(decode(&[4, 0, 1, 9]), Err(MetadataError::BadTraceId));
        assert_eq!(decode(&[1, 0, 1, 0xff]), Err(MetadataError::NotUtf8));
    }
}
