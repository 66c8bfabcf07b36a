//! Body codecs, chosen per request by the codec id in the frame header.

use bytes::{BufMut, Bytes, BytesMut};
use serde::{Serialize, de::DeserializeOwned};

/// How a body is encoded. The server answers in the codec the request used.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
#[repr(u8)]
pub enum Codec {
    /// [postcard](https://docs.rs/postcard): compact, varint-based, serde-compatible. The default.
    #[default]
    Postcard = 1,
    /// JSON: slower and larger, but readable in a packet capture and easy for other languages.
    Json = 2,
}

/// A body that could not be encoded or decoded.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{codec:?} codec: {message}")]
pub struct CodecError {
    /// The codec that failed.
    pub codec: Codec,
    /// What went wrong, as the codec library put it.
    pub message: String,
}

impl Codec {
    /// The codec with this wire id, if it is one we know.
    pub fn from_id(id: u8) -> Option<Codec> {
        match id {
            1 => Some(Codec::Postcard),
            2 => Some(Codec::Json),
            _ => None,
        }
    }

    /// The wire id.
    pub fn id(self) -> u8 {
        self as u8
    }

    /// Encodes `value` into a new buffer.
    pub fn encode<T: Serialize + ?Sized>(self, value: &T) -> Result<Bytes, CodecError> {
        // Most messages here are small: one allocation, no regrowth.
        let mut buf = BytesMut::with_capacity(128);
        self.encode_into(value, &mut buf)?;
        Ok(buf.freeze())
    }

    /// Appends the encoding of `value` to `dst`.
    pub fn encode_into<T: Serialize + ?Sized>(self, value: &T, dst: &mut BytesMut) -> Result<(), CodecError> {
        match self {
            Codec::Postcard => postcard::serialize_with_flavor(value, BytesMutFlavor(dst)).map_err(|e| self.error(e)),
            Codec::Json => serde_json::to_writer(dst.writer(), value).map_err(|e| self.error(e)),
        }
    }

    /// Decodes a whole body. Trailing bytes are an error for JSON and ignored by postcard, which
    /// reads exactly what the type needs.
    pub fn decode<T: DeserializeOwned>(self, body: &[u8]) -> Result<T, CodecError> {
        match self {
            Codec::Postcard => postcard::from_bytes(body).map_err(|e| self.error(e)),
            Codec::Json => serde_json::from_slice(body).map_err(|e| self.error(e)),
        }
    }

    fn error(self, err: impl std::fmt::Display) -> CodecError {
        CodecError { codec: self, message: err.to_string() }
    }
}

/// Lets postcard write straight into a `BytesMut`, with no intermediate `Vec`.
struct BytesMutFlavor<'a>(&'a mut BytesMut);

impl postcard::ser_flavors::Flavor for BytesMutFlavor<'_> {
    type Output = ();

    fn try_extend(&mut self, data: &[u8]) -> postcard::Result<()> {
        self.0.extend_from_slice(data);
        Ok(())
    }

    fn try_push(&mut self, data: u8) -> postcard::Result<()> {
        self.0.put_u8(data);
        Ok(())
    }

    fn finalize(self) -> postcard::Result<()> {
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde::Deserialize;

    #[derive(Debug, PartialEq, Serialize, Deserialize)]
    struct Order {
        user_id: u64,
        goods_id: u64,
        note: Option<String>,
        tags: Vec<String>,
    }

    fn order() -> Order {
        Order { user_id: 7, goods_id: 42, note: Some("秒杀".into()), tags: vec!["a".into(), "b".into()] }
    }

    #[test]
    fn both_codecs_round_trip() {
        for codec in [Codec::Postcard, Codec::Json] {
            let bytes = codec.encode(&order()).unwrap();
            assert_eq!(codec.decode::<Order>(&bytes).unwrap(), order(), "{codec:?}");
            assert_eq!(Codec::from_id(codec.id()), Some(codec));
        }
    }

    #[test]
    fn json_is_readable() {
        let bytes = Codec::Json.encode(&order()).unwrap();
        assert!(std::str::from_utf8(&bytes).unwrap().contains("\"goods_id\":42"));
    }

    #[test]
    fn garbage_is_a_codec_error_not_a_panic() {
        for codec in [Codec::Postcard, Codec::Json] {
            let err = codec.decode::<Order>(&[0xff, 0xff, 0xff]).unwrap_err();
            assert_eq!(err.codec, codec);
        }
        assert_eq!(Codec::from_id(0), None);
        assert_eq!(Codec::from_id(3), None);
    }
}
