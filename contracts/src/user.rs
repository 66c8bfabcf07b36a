//! user-service: accounts, passwords (argon2id), sessions (JWT).

use std::fmt;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::Role;

/// A user as others may see it (never the password hash).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct UserView {
    /// Id.
    pub id: i64,
    /// Unique login name.
    pub username: String,
    /// Role.
    pub role: Role,
    /// When the account was created.
    pub created_at: DateTime<Utc>,
}

/// A username and a password, as typed by the user.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Credentials {
    /// Login name.
    pub username: String,
    /// Password in clear: only ever hashed, never stored or logged.
    pub password: String,
}

impl fmt::Debug for Credentials {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Credentials").field("username", &self.username).field("password", &"[REDACTED]").finish()
    }
}

/// A signed-in session: a bearer JWT and who it is for.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Session {
    /// The JWT (HS256) to send as `Authorization: Bearer <token>`.
    pub token: String,
    /// When the token stops being accepted.
    pub expires_at: DateTime<Utc>,
    /// The user.
    pub user: UserView,
}

/// Load-test users to create in bulk (admin only).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct BulkUsers {
    /// Usernames are `{prefix}{n}` for n in 0..count; existing ones are reused.
    pub prefix: String,
    /// How many (at most [`BulkUsers::MAX`]).
    pub count: u32,
}

impl BulkUsers {
    /// Largest batch accepted in one call (the answer, one JWT per user, stays well under the
    /// RPC frame limit).
    pub const MAX: u32 = 20_000;
}

/// A load-test user and its token. These users have no password: they can only act through the
/// token issued here, and are marked as such in the database.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct IssuedUser {
    /// Id.
    pub id: i64,
    /// Username.
    pub username: String,
    /// A bearer JWT for this user.
    pub token: String,
}

/// Why a user operation failed.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, thiserror::Error)]
pub enum UserError {
    /// The username is taken.
    #[error("username already taken")]
    UsernameTaken,
    /// The username or password does not meet the rules.
    #[error("invalid input: {0}")]
    Invalid(String),
    /// Unknown username, or wrong password (deliberately not told apart).
    #[error("invalid username or password")]
    InvalidCredentials,
    /// No such user.
    #[error("no such user")]
    NotFound,
    /// The call carries no valid identity token.
    #[error("no valid caller identity")]
    Unauthenticated,
    /// The caller may not do this.
    #[error("not allowed")]
    Forbidden,
    /// Too many password hashes are being computed right now; try again shortly.
    #[error("busy: too many sign-ins at once")]
    Busy,
    /// Something on our side failed (details are in the service's logs).
    #[error("user service unavailable: {0}")]
    Unavailable(String),
}

/// Accounts and sessions. Who may call what is decided from the call's identity token.
#[rpc::service]
pub trait UserService {
    /// Creates an account with an argon2id password hash. Anyone.
    async fn register(&self, credentials: Credentials) -> Result<UserView, UserError>;
    /// Checks a password and issues a JWT. Anyone.
    async fn login(&self, credentials: Credentials) -> Result<Session, UserError>;
    /// A user by id: the user themself, an admin, or a service.
    #[rpc(idempotent)]
    async fn get_user(&self, id: i64) -> Result<UserView, UserError>;
    /// Creates (or reuses) token-only load-test users and returns a token for each. Admin only.
    async fn bulk_create(&self, request: BulkUsers) -> Result<Vec<IssuedUser>, UserError>;
}
