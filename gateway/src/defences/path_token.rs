//! Hidden seckill paths: a random UUID v4 per (user, goods), kept in Redis for a minute, good for
//! exactly one order attempt (`GETDEL`). The order URL contains it, so a script cannot order
//! without first passing the captcha, and a path cannot be replayed or shared. They are stored and
//! used up by the gate's scripts, in the gate's round trip (`issue_path.lua`, `redeem_path.lua`:
//! [`super::Then`]).

/// Why a path was not accepted.
#[derive(Debug, thiserror::Error)]
pub(crate) enum PathError {
    /// Not this user's live path for this goods: unknown, used, expired, or someone else's.
    #[error("the seckill path is invalid, used or expired")]
    Invalid,
}
