//! The `users` table. Every query binds its parameters.

use chrono::{DateTime, Utc};
use contracts::Role;
use contracts::user::UserView;
use sqlx::PgPool;

use crate::username::Username;

/// A stored user, hash included.
#[derive(Debug, sqlx::FromRow)]
pub(crate) struct UserRow {
    /// Id.
    pub(crate) id: i64,
    /// Username.
    pub(crate) username: String,
    /// argon2id PHC string; `None` for token-only load-test users.
    pub(crate) password_hash: Option<String>,
    /// Role name.
    pub(crate) role: String,
    /// Creation time.
    pub(crate) created_at: DateTime<Utc>,
}

impl UserRow {
    /// The public view (unknown role names read as plain users).
    pub(crate) fn view(&self) -> UserView {
        UserView {
            id: self.id,
            username: self.username.clone(),
            role: Role::parse(&self.role).unwrap_or(Role::User),
            created_at: self.created_at,
        }
    }
}

/// Inserts a user; `Ok(None)` when the username is taken.
pub(crate) async fn insert(
    pool: &PgPool,
    username: &Username,
    hash: &str,
    role: Role,
) -> sqlx::Result<Option<UserRow>> {
    sqlx::query_as(
        "INSERT INTO users (username, password_hash, role) VALUES ($1, $2, $3)
         ON CONFLICT (username) DO NOTHING
         RETURNING id, username, password_hash, role, created_at",
    )
    .bind(username.as_str())
    .bind(hash)
    .bind(role.as_str())
    .fetch_optional(pool)
    .await
}

/// Gives user `id` the admin role and a new password hash.
pub(crate) async fn set_admin_password(pool: &PgPool, id: i64, hash: &str) -> sqlx::Result<()> {
    sqlx::query("UPDATE users SET password_hash = $2, role = 'admin' WHERE id = $1")
        .bind(id)
        .bind(hash)
        .execute(pool)
        .await?;
    Ok(())
}

/// A user by username.
pub(crate) async fn by_username(pool: &PgPool, username: &str) -> sqlx::Result<Option<UserRow>> {
    sqlx::query_as("SELECT id, username, password_hash, role, created_at FROM users WHERE username = $1")
        .bind(username)
        .fetch_optional(pool)
        .await
}

/// A user by id.
pub(crate) async fn by_id(pool: &PgPool, id: i64) -> sqlx::Result<Option<UserRow>> {
    sqlx::query_as("SELECT id, username, password_hash, role, created_at FROM users WHERE id = $1")
        .bind(id)
        .fetch_optional(pool)
        .await
}

/// Creates the token-only users among `usernames` that do not exist, in one statement, and
/// returns (id, username) of every one that is token-only. A name taken by an account with a
/// password is not returned: load tests never get tokens for real accounts.
pub(crate) async fn upsert_token_only(pool: &PgPool, usernames: &[String]) -> sqlx::Result<Vec<(i64, String)>> {
    sqlx::query_as(
        "INSERT INTO users (username, password_hash, role)
         SELECT name, NULL, 'user' FROM UNNEST($1::text[]) AS name
         ON CONFLICT (username) DO UPDATE SET username = EXCLUDED.username
             WHERE users.password_hash IS NULL
         RETURNING id, username",
    )
    .bind(usernames)
    .fetch_all(pool)
    .await
}
