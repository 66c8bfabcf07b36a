//! The drills' own world: a private PostgreSQL, Redis and RabbitMQ (testkit::private), and the
//! Seckill stack on them, started by `scripts/dev-up` in a state directory and port range of
//! its own (`var/drill/stack`, every port + 20000), so a developer's stack keeps running.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::Context;
use testkit::private::{PrivatePostgres, PrivateRabbitMq, PrivateRedis};

/// Where the drill stack keeps its pids and logs (`DEV_UP_STATE_DIR`).
pub const STATE_DIR: &str = "var/drill/stack";
/// How far the drill stack's ports are from stack.conf's (`DEV_UP_PORT_OFFSET`).
pub const PORT_OFFSET: u16 = 20_000;

/// The running world.
pub struct Env {
    pub postgres: PrivatePostgres,
    pub redis: PrivateRedis,
    pub rabbitmq: PrivateRabbitMq,
    replicas: usize,
    log: PathBuf,
}

/// One process of the stack, as dev-up's instances file lists it.
#[derive(Clone, Debug)]
pub struct Instance {
    pub name: String,
    pub program: String,
    offset: u16,
}

impl Env {
    /// Starts the infrastructure, then the stack (`replicas` of each scaled program; two
    /// gateways behind HAProxy when more than one), and waits until the gateway is ready.
    pub fn start(replicas: usize, redis_aof: bool, build: bool) -> anyhow::Result<Env> {
        std::fs::create_dir_all(STATE_DIR)?;
        let log = PathBuf::from("var/drill/dev-up.log");
        // A stack left by an interrupted drill points at infrastructure that is gone.
        let env = |command: &mut Command| {
            command.env("DEV_UP_STATE_DIR", STATE_DIR).env("DEV_UP_PORT_OFFSET", PORT_OFFSET.to_string());
        };
        let mut down = Command::new("scripts/dev-down");
        env(&mut down);
        run_logged(&mut down, &log).context("stopping a drill stack left running")?;

        eprintln!("starting a private PostgreSQL, Redis and RabbitMQ...");
        let postgres = PrivatePostgres::start().context("a private PostgreSQL")?;
        let redis = if redis_aof {
            PrivateRedis::start_with(&["--save", "", "--appendonly", "yes", "--appendfsync", "everysec"])
        } else {
            PrivateRedis::start()
        };
        let rabbitmq = PrivateRabbitMq::start().context("a private RabbitMQ")?;
        // As compose's rabbitmq-policy service sets it.
        rabbitmq.ctl(&[
            "set_policy",
            "seckill-orders",
            r"^seckill\.orders\.create$",
            r#"{"delivery-limit": 20}"#,
            "--apply-to",
            "queues",
        ])?;
        let env = Env { postgres, redis, rabbitmq, replicas, log };
        eprintln!("starting the stack ({} replicas; dev-up's output in {})...", replicas, env.log.display());
        if let Err(err) = env.dev_up(build) {
            env.stop();
            return Err(err);
        }
        Ok(env)
    }

    /// The base URL buyers use: HAProxy's with replicas, the gateway's otherwise.
    pub fn gateway_url(&self) -> String {
        format!("http://127.0.0.1:{}", 8080 + PORT_OFFSET)
    }

    /// `scripts/dev-up`: starts every instance that is not running, waits for the gateway.
    pub fn dev_up(&self, build: bool) -> anyhow::Result<()> {
        let mut command = Command::new("scripts/dev-up");
        command.args(["--replicas", &self.replicas.to_string()]);
        if !build {
            command.arg("--no-build");
        }
        self.stack_env(&mut command);
        run_logged(&mut command, &self.log).context("scripts/dev-up")
    }

    /// Restarts whatever of the stack is not running, from the build it started with.
    pub fn heal(&self) -> anyhow::Result<()> {
        self.dev_up(false)
    }

    /// The stack's instances (dev-up's instances file).
    pub fn instances(&self) -> anyhow::Result<Vec<Instance>> {
        let file = Path::new(STATE_DIR).join("run/instances");
        let text = std::fs::read_to_string(&file).with_context(|| format!("reading {}", file.display()))?;
        text.lines()
            .map(|line| {
                let mut fields = line.split_whitespace();
                let (Some(name), Some(program), Some(offset)) = (fields.next(), fields.next(), fields.next()) else {
                    anyhow::bail!("{}: bad line {line:?}", file.display());
                };
                Ok(Instance { name: name.into(), program: program.into(), offset: offset.parse()? })
            })
            .collect()
    }

    /// The instance named `name`.
    pub fn instance(&self, name: &str) -> anyhow::Result<Instance> {
        self.instances()?.into_iter().find(|i| i.name == name).with_context(|| format!("no instance {name}"))
    }

    /// Stops the stack (the infrastructure goes when the Env is dropped).
    pub fn stop(&self) {
        let mut command = Command::new("scripts/dev-down");
        self.stack_env(&mut command);
        if let Err(err) = run_logged(&mut command, &self.log) {
            eprintln!("warning: scripts/dev-down: {err:#}");
        }
    }

    fn stack_env(&self, command: &mut Command) {
        let redis = self.redis.url();
        command
            .env("DEV_UP_STATE_DIR", STATE_DIR)
            .env("DEV_UP_PORT_OFFSET", PORT_OFFSET.to_string())
            .env("DEV_UP_SERVICES", "external")
            .env("SECKILL_DATABASE_URL", self.postgres.url("seckill"))
            .env("SECKILL_REDIS_URL", &redis)
            .env("SECKILL_REGISTRY__URL", &redis)
            .env("SECKILL_BROKER__URL", self.rabbitmq.url());
    }
}

impl Instance {
    /// Its process id, if it runs: the pid file dev-up wrote, checked against the program's
    /// name (a stale file's pid may belong to another process by now).
    pub fn pid(&self) -> Option<u32> {
        let pid: u32 = std::fs::read_to_string(Path::new(STATE_DIR).join(format!("run/{}.pid", self.name)))
            .ok()?
            .trim()
            .parse()
            .ok()?;
        let comm = std::fs::read_to_string(format!("/proc/{pid}/comm")).ok()?;
        let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
        let zombie = stat.rsplit_once(") ").is_some_and(|(_, rest)| rest.starts_with('Z'));
        let expected: String = self.program.chars().take(15).collect();
        (comm.trim() == expected && !zombie).then_some(pid)
    }

    /// SIGKILL.
    pub fn kill(&self) -> anyhow::Result<u32> {
        let pid = self.pid().with_context(|| format!("{} is not running", self.name))?;
        let status = Command::new("kill").arg("-KILL").arg(pid.to_string()).status()?;
        anyhow::ensure!(status.success(), "kill -KILL {pid} failed");
        Ok(pid)
    }

    /// The port that answers when it is up: the gateway's (and HAProxy's) public one, every
    /// other program's metrics listener.
    pub fn port(&self) -> anyhow::Result<u16> {
        let key = if matches!(self.program.as_str(), "gateway" | "haproxy") {
            "SECKILL_LISTEN"
        } else {
            "SECKILL_METRICS_LISTEN"
        };
        let program = if self.program == "haproxy" { "gateway" } else { &self.program };
        let conf = stack_conf()?;
        let listen = conf
            .get(program)
            .and_then(|settings| settings.get(key))
            .with_context(|| format!("stack.conf has no {key} for {program}"))?;
        let port: u16 = listen.rsplit(':').next().unwrap_or_default().parse()?;
        Ok(port + self.offset)
    }

    /// Waits (up to `limit`) until it answers: its port accepts a connection and, for a
    /// gateway, /readyz says ready.
    pub async fn wait_up(&self, limit: Duration) -> anyhow::Result<Instant> {
        let port = self.port()?;
        let until = Instant::now() + limit;
        let client = reqwest::Client::builder().timeout(Duration::from_secs(1)).build()?;
        loop {
            let up = if self.program == "gateway" {
                client.get(format!("http://127.0.0.1:{port}/readyz")).send().await.is_ok_and(|r| r.status() == 200)
            } else {
                tokio::net::TcpStream::connect(("127.0.0.1", port)).await.is_ok()
            };
            if up {
                return Ok(Instant::now());
            }
            anyhow::ensure!(Instant::now() < until, "{} did not come back within {limit:?}", self.name);
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
}

/// scripts/stack.conf: program → its settings.
fn stack_conf() -> anyhow::Result<BTreeMap<String, BTreeMap<String, String>>> {
    let text = std::fs::read_to_string("scripts/stack.conf").context("reading scripts/stack.conf")?;
    let mut conf: BTreeMap<String, BTreeMap<String, String>> = BTreeMap::new();
    let mut section = None;
    for line in text.lines() {
        if let Some(name) = line.strip_prefix('[').and_then(|l| l.strip_suffix(']')) {
            section = Some(name.to_owned());
        } else if let (Some(section), Some((key, value))) = (&section, line.split_once('=')) {
            if key.starts_with("SECKILL_") {
                conf.entry(section.clone()).or_default().insert(key.into(), value.into());
            }
        }
    }
    Ok(conf)
}

/// Runs `command`, its output appended to `log`; fails with the log's tail if it fails.
fn run_logged(command: &mut Command, log: &Path) -> anyhow::Result<()> {
    let file = std::fs::OpenOptions::new().create(true).append(true).open(log)?;
    let status = command.stdin(Stdio::null()).stdout(file.try_clone()?).stderr(file).status()?;
    if !status.success() {
        let text = std::fs::read_to_string(log).unwrap_or_default();
        let tail: Vec<&str> = text.lines().rev().take(20).collect();
        anyhow::bail!(
            "{status}; the end of {}:\n{}",
            log.display(),
            tail.into_iter().rev().collect::<Vec<_>>().join("\n")
        );
    }
    Ok(())
}
