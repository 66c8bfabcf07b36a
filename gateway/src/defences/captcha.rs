//! Captchas: a PNG per (user, goods); the answer kept in Redis for a while, single use; wrong
//! answers counted and, past a limit, refused.
//!
//! Test mode (`SECKILL_CAPTCHA__TEST_ANSWER`) replaces the answer with a fixed string so load
//! scripts can pass; it exists only when configured, and the gateway says so loudly.

use std::sync::OnceLock;

use captcha::Captcha;
use captcha::filters::Noise;
use contracts::keyspace::Keyspace;
use platform::redis::Shared;
use redis::AsyncCommands;

use crate::settings::CaptchaSettings;

/// Why a captcha was not issued or not accepted.
#[derive(Debug, thiserror::Error)]
pub(crate) enum CaptchaError {
    /// The answer is wrong, or there is no captcha to answer (expired, used).
    #[error("the captcha answer is wrong or expired")]
    Wrong,
    /// Too many wrong answers: no more tries until the window ends.
    #[error("too many wrong captcha answers")]
    TooManyFailures {
        /// Seconds until answers are taken again.
        retry_after_secs: u64,
    },
    /// The image could not be drawn.
    #[error("the captcha could not be drawn")]
    Drawing,
    /// Redis failed.
    #[error("captcha store: {0}")]
    Store(String),
}

fn store(err: impl std::fmt::Display) -> CaptchaError {
    CaptchaError::Store(err.to_string())
}

/// Issues and checks captchas.
#[derive(Clone, Debug)]
pub(crate) struct Captchas {
    redis: Shared,
    keys: Keyspace,
    settings: CaptchaSettings,
}

impl Captchas {
    /// Captchas stored in `redis`.
    pub(crate) fn new(redis: Shared, keys: Keyspace, mut settings: CaptchaSettings) -> Captchas {
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
    pub(crate) fn test_mode(&self) -> bool {
        self.settings.test_answer.is_some()
    }

    /// A new captcha image for `user_id` and `goods_id`; replaces any earlier one.
    pub(crate) async fn issue(&self, user_id: i64, goods_id: i64) -> Result<Vec<u8>, CaptchaError> {
        if self.settings.test_answer.is_some() {
            return test_image().clone().ok_or(CaptchaError::Drawing);
        }
        // Drawing and encoding the PNG is CPU work: off the async threads.
        let drawn = actix_web::web::block(|| {
            Captcha::new().add_chars(5).apply_filter(Noise::new(0.2)).view(200, 80).as_tuple()
        })
        .await
        .map_err(|_| CaptchaError::Drawing)?;
        let (answer, png) = drawn.ok_or(CaptchaError::Drawing)?;
        let mut conn = self.redis.clone();
        let _: () = conn
            .set_ex(self.keys.user(user_id).captcha(goods_id), answer, self.settings.ttl.as_secs())
            .await
            .map_err(store)?;
        Ok(png)
    }

    /// The answer the gate's script checks against the stored one (single use; a wrong one is
    /// counted, and after `max_failures` of them further answers are refused until the TTL
    /// ends: `issue_path.lua`). In test mode the answer is checked here instead: `Ok(None)`.
    pub(crate) fn answer_to_check<'a>(&self, answer: &'a str) -> Result<Option<&'a str>, CaptchaError> {
        match &self.settings.test_answer {
            Some(expected) if answer.trim().eq_ignore_ascii_case(expected) => Ok(None),
            Some(_) => Err(CaptchaError::Wrong),
            None => Ok(Some(answer)),
        }
    }
}

/// The image served in test mode: drawn once.
fn test_image() -> &'static Option<Vec<u8>> {
    static IMAGE: OnceLock<Option<Vec<u8>>> = OnceLock::new();
    IMAGE.get_or_init(|| Captcha::new().add_chars(4).view(200, 80).as_png())
}
