//! The `UserService` implementation.

use contracts::user::{BulkUsers, Credentials, IssuedUser, Session, UserError, UserService, UserView};
use contracts::{Actor, Principal, Role};
use platform::auth::JwtKeys;
use platform::identity::Identities;
use secrecy::ExposeSecret;
use sqlx::PgPool;

use crate::password::{HashError, Hasher};
use crate::settings::AdminBootstrap;
use crate::store;
use crate::username::{Username, check_password};

/// Accounts and sessions over PostgreSQL.
#[derive(Clone, Debug)]
pub(crate) struct Users {
    pool: PgPool,
    keys: JwtKeys,
    identities: Identities,
    hasher: Hasher,
}

impl Users {
    /// The service over a migrated database.
    pub(crate) fn new(pool: PgPool, keys: JwtKeys, identities: Identities, hasher: Hasher) -> Users {
        Users { pool, keys, identities, hasher }
    }

    /// Creates the configured admin if it does not exist yet, and gives an existing one the
    /// configured password if it has another (rotating `SECKILL_ADMIN__PASSWORD` takes effect at
    /// the next start).
    pub(crate) async fn ensure_admin(&self, admin: &AdminBootstrap) -> anyhow::Result<()> {
        let Some(password) = &admin.password else {
            tracing::info!("no admin password configured (SECKILL_ADMIN__PASSWORD): no admin account ensured");
            return Ok(());
        };
        let username = Username::parse(&admin.username)?;
        let password = password.expose_secret();
        check_password(password)?;
        match store::by_username(&self.pool, username.as_str()).await? {
            None => {
                let hash = self.hasher.hash(password.to_owned()).await?;
                store::insert(&self.pool, &username, &hash, Role::Admin).await?;
                tracing::info!(username = username.as_str(), "admin account created");
            }
            Some(existing) => {
                let current = self.hasher.verify(password.to_owned(), existing.password_hash.clone()).await?;
                if !current || existing.role != Role::Admin.as_str() {
                    let hash = self.hasher.hash(password.to_owned()).await?;
                    store::set_admin_password(&self.pool, existing.id, &hash).await?;
                    tracing::info!(username = username.as_str(), "admin account given the configured password");
                }
            }
        }
        Ok(())
    }

    fn caller(&self) -> Result<Principal, UserError> {
        self.identities.caller().map_err(|err| {
            tracing::warn!(%err, "call refused: no valid identity");
            UserError::Unauthenticated
        })
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

fn hashing(err: HashError) -> UserError {
    match err {
        HashError::Busy => UserError::Busy,
        other => unavailable("hashing", other),
    }
}

impl UserService for Users {
    async fn register(&self, credentials: Credentials) -> Result<UserView, UserError> {
        let username = Username::parse(&credentials.username)?;
        check_password(&credentials.password)?;
        let hash = self.hasher.hash(credentials.password).await.map_err(hashing)?;
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
        let matches = self.hasher.verify(credentials.password, stored).await.map_err(hashing)?;
        let row = row.filter(|_| matches).ok_or(UserError::InvalidCredentials)?;
        let user = row.view();
        let (token, expires_at) = self.issue(Actor { user_id: user.id, role: user.role })?;
        Ok(Session { token, expires_at, user })
    }

    async fn get_user(&self, id: i64) -> Result<UserView, UserError> {
        match self.caller()? {
            Principal::User(actor) if actor.user_id != id && !actor.is_admin() => return Err(UserError::Forbidden),
            _ => {}
        }
        let row = store::by_id(&self.pool, id).await.map_err(|e| unavailable("reading", e))?;
        row.map(|row| row.view()).ok_or(UserError::NotFound)
    }

    async fn bulk_create(&self, request: BulkUsers) -> Result<Vec<IssuedUser>, UserError> {
        self.caller()?.admin().map_err(|_| UserError::Forbidden)?;
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
