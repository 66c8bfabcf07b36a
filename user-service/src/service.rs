//! The `UserService` implementation.

use contracts::user::{BulkUsers, Credentials, IssuedUser, Session, UserError, UserService, UserView};
use contracts::{Actor, Role};
use platform::auth::JwtKeys;
use secrecy::ExposeSecret;
use sqlx::PgPool;

use crate::settings::AdminBootstrap;
use crate::username::{Username, check_password};
use crate::{password, store};

/// Accounts and sessions over PostgreSQL.
#[derive(Clone, Debug)]
pub(crate) struct Users {
    pool: PgPool,
    keys: JwtKeys,
}

impl Users {
    /// The service over a migrated database.
    pub(crate) fn new(pool: PgPool, keys: JwtKeys) -> Users {
        Users { pool, keys }
    }

    /// Creates the configured admin if it does not exist yet.
    pub(crate) async fn ensure_admin(&self, admin: &AdminBootstrap) -> anyhow::Result<()> {
        let Some(password) = &admin.password else {
            tracing::info!("no admin password configured (SECKILL_ADMIN__PASSWORD): no admin account ensured");
            return Ok(());
        };
        let username = Username::parse(&admin.username)?;
        check_password(password.expose_secret())?;
        if store::by_username(&self.pool, username.as_str()).await?.is_some() {
            return Ok(());
        }
        let hash = password::hash(password.expose_secret().to_owned()).await?;
        store::insert(&self.pool, &username, &hash, Role::Admin).await?;
        tracing::info!(username = username.as_str(), "admin account created");
        Ok(())
    }

    fn issue(&self, actor: Actor) -> Result<(String, chrono::DateTime<chrono::Utc>), UserError> {
        self.keys.issue(actor).map_err(|err| unavailable("signing a token", err))
    }
}

/// Logs the details and hands the caller a generic message.
fn unavailable(what: &str, err: impl std::fmt::Display) -> UserError {
    tracing::error!(%err, "{what} failed");
    UserError::Unavailable(format!("{what} failed"))
}

impl UserService for Users {
    async fn register(&self, credentials: Credentials) -> Result<UserView, UserError> {
        let username = Username::parse(&credentials.username)?;
        check_password(&credentials.password)?;
        let hash = password::hash(credentials.password).await.map_err(|e| unavailable("hashing", e))?;
        let row = store::insert(&self.pool, &username, &hash, Role::User)
            .await
            .map_err(|e| unavailable("storing the user", e))?
            .ok_or(UserError::UsernameTaken)?;
        Ok(row.view())
    }

    async fn login(&self, credentials: Credentials) -> Result<Session, UserError> {
        let row = store::by_username(&self.pool, &credentials.username).await.map_err(|e| unavailable("reading", e))?;
        // Unknown users and token-only users are checked against a decoy hash: same time, same answer.
        let stored = row.as_ref().and_then(|row| row.password_hash.clone());
        let matches = password::verify(credentials.password, stored).await.map_err(|e| unavailable("verifying", e))?;
        let row = row.filter(|_| matches).ok_or(UserError::InvalidCredentials)?;
        let user = row.view();
        let (token, expires_at) = self.issue(Actor { user_id: user.id, role: user.role })?;
        Ok(Session { token, expires_at, user })
    }

    async fn get_user(&self, id: i64) -> Result<UserView, UserError> {
        let row = store::by_id(&self.pool, id).await.map_err(|e| unavailable("reading", e))?;
        row.map(|row| row.view()).ok_or(UserError::NotFound)
    }

    async fn bulk_create(&self, actor: Actor, request: BulkUsers) -> Result<Vec<IssuedUser>, UserError> {
        if !actor.is_admin() {
            return Err(UserError::Forbidden);
        }
        if request.count == 0 || request.count > BulkUsers::MAX {
            return Err(UserError::Invalid(format!("count must be 1..={}", BulkUsers::MAX)));
        }
        Username::parse(&format!("{}0", request.prefix))?;
        let names: Vec<String> = (0..request.count).map(|n| format!("{}{n}", request.prefix)).collect();
        let users = store::upsert_token_only(&self.pool, &names).await.map_err(|e| unavailable("storing users", e))?;
        if users.len() != names.len() {
            return Err(UserError::Invalid("some of these usernames belong to accounts with a password".into()));
        }
        users
            .into_iter()
            .map(|(id, username)| {
                let (token, _) = self.issue(Actor { user_id: id, role: Role::User })?;
                Ok(IssuedUser { id, username, token })
            })
            .collect()
    }
}
