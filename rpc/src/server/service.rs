//! The dispatcher interface between the server and a service implementation.
//!
//! [`crate::service`] generates a [`Service`] for every service trait; writing one by hand is
//! possible but rarely needed.

use bytes::Bytes;
use futures::future::BoxFuture;
use serde::Serialize;

use crate::codec::{Codec, CodecError};
use crate::frame::Status;

/// A named set of methods the server can dispatch to.
pub trait Service: Send + Sync + 'static {
    /// The service name clients address (the trait's name).
    fn name(&self) -> &'static str;

    /// Starts `method` on `request`, or returns `None` if there is no such method. The returned
    /// future owns everything it needs, so the server can run it as a task of its own.
    fn call(&self, method: &str, request: Request) -> Option<BoxFuture<'static, Response>>;
}

/// The encoded arguments of one call.
#[derive(Clone, Debug)]
pub struct Request {
    /// Codec the arguments are in; the answer must use the same one.
    pub codec: Codec,
    /// Encoded arguments (a tuple of the method's parameters).
    pub body: Bytes,
}

/// The encoded outcome of one call.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Response {
    /// Outcome.
    pub status: Status,
    /// Encoded value or application error, or a UTF-8 message for other statuses.
    pub body: Bytes,
}

impl Request {
    /// Decodes the arguments.
    pub fn decode<A: serde::de::DeserializeOwned>(&self) -> Result<A, Response> {
        self.codec.decode(&self.body).map_err(|err| Response::failure(Status::BadRequest, err))
    }
}

impl Response {
    /// Encodes a handler's `Result`: `Ok` as [`Status::Ok`], `Err` as [`Status::AppError`].
    pub fn from_result<T: Serialize, E: Serialize>(codec: Codec, result: Result<T, E>) -> Response {
        let encoded = match &result {
            Ok(value) => codec.encode(value).map(|body| (Status::Ok, body)),
            Err(error) => codec.encode(error).map(|body| (Status::AppError, body)),
        };
        match encoded {
            Ok((status, body)) => Response { status, body },
            Err(err) => Response::encode_failure(err),
        }
    }

    /// Encodes a handler's plain value.
    pub fn from_value<T: Serialize>(codec: Codec, value: &T) -> Response {
        match codec.encode(value) {
            Ok(body) => Response { status: Status::Ok, body },
            Err(err) => Response::encode_failure(err),
        }
    }

    /// A failure with a status other than `Ok`/`AppError` and a readable message.
    pub fn failure(status: Status, message: impl std::fmt::Display) -> Response {
        Response { status, body: Bytes::from(message.to_string()) }
    }

    fn encode_failure(err: CodecError) -> Response {
        Response::failure(Status::Internal, format!("could not encode the answer: {err}"))
    }
}
