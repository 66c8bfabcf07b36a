//! JWTs: issued by user-service, verified by the gateway on every request (no RPC).
//!
//! HS256 only: the algorithm is pinned on verification, so a token claiming `none` or another
//! algorithm is rejected, as is a bad signature, an expired token or one from another issuer.

use std::time::Duration;

use chrono::{DateTime, Utc};
use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header, Validation};
use secrecy::{ExposeSecret, SecretString};
use serde::{Deserialize, Serialize};

use contracts::{Actor, Role};

/// JWT settings, shared by user-service (issuing) and the gateway (verifying).
#[derive(Clone, Debug, Deserialize)]
#[serde(default)]
pub struct JwtSettings {
    /// HMAC secret. The default is for local development only; set `SECKILL_JWT__SECRET`.
    pub secret: SecretString,
    /// `iss` claim issued and required.
    pub issuer: String,
    /// How long a token is valid.
    #[serde(with = "humantime_serde")]
    pub lifetime: Duration,
}

/// The development secret, refused outside development (see [`crate::env`]).
pub const DEVELOPMENT_SECRET: &str = "seckill-development-secret-change-me";

impl Default for JwtSettings {
    fn default() -> Self {
        JwtSettings {
            secret: SecretString::from(DEVELOPMENT_SECRET),
            issuer: "seckill".into(),
            lifetime: Duration::from_secs(2 * 60 * 60),
        }
    }
}

/// The claims of our tokens.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Claims {
    /// The user id, as a string (RFC 7519).
    pub sub: String,
    /// The user's role.
    pub role: Role,
    /// Issuer.
    pub iss: String,
    /// Issued at (seconds since the epoch).
    pub iat: i64,
    /// Expiry (seconds since the epoch).
    pub exp: i64,
}

/// Why a token was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AuthError {
    /// Expired.
    #[error("token expired")]
    Expired,
    /// Anything else: malformed, wrong algorithm, bad signature, wrong issuer, bad subject.
    #[error("invalid token: {0}")]
    Invalid(String),
}

/// Keys and rules for issuing and verifying tokens.
#[derive(Clone)]
pub struct JwtKeys {
    encoding: EncodingKey,
    decoding: DecodingKey,
    validation: Validation,
    issuer: String,
    lifetime: Duration,
}

impl std::fmt::Debug for JwtKeys {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("JwtKeys")
            .field("issuer", &self.issuer)
            .field("lifetime", &self.lifetime)
            .finish_non_exhaustive()
    }
}

impl JwtKeys {
    /// Keys from settings.
    pub fn new(settings: &JwtSettings) -> JwtKeys {
        let secret = settings.secret.expose_secret().as_bytes();
        let mut validation = Validation::new(Algorithm::HS256);
        validation.set_issuer(&[settings.issuer.as_str()]);
        validation.set_required_spec_claims(&["exp", "iss", "sub"]);
        validation.leeway = 5;
        JwtKeys {
            encoding: EncodingKey::from_secret(secret),
            decoding: DecodingKey::from_secret(secret),
            validation,
            issuer: settings.issuer.clone(),
            lifetime: settings.lifetime,
        }
    }

    /// Issues a token for `actor`; returns it and its expiry.
    pub fn issue(&self, actor: Actor) -> Result<(String, DateTime<Utc>), AuthError> {
        let now = Utc::now();
        let expires_at = now + self.lifetime;
        let claims = Claims {
            sub: actor.user_id.to_string(),
            role: actor.role,
            iss: self.issuer.clone(),
            iat: now.timestamp(),
            exp: expires_at.timestamp(),
        };
        let token = jsonwebtoken::encode(&Header::new(Algorithm::HS256), &claims, &self.encoding)
            .map_err(|err| AuthError::Invalid(err.to_string()))?;
        Ok((token, expires_at))
    }

    /// Verifies a token (algorithm, signature, expiry, issuer) and returns who it is for.
    pub fn verify(&self, token: &str) -> Result<Actor, AuthError> {
        let data = jsonwebtoken::decode::<Claims>(token, &self.decoding, &self.validation).map_err(|err| match err
            .kind()
        {
            jsonwebtoken::errors::ErrorKind::ExpiredSignature => AuthError::Expired,
            _ => AuthError::Invalid(err.to_string()),
        })?;
        let user_id = data.claims.sub.parse().map_err(|_| AuthError::Invalid("subject is not a user id".into()))?;
        Ok(Actor { user_id, role: data.claims.role })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn keys(secret: &str) -> JwtKeys {
        JwtKeys::new(&JwtSettings { secret: SecretString::from(secret), ..Default::default() })
    }

    fn forge(header: &str, claims: &Claims, signature: &str) -> String {
        use base64::Engine;
        let b64 = base64::engine::general_purpose::URL_SAFE_NO_PAD;
        format!("{}.{}.{}", b64.encode(header), b64.encode(serde_json::to_vec(claims).unwrap()), signature)
    }

    fn claims(exp_offset: i64) -> Claims {
        let now = Utc::now().timestamp();
        Claims { sub: "7".into(), role: Role::Admin, iss: "seckill".into(), iat: now, exp: now + exp_offset }
    }

    #[test]
    fn issued_tokens_verify() {
        let keys = keys("k1");
        let actor = Actor { user_id: 42, role: Role::User };
        let (token, _) = keys.issue(actor).unwrap();
        assert_eq!(keys.verify(&token), Ok(actor));
    }

    #[test]
    fn a_token_signed_with_another_key_is_refused() {
        let (token, _) = keys("k1").issue(Actor { user_id: 1, role: Role::Admin }).unwrap();
        assert!(matches!(keys("k2").verify(&token), Err(AuthError::Invalid(_))));
    }

    #[test]
    fn alg_none_is_refused() {
        let token = forge(r#"{"alg":"none","typ":"JWT"}"#, &claims(3600), "");
        assert!(matches!(keys("k1").verify(&token), Err(AuthError::Invalid(_))));
    }

    #[test]
    fn expired_tokens_are_refused() {
        let token =
            jsonwebtoken::encode(&Header::new(Algorithm::HS256), &claims(-3600), &EncodingKey::from_secret(b"k1"))
                .unwrap();
        assert_eq!(keys("k1").verify(&token), Err(AuthError::Expired));
    }

    #[test]
    fn another_issuer_is_refused() {
        let mut foreign = claims(3600);
        foreign.iss = "someone-else".into();
        let token =
            jsonwebtoken::encode(&Header::new(Algorithm::HS256), &foreign, &EncodingKey::from_secret(b"k1")).unwrap();
        assert!(matches!(keys("k1").verify(&token), Err(AuthError::Invalid(_))));
    }

    #[test]
    fn another_algorithm_with_the_right_secret_is_refused() {
        let token =
            jsonwebtoken::encode(&Header::new(Algorithm::HS512), &claims(3600), &EncodingKey::from_secret(b"k1"))
                .unwrap();
        assert!(matches!(keys("k1").verify(&token), Err(AuthError::Invalid(_))));
    }
}
