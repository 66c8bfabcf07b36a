//! Configuration: built-in defaults for a local machine, overridden by `SECKILL_*` variables.

use std::net::SocketAddr;
use std::time::Duration;

use platform::auth::JwtSettings;
use platform::env::{Environment, InsecureSettings};
use platform::redis::RedisSettings;
use platform::registry::RegistrySettings;
use platform::security::RpcSecurity;
use platform::telemetry::LogFormat;
use serde::Deserialize;

/// What this binary defaults to where the settings type cannot (see
/// [`platform::config::load_with`]): `/metrics` on loopback only.
pub const BINARY_DEFAULTS: &[(&str, &str)] = &[("metrics_listen", "127.0.0.1:9100")];

/// Gateway settings.
#[derive(Clone, Debug, Deserialize)]
#[serde(default)]
pub struct Settings {
    /// Where the process runs (`SECKILL_ENV`): built-in secrets and test mode only in development.
    pub env: Environment,
    /// HTTP listen address of the public API (`SECKILL_LISTEN`).
    pub listen: String,
    /// Where `/metrics` is served for Prometheus (`SECKILL_METRICS_LISTEN`): a separate,
    /// internal address, since the labels name every RPC node. None: not served.
    pub metrics_listen: Option<SocketAddr>,
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
    /// The cluster key and TLS of the RPC (`SECKILL_RPC__KEY`, ...), and the identity tokens the
    /// gateway mints for the users it verified.
    pub rpc: RpcSecurity,
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
    /// Rate limits and the blacklist (`SECKILL_LIMITS__PER_IP_PER_SEC`, ...).
    pub limits: LimitSettings,
    /// Limits on sign-in and registration (`SECKILL_SIGN_IN__PER_IP_PER_MINUTE`, ...).
    pub sign_in: SignInLimits,
    /// How long goods lists and details are served from memory.
    #[serde(with = "humantime_serde")]
    pub goods_cache_ttl: Duration,
    /// Largest request body accepted; larger ones get 413.
    pub body_limit: usize,
    /// Defences turned off, to show what they are for (`loadtest scenario`): each named for what
    /// it turns off, every one on unless set.
    pub without: Without,
}

/// Defences of the purchase path that can be turned off, for demonstrations only
/// (`SECKILL_WITHOUT__...=true`). Off by default, and each is named for what it removes. What
/// an operator may turn off while a sale runs is a live rule instead (`platform::rules`: the
/// sold-out flag is `switches.sold_out_flag_off`).
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(default)]
pub struct Without {
    /// `SECKILL_WITHOUT__CAPTCHA_AND_PATH`: a path is issued without a captcha answer and an order
    /// is accepted without a valid path, so a script can order directly. Development only.
    pub captcha_and_path: bool,
    /// `SECKILL_WITHOUT__SINGLE_FLIGHT`: every request that finds the goods cache expired
    /// reloads it from stock-service (and PostgreSQL), instead of one for all.
    pub single_flight: bool,
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
    /// Anti-brush per client IP: seckill calls per IP per window; 0 turns it off (the default:
    /// many buyers may share one address behind a NAT).
    pub ip_brush_limit: u32,
    /// Anti-brush trips within `strike_window` that put a user (or IP) on the blacklist.
    pub strikes_to_ban: u32,
    /// The window strikes are counted in.
    #[serde(with = "humantime_serde")]
    pub strike_window: Duration,
    /// How long a blacklisted user or IP is refused the seckill routes.
    #[serde(with = "humantime_serde")]
    pub ban: Duration,
}

/// Limits on `register` and `login`, in Redis so every gateway shares them.
#[derive(Clone, Debug, Deserialize)]
#[serde(default)]
pub struct SignInLimits {
    /// Sign-in and registration attempts per client IP per minute.
    pub per_ip_per_minute: u32,
    /// Failed logins of one username within `failure_window` before further tries are refused.
    pub failures_per_username: u32,
    /// The window failures are counted in.
    #[serde(with = "humantime_serde")]
    pub failure_window: Duration,
}

impl Default for SignInLimits {
    fn default() -> Self {
        SignInLimits { per_ip_per_minute: 60, failures_per_username: 10, failure_window: Duration::from_secs(15 * 60) }
    }
}

impl Settings {
    /// Refuses (outside development) the built-in secrets and captcha test mode, naming the
    /// setting to give.
    pub fn check_secrets(&self) -> Result<(), InsecureSettings> {
        let mut policy = platform::env::SecretPolicy::new(self.env);
        self.rpc.check(&mut policy);
        policy.secret("SECKILL_JWT__SECRET", &self.jwt.secret, platform::auth::DEVELOPMENT_SECRET);
        let test_mode = self.captcha.test_answer.as_ref().is_some_and(|answer| !answer.trim().is_empty());
        policy.shortcut(test_mode, "SECKILL_CAPTCHA__TEST_ANSWER turns captchas off (test mode); unset it");
        policy.shortcut(
            self.without.captcha_and_path,
            "SECKILL_WITHOUT__CAPTCHA_AND_PATH lets scripts order without a captcha; unset it",
        );
        policy.enforce()
    }
}

impl Default for Settings {
    fn default() -> Self {
        Settings {
            env: Environment::default(),
            listen: "0.0.0.0:8080".into(),
            metrics_listen: None,
            workers: None,
            log_format: LogFormat::default(),
            registry: RegistrySettings::default(),
            users: rpc::ClusterConfig::default(),
            stock: rpc::ClusterConfig::default(),
            orders: rpc::ClusterConfig::default(),
            rpc: RpcSecurity::default(),
            redis: RedisSettings::default(),
            jwt: JwtSettings::default(),
            captcha: CaptchaSettings::default(),
            path_ttl: Duration::from_secs(60),
            limits: LimitSettings::default(),
            sign_in: SignInLimits::default(),
            goods_cache_ttl: Duration::from_secs(1),
            body_limit: 16 * 1024,
            without: Without::default(),
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
            ip_brush_limit: 0,
            strikes_to_ban: 3,
            strike_window: Duration::from_secs(10 * 60),
            ban: Duration::from_secs(30 * 60),
        }
    }
}
