//! Captchas: a PNG per (user, goods); the answer kept in Redis for a while, single use; wrong
//! answers counted and, past a limit, refused.
//!
//! Test mode (`SECKILL_CAPTCHA__TEST_ANSWER`) replaces the answer with a fixed string so load
//! scripts can pass; it exists only when configured, and the gateway says so loudly.

use std::sync::OnceLock;

use captcha::Captcha;
use captcha::filters::Noise;
use deadpool_redis::Pool;
use deadpool_redis::redis::{self, AsyncCommands};

use crate::keys::Keys;
use crate::problem::Problem;
use crate::settings::CaptchaSettings;

/// Issues and checks captchas.
#[derive(Clone, Debug)]
pub struct Captchas {
    redis: Pool,
    keys: Keys,
    settings: CaptchaSettings,
}

impl Captchas {
    /// Captchas stored in `redis`.
    pub fn new(redis: Pool, keys: Keys, mut settings: CaptchaSettings) -> Captchas {
        // An empty answer means "unset": `SECKILL_CAPTCHA__TEST_ANSWER=` turns test mode off.
        settings.test_answer = settings.test_answer.filter(|answer| !answer.trim().is_empty());
        if settings.test_answer.is_some() {
            tracing::warn!(
                "CAPTCHA TEST MODE IS ON: every captcha accepts a fixed answer. Never run this in production."
            );
        }
        Captchas { redis, keys, settings }
    }

    /// Whether test mode is on.
    pub fn test_mode(&self) -> bool {
        self.settings.test_answer.is_some()
    }

    /// A new captcha image for `user_id` and `goods_id`; replaces any earlier one.
    pub async fn issue(&self, user_id: i64, goods_id: i64) -> Result<Vec<u8>, Problem> {
        if self.settings.test_answer.is_some() {
            return test_image().clone().ok_or_else(Problem::internal);
        }
        // Drawing and encoding the PNG is CPU work: off the async threads.
        let drawn = actix_web::web::block(|| {
            Captcha::new().add_chars(5).apply_filter(Noise::new(0.2)).view(200, 80).as_tuple()
        })
        .await
        .map_err(|_| Problem::internal())?;
        let (answer, png) = drawn.ok_or_else(Problem::internal)?;
        let mut conn = self.redis.get().await.map_err(unavailable)?;
        let _: () = conn
            .set_ex(self.keys.captcha(user_id, goods_id), answer, self.settings.ttl.as_secs())
            .await
            .map_err(unavailable)?;
        Ok(png)
    }

    /// Checks an answer. The stored answer is consumed either way (single use); a wrong one is
    /// counted, and after `max_failures` of them further answers are refused until the TTL ends.
    pub async fn check(&self, user_id: i64, goods_id: i64, answer: &str) -> Result<(), Problem> {
        if let Some(expected) = &self.settings.test_answer {
            return if answer.trim().eq_ignore_ascii_case(expected) { Ok(()) } else { Err(Problem::bad_captcha()) };
        }
        let failures_key = self.keys.captcha_failures(user_id, goods_id);
        let mut conn = self.redis.get().await.map_err(unavailable)?;
        let failures: Option<u32> = conn.get(&failures_key).await.map_err(unavailable)?;
        if failures.unwrap_or(0) >= self.settings.max_failures {
            return Err(Problem::rate_limited(self.settings.ttl.as_secs()));
        }
        let expected: Option<String> = redis::cmd("GETDEL")
            .arg(self.keys.captcha(user_id, goods_id))
            .query_async(&mut *conn)
            .await
            .map_err(unavailable)?;
        match expected {
            Some(expected) if expected.eq_ignore_ascii_case(answer.trim()) => Ok(()),
            _ => {
                let _: () = redis::pipe()
                    .incr(&failures_key, 1)
                    .ignore()
                    .expire(&failures_key, self.settings.ttl.as_secs() as i64)
                    .ignore()
                    .query_async(&mut *conn)
                    .await
                    .map_err(unavailable)?;
                Err(Problem::bad_captcha())
            }
        }
    }
}

/// The image served in test mode: drawn once.
fn test_image() -> &'static Option<Vec<u8>> {
    static IMAGE: OnceLock<Option<Vec<u8>>> = OnceLock::new();
    IMAGE.get_or_init(|| Captcha::new().add_chars(4).view(200, 80).as_png())
}

fn unavailable(err: impl std::fmt::Display) -> Problem {
    tracing::warn!(%err, "redis failed");
    Problem::unavailable("token store unavailable")
}
