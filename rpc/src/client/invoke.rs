//! The typed call every generated client method makes.

use std::time::Duration;

use serde::Serialize;
use serde::de::DeserializeOwned;

use super::{Call, MethodInfo, Transport};
use crate::codec::Codec;
use crate::error::Error;
use crate::security::Credential;

/// Per-client call options (generated clients carry one).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct CallOptions {
    /// Codec for requests; `None` means [`Codec::Postcard`].
    pub codec: Option<Codec>,
    /// Timeout per call; `None` uses the transport's default.
    pub timeout: Option<Duration>,
    /// Who the calls say they come from; `None` sends none.
    pub credential: Option<Credential>,
}

/// Encodes `args`, sends them to `method` over `transport`, and decodes the answer into the
/// method's value or its application error.
pub async fn invoke<T, A, R, E>(
    transport: &T,
    options: &CallOptions,
    method: MethodInfo,
    hash_key: Option<u64>,
    args: &A,
) -> Result<R, Error<E>>
where
    T: Transport + ?Sized,
    A: Serialize + ?Sized,
    R: DeserializeOwned,
    E: DeserializeOwned,
{
    let codec = options.codec.unwrap_or_default();
    let body = codec.encode(args)?;
    let credential = options.credential.as_ref().map(Credential::bytes);
    let call = Call { method, hash_key, codec, body, timeout: options.timeout, credential };
    let reply = transport.call(call).await.map_err(Error::widen)?;
    if reply.app_error {
        Err(Error::Application(reply.codec.decode(&reply.body)?))
    } else {
        Ok(reply.codec.decode(&reply.body)?)
    }
}

/// A stable 64-bit hash of a routing key, for hash-based balancing. FNV-1a over the key's
/// postcard encoding: the same key maps to the same value in every process and every build.
pub fn hash_key<K: Serialize + ?Sized>(key: &K) -> u64 {
    let bytes = postcard::to_stdvec(key).unwrap_or_default();
    bytes.iter().fold(0xcbf2_9ce4_8422_2325u64, |hash, byte| (hash ^ u64::from(*byte)).wrapping_mul(0x0100_0000_01b3))
}
