//! Infrastructure of a test's (or a drill's) own: a `redis-server`, a PostgreSQL server and a
//! RabbitMQ node on private ports and data directories, which it may kill and restart without
//! touching the machine's shared ones. Only the processes it started are ever signalled, by pid.
//!
//! PostgreSQL runs as the `postgres` user and RabbitMQ as `rabbitmq` (their directories are
//! theirs) when this runs as root, as the current user otherwise.

use std::io;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// A private `redis-server`.
pub struct PrivateRedis {
    port: u16,
    dir: PathBuf,
    args: Vec<String>,
    child: Option<Child>,
}

impl PrivateRedis {
    /// Starts one on a free port, keeping nothing on disk.
    pub fn start() -> PrivateRedis {
        PrivateRedis::start_with(&["--save", "", "--appendonly", "no"])
    }

    /// Starts one with `args` (persistence, a password, ...); its files go in a fresh temporary
    /// directory.
    pub fn start_with(args: &[&str]) -> PrivateRedis {
        let port = free_port();
        let dir = std::env::temp_dir().join(format!("seckill-redis-{}", crate::unique_name()));
        std::fs::create_dir_all(&dir).expect("a directory for the private Redis");
        let mut redis = PrivateRedis { port, dir, args: args.iter().map(|arg| arg.to_string()).collect(), child: None };
        redis.restart();
        redis
    }

    /// Its port.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// Its URL.
    pub fn url(&self) -> String {
        format!("redis://127.0.0.1:{}", self.port)
    }

    /// The process id, while it runs.
    pub fn pid(&self) -> Option<u32> {
        self.child.as_ref().map(Child::id)
    }

    /// Starts it again (after [`PrivateRedis::kill`]), on the same port and directory.
    pub fn restart(&mut self) {
        let child = Command::new("redis-server")
            .args(["--port", &self.port.to_string(), "--bind", "127.0.0.1"])
            .arg("--dir")
            .arg(&self.dir)
            .args(&self.args)
            .stdout(Stdio::null())
            .spawn()
            .expect("redis-server is installed");
        self.child = Some(child);
        let until = Instant::now() + Duration::from_secs(10);
        while std::net::TcpStream::connect(("127.0.0.1", self.port)).is_err() {
            assert!(Instant::now() < until, "redis-server did not start");
            std::thread::sleep(Duration::from_millis(20));
        }
        // Whatever answers must be our child, not another process that took the port meanwhile.
        let exited = self.child.as_mut().map(|child| child.try_wait());
        assert!(matches!(exited, Some(Ok(None))), "redis-server exited: {exited:?}");
    }

    /// SIGKILL, as a crash would.
    pub fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

impl Drop for PrivateRedis {
    fn drop(&mut self) {
        self.kill();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// A private Redis Cluster: `primaries` `redis-server --cluster-enabled yes` on free ports, their
/// 16,384 slots shared out by `redis-cli --cluster create` (no replicas), nothing kept on disk.
pub struct PrivateRedisCluster {
    nodes: Vec<PrivateRedis>,
}

impl PrivateRedisCluster {
    /// Starts the nodes and creates the cluster; returns once every node says `cluster_state:ok`.
    pub fn start(primaries: usize) -> PrivateRedisCluster {
        let args =
            ["--cluster-enabled", "yes", "--cluster-config-file", "nodes.conf", "--save", "", "--appendonly", "no"];
        let nodes: Vec<PrivateRedis> = (0..primaries).map(|_| PrivateRedis::start_with(&args)).collect();
        let addresses: Vec<String> = nodes.iter().map(|node| format!("127.0.0.1:{}", node.port())).collect();
        let created = Command::new("redis-cli")
            .args(["--cluster", "create"])
            .args(&addresses)
            .args(["--cluster-replicas", "0", "--cluster-yes"])
            .output()
            .expect("redis-cli is installed");
        assert!(created.status.success(), "redis-cli --cluster create: {}", String::from_utf8_lossy(&created.stdout));
        let cluster = PrivateRedisCluster { nodes };
        let until = Instant::now() + Duration::from_secs(30);
        while !cluster.nodes.iter().all(|node| cluster_info(node.port()).contains("cluster_state:ok")) {
            assert!(Instant::now() < until, "the private Redis Cluster did not become ok");
            std::thread::sleep(Duration::from_millis(100));
        }
        cluster
    }

    /// The nodes' ports.
    pub fn ports(&self) -> Vec<u16> {
        self.nodes.iter().map(PrivateRedis::port).collect()
    }

    /// The nodes' URLs.
    pub fn urls(&self) -> Vec<String> {
        self.nodes.iter().map(PrivateRedis::url).collect()
    }

    /// The process ids of the nodes running.
    pub fn pids(&self) -> Vec<u32> {
        self.nodes.iter().filter_map(PrivateRedis::pid).collect()
    }
}

fn cluster_info(port: u16) -> String {
    Command::new("redis-cli")
        .args(["-p", &port.to_string(), "cluster", "info"])
        .output()
        .map(|out| String::from_utf8_lossy(&out.stdout).into_owned())
        .unwrap_or_default()
}

/// A TCP port nobody listens on right now.
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0").expect("bind").local_addr().expect("addr").port()
}

/// A private PostgreSQL server: its own `initdb` cluster, data directory and port.
pub struct PrivatePostgres {
    port: u16,
    dir: PathBuf,
    bin: PathBuf,
}

impl PrivatePostgres {
    /// Creates a cluster in a fresh temporary directory and starts it on a free port.
    pub fn start() -> io::Result<PrivatePostgres> {
        let bin = postgres_bin_dir()?;
        let dir = std::env::temp_dir().join(format!("seckill-postgres-{}", crate::unique_name()));
        std::fs::create_dir_all(&dir)?;
        give_to("postgres", &dir)?;
        let postgres = PrivatePostgres { port: free_port(), dir, bin };
        let data = postgres.data_dir();
        run(postgres
            .command("initdb")
            .args(["--username=postgres", "--auth=trust", "--encoding=UTF8", "--no-sync", "-D"])
            .arg(&data))?;
        postgres.restart()?;
        Ok(postgres)
    }

    /// Its port.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// The URL of database `name` on it, as the superuser `postgres`.
    pub fn url(&self, name: &str) -> String {
        format!("postgres://postgres@127.0.0.1:{}/{name}", self.port)
    }

    /// The postmaster's process id, while it runs.
    pub fn pid(&self) -> Option<u32> {
        let pid_file = std::fs::read_to_string(self.data_dir().join("postmaster.pid")).ok()?;
        let pid = pid_file.lines().next()?.trim().parse().ok()?;
        process_alive(pid).then_some(pid)
    }

    /// Starts it (again, after [`PrivatePostgres::kill`]) on the same port and data directory,
    /// and waits until it accepts connections. After a kill the old server processes may take
    /// a moment to go: the start is retried until then.
    pub fn restart(&self) -> io::Result<()> {
        let options =
            format!("-p {} -c listen_addresses=127.0.0.1 -k {} -c max_connections=400", self.port, self.dir.display());
        let until = Instant::now() + Duration::from_secs(30);
        loop {
            let started = run(self
                .command("pg_ctl")
                .args(["-w", "-t", "30", "-o", &options, "-l"])
                .arg(self.dir.join("postgres.log"))
                .arg("-D")
                .arg(self.data_dir())
                .arg("start"));
            match started {
                Ok(()) => return Ok(()),
                Err(err) if Instant::now() >= until => return Err(err),
                Err(_) => std::thread::sleep(Duration::from_millis(500)),
            }
        }
    }

    /// SIGKILL to the postmaster and every server process under it, as a crash of the
    /// database server would.
    pub fn kill(&self) {
        if let Some(pid) = self.pid() {
            signal_tree(pid, "KILL");
            wait_closed(self.port);
        }
    }

    /// Its log file.
    pub fn log(&self) -> PathBuf {
        self.dir.join("postgres.log")
    }

    fn data_dir(&self) -> PathBuf {
        self.dir.join("data")
    }

    /// `program` of PostgreSQL's bin directory, run as the `postgres` user when this is root.
    fn command(&self, program: &str) -> Command {
        as_user("postgres", &self.bin.join(program))
    }
}

impl Drop for PrivatePostgres {
    fn drop(&mut self) {
        if self.pid().is_some() {
            let stop = self.command("pg_ctl").args(["-m", "immediate", "-D"]).arg(self.data_dir()).arg("stop").output();
            if !matches!(stop, Ok(output) if output.status.success()) {
                self.kill();
            }
        }
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// A private RabbitMQ node: its own node name, ports, database and logs, next to the machine's
/// node (they share only the local epmd and the Erlang cookie).
pub struct PrivateRabbitMq {
    port: u16,
    node: String,
    dir: PathBuf,
    child: Option<Child>,
}

impl PrivateRabbitMq {
    /// Starts a fresh node on free ports and waits until it accepts AMQP connections.
    pub fn start() -> io::Result<PrivateRabbitMq> {
        let name = crate::unique_name();
        let dir = std::env::temp_dir().join(format!("seckill-rabbitmq-{name}"));
        for sub in ["mnesia", "log"] {
            std::fs::create_dir_all(dir.join(sub))?;
        }
        let port = free_port();
        // The machine's rabbitmq.conf pins the listener to 5672: this node has a file of its own.
        std::fs::write(dir.join("rabbitmq.conf"), format!("listeners.tcp.local = 127.0.0.1:{port}\n"))?;
        std::fs::write(dir.join("enabled_plugins"), "[].\n")?;
        give_to("rabbitmq", &dir)?;
        let mut rabbitmq = PrivateRabbitMq { port, node: format!("seckill-{name}@localhost"), dir, child: None };
        rabbitmq.restart()?;
        Ok(rabbitmq)
    }

    /// Its AMQP port.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// Its AMQP URL (the default `guest` user, which may connect from loopback).
    pub fn url(&self) -> String {
        format!("amqp://guest:guest@127.0.0.1:{}/%2f", self.port)
    }

    /// The Erlang VM's process id, while it runs.
    pub fn pid(&self) -> Option<u32> {
        let pid = std::fs::read_to_string(self.dir.join("rabbitmq.pid")).ok()?.trim().parse().ok()?;
        process_alive(pid).then_some(pid)
    }

    /// Starts the node (again, after [`PrivateRabbitMq::kill`]) with the same name, ports and
    /// database, and waits until it accepts AMQP connections (up to 90 s: a node boots slowly).
    pub fn restart(&mut self) -> io::Result<()> {
        let dist_port = free_port();
        let log = std::fs::OpenOptions::new().create(true).append(true).open(self.dir.join("log/startup.log"))?;
        let child = as_user("rabbitmq", Path::new("/usr/lib/rabbitmq/bin/rabbitmq-server"))
            .env("HOME", "/var/lib/rabbitmq")
            .env("RABBITMQ_NODENAME", &self.node)
            .env("RABBITMQ_NODE_PORT", self.port.to_string())
            .env("RABBITMQ_DIST_PORT", dist_port.to_string())
            .env("RABBITMQ_MNESIA_BASE", self.dir.join("mnesia"))
            .env("RABBITMQ_LOG_BASE", self.dir.join("log"))
            .env("RABBITMQ_PID_FILE", self.dir.join("rabbitmq.pid"))
            .env("RABBITMQ_CONFIG_FILE", self.dir.join("rabbitmq.conf"))
            .env("RABBITMQ_ENABLED_PLUGINS_FILE", self.dir.join("enabled_plugins"))
            .stdin(Stdio::null())
            .stdout(log.try_clone()?)
            .stderr(log)
            .spawn()?;
        self.child = Some(child);
        let until = Instant::now() + Duration::from_secs(90);
        while std::net::TcpStream::connect(("127.0.0.1", self.port)).is_err() {
            if let Some(Ok(Some(status))) = self.child.as_mut().map(Child::try_wait) {
                return Err(io::Error::other(format!(
                    "rabbitmq-server exited ({status}); see {}",
                    self.dir.join("log").display()
                )));
            }
            if Instant::now() >= until {
                return Err(io::Error::other("RabbitMQ did not open its AMQP port within 90 s"));
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        Ok(())
    }

    /// `rabbitmqctl ARGS` against this node (a policy, a queue listing, ...).
    pub fn ctl(&self, args: &[&str]) -> io::Result<String> {
        let output = as_user("rabbitmq", Path::new("/usr/lib/rabbitmq/bin/rabbitmqctl"))
            .env("HOME", "/var/lib/rabbitmq")
            .args(["-q", "-n", &self.node])
            .args(args)
            .output()?;
        if !output.status.success() {
            return Err(io::Error::other(format!(
                "rabbitmqctl {}: {}",
                args.join(" "),
                String::from_utf8_lossy(&output.stderr).trim()
            )));
        }
        Ok(String::from_utf8_lossy(&output.stdout).into_owned())
    }

    /// SIGKILL to the Erlang VM (and the script that started it), as a crash would.
    pub fn kill(&mut self) {
        if let Some(pid) = self.pid() {
            signal_tree(pid, "KILL");
            wait_closed(self.port);
        }
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

impl Drop for PrivateRabbitMq {
    fn drop(&mut self) {
        self.kill();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// PostgreSQL's bin directory: the one `initdb` is found in on PATH, or the newest under
/// /usr/lib/postgresql (Debian keeps them off PATH).
fn postgres_bin_dir() -> io::Result<PathBuf> {
    let on_path = std::env::var_os("PATH")
        .map(|path| std::env::split_paths(&path).collect::<Vec<_>>())
        .unwrap_or_default()
        .into_iter()
        .find(|dir| dir.join("initdb").is_file() && dir.join("pg_ctl").is_file());
    if let Some(dir) = on_path {
        return Ok(dir);
    }
    let mut versions: Vec<PathBuf> = std::fs::read_dir("/usr/lib/postgresql")
        .into_iter()
        .flatten()
        .flatten()
        .map(|entry| entry.path().join("bin"))
        .filter(|bin| bin.join("initdb").is_file())
        .collect();
    versions.sort_by_key(|bin| {
        bin.parent().and_then(Path::file_name).and_then(|v| v.to_str()).and_then(|v| v.parse::<u32>().ok())
    });
    versions.pop().ok_or_else(|| io::Error::other("PostgreSQL's initdb and pg_ctl are not installed"))
}

/// Whether this runs as root (asked once).
fn is_root() -> bool {
    static ROOT: std::sync::OnceLock<bool> = std::sync::OnceLock::new();
    *ROOT.get_or_init(|| Command::new("id").arg("-u").output().is_ok_and(|out| out.stdout.trim_ascii() == b"0"))
}

/// `program`, run as `user` when this runs as root (PostgreSQL refuses to run as root), as the
/// current user otherwise. The environment is kept.
fn as_user(user: &str, program: &Path) -> Command {
    if is_root() {
        let mut command = Command::new("runuser");
        command.args(["-u", user, "--"]).arg(program);
        command
    } else {
        Command::new(program)
    }
}

/// Makes `dir` and everything under it `user`'s, when this runs as root.
fn give_to(user: &str, dir: &Path) -> io::Result<()> {
    if is_root() {
        run(Command::new("chown").arg("-R").arg(format!("{user}:{user}")).arg(dir))?;
    }
    Ok(())
}

/// Runs `command` to completion; its output becomes the error if it fails.
fn run(command: &mut Command) -> io::Result<()> {
    let output = command.stdin(Stdio::null()).output()?;
    if output.status.success() {
        return Ok(());
    }
    Err(io::Error::other(format!(
        "{:?} failed ({}): {}{}",
        command.get_program(),
        output.status,
        String::from_utf8_lossy(&output.stdout).trim(),
        String::from_utf8_lossy(&output.stderr).trim()
    )))
}

/// Whether process `pid` exists and is not a zombie.
fn process_alive(pid: u32) -> bool {
    std::fs::read_to_string(format!("/proc/{pid}/stat"))
        .is_ok_and(|stat| stat.rsplit_once(") ").is_some_and(|(_, rest)| !rest.starts_with('Z')))
}

/// Sends SIGNAL to `pid` and to its child processes (found before, as they are adopted by init
/// once their parent is gone).
fn signal_tree(pid: u32, signal: &str) {
    let children = Command::new("pgrep").arg("-P").arg(pid.to_string()).output();
    let children = children.map(|out| String::from_utf8_lossy(&out.stdout).into_owned()).unwrap_or_default();
    let _ = Command::new("kill").arg(format!("-{signal}")).arg(pid.to_string()).status();
    for child in children.split_whitespace() {
        let _ = Command::new("kill").arg(format!("-{signal}")).arg(child).status();
    }
}

/// Waits (up to 10 s) until nothing listens on `port`: a killed process with many threads
/// still holds its sockets for a moment after its main thread is gone.
fn wait_closed(port: u16) {
    let until = Instant::now() + Duration::from_secs(10);
    while std::net::TcpStream::connect(("127.0.0.1", port)).is_ok() && Instant::now() < until {
        std::thread::sleep(Duration::from_millis(20));
    }
}
