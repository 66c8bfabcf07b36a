//! Infrastructure of a test's (or a drill's) own: a `redis-server` on a private port, which it
//! may stop, kill and restart without touching the machine's shared Redis. Only the process it
//! started is ever signalled, by its pid.

use std::path::PathBuf;
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

/// A TCP port nobody listens on right now.
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0").expect("bind").local_addr().expect("addr").port()
}
