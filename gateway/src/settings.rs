//! Configuration: built-in defaults for a local machine, overridden by `SECKILL_*` variables.

use std::time::Duration;

use platform::auth::JwtSettings;
use platform::redis::RedisSettings;
use platform::registry::RegistrySettings;
use platform::telemetry::LogFormat;
use serde::Deserialize;

/// Gateway settings.
#[derive(Clone, Debug, Deserialize)]
#[serde(default)]
pub struct Settings {
    /// HTTP listen address (`SECKILL_LISTEN`).
    pub listen: String,
    /// actix-web worker threads; one per core when unset.
    pub workers: Option<usize>,
    /// Log output format.
    pub log_format: LogFormat,
    /// Where the services are found (`SECKILL_REGISTRY__*`).
    pub registry: RegistrySettings,
    /// Calls to user-service (`SECKILL_USERS__BALANCER`, ...).
    pub users: rpc::ClusterConfig,
    /// Calls to stock-service.
    pub stock: rpc::ClusterConfig,
    /// Calls to order-service.
    pub orders: rpc::ClusterConfig,
    /// Redis for tokens, captcha answers, rate limits (`SECKILL_REDIS_URL`, `SECKILL_REDIS_PREFIX`:
    /// the services' prefix).
    #[serde(flatten)]
    pub redis: RedisSettings,
    /// JWT verification (`SECKILL_JWT__SECRET` must equal user-service's).
    pub jwt: JwtSettings,
    /// Captcha settings (`SECKILL_CAPTCHA__TEST_ANSWER`, ...).
    pub captcha: CaptchaSettings,
    /// Lifetime of a hidden seckill path.
    #[serde(with = "humantime_serde")]
    pub path_ttl: Duration,
    /// Rate limits (`SECKILL_LIMITS__PER_IP_PER_SEC`, ...).
    pub limits: LimitSettings,
    /// How long goods lists and details are served from memory.
    #[serde(with = "humantime_serde")]
    pub goods_cache_ttl: Duration,
    /// Largest request body accepted; larger ones get 413.
    pub body_limit: usize,
}

/// Captcha settings.
#[derive(Clone, Debug, Deserialize)]
#[serde(default)]
pub struct CaptchaSettings {
    /// FOR LOAD TESTS ONLY: when set, every captcha's answer is this string. The gateway warns at
    /// start and reports it on /healthz.
    pub test_answer: Option<String>,
    /// How long an answer stays valid.
    #[serde(with = "humantime_serde")]
    pub ttl: Duration,
    /// Wrong answers per user and goods within `ttl` before further attempts are refused.
    pub max_failures: u32,
}

/// Rate limits. Local limits (governor, in this process) stop floods before any I/O; the
/// per-user bucket (Redis, one Lua script) holds across every gateway instance.
#[derive(Clone, Debug, Deserialize)]
#[serde(default)]
pub struct LimitSettings {
    /// Requests per second this gateway accepts in total.
    pub global_per_sec: u32,
    /// Requests per second accepted from one client IP.
    pub per_ip_per_sec: u32,
    /// Sustained seckill calls per second per user (token bucket rate).
    pub per_user_per_sec: u32,
    /// Seckill calls a user may burst (token bucket size).
    pub per_user_burst: u32,
    /// Anti-brush: seckill calls per user per window.
    pub brush_limit: u32,
    /// Anti-brush window.
    #[serde(with = "humantime_serde")]
    pub brush_window: Duration,
}

impl Default for Settings {
    fn default() -> Self {
        Settings {
            listen: "0.0.0.0:8080".into(),
            workers: None,
            log_format: LogFormat::default(),
            registry: RegistrySettings::default(),
            users: rpc::ClusterConfig::default(),
            stock: rpc::ClusterConfig::default(),
            orders: rpc::ClusterConfig::default(),
            redis: RedisSettings::default(),
            jwt: JwtSettings::default(),
            captcha: CaptchaSettings::default(),
            path_ttl: Duration::from_secs(60),
            limits: LimitSettings::default(),
            goods_cache_ttl: Duration::from_secs(1),
            body_limit: 16 * 1024,
        }
    }
}

impl Default for CaptchaSettings {
    fn default() -> Self {
        CaptchaSettings { test_answer: None, ttl: Duration::from_secs(300), max_failures: 5 }
    }
}

impl Default for LimitSettings {
    fn default() -> Self {
        LimitSettings {
            global_per_sec: 200_000,
            per_ip_per_sec: 50_000,
            per_user_per_sec: 2,
            per_user_burst: 5,
            brush_limit: 5,
            brush_window: Duration::from_secs(5),
        }
    }
}
