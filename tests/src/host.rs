//! The `bursar` process under test.

use std::io::Read;
use std::net::{SocketAddr, TcpListener};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;

use crate::demo;

/// The binaries are built by `cargo test --workspace` next to the test executables
/// (target/<profile>/deps/..): `bursar` in target/<profile>/.
pub fn bin_path(name: &str) -> PathBuf {
    let exe = std::env::current_exe().expect("test executable path");
    let dir = exe
        .parent()
        .and_then(Path::parent)
        .expect("target/<profile>/deps");
    let path = dir.join(name);
    assert!(
        path.exists(),
        "{} not found: build the binaries first (`cargo build --workspace --bins`, done by `cargo test --workspace`)",
        path.display()
    );
    path
}

/// A loopback address on a port that was free when asked.
pub fn free_loopback_addr() -> SocketAddr {
    SocketAddr::from(([127, 0, 0, 1], free_port()))
}

/// A port below the kernel's ephemeral range that nothing listens on now. Ports the kernel
/// hands out (`bind(0)`) are ephemeral ones, and any process's client connection can take
/// such a port as its source for as long as it lives, so a process started later to listen
/// there could find it taken (CI saw banksim wait 10 s for one). Below the range only
/// listeners compete: another test asking here, told apart by process id and a counter.
pub fn free_port() -> u16 {
    use std::sync::atomic::{AtomicU32, Ordering};
    static NEXT: AtomicU32 = AtomicU32::new(0);
    const LOWEST: u32 = 10_000;
    let ephemeral_low = ephemeral_range_low();
    if ephemeral_low <= LOWEST + 1_000 {
        return TcpListener::bind("127.0.0.1:0")
            .and_then(|listener| listener.local_addr())
            .expect("bind a free port")
            .port();
    }
    let span = ephemeral_low - LOWEST;
    let start = std::process::id().wrapping_mul(7_919) % span;
    for _ in 0..span {
        let step = NEXT.fetch_add(1, Ordering::Relaxed);
        let port = LOWEST + (start + step) % span;
        let port = u16::try_from(port).expect("ports below the ephemeral range fit u16");
        if TcpListener::bind(("127.0.0.1", port)).is_ok() {
            return port;
        }
    }
    panic!("no free port in {LOWEST}..{ephemeral_low}");
}

/// The first port of the kernel's ephemeral (client source port) range; Linux's default when
/// it cannot be read.
fn ephemeral_range_low() -> u32 {
    std::fs::read_to_string("/proc/sys/net/ipv4/ip_local_port_range")
        .ok()
        .and_then(|range| range.split_whitespace().next()?.parse().ok())
        .unwrap_or(32_768)
}

#[derive(Clone, Debug, Default)]
pub struct HostOptions {
    pub demo: bool,
    /// Extra TOML appended to the generated configuration.
    pub config: String,
    pub extra_args: Vec<String>,
    pub env: Vec<(String, String)>,
    /// `[ledger] snapshot_every_records`; 100,000 when `None`.
    pub snapshot_every_records: Option<u64>,
}

impl HostOptions {
    pub fn demo() -> HostOptions {
        HostOptions {
            demo: true,
            ..HostOptions::default()
        }
    }
}

pub struct HostProcess {
    child: Option<Child>,
    pub terminal_addr: SocketAddr,
    pub admin_addr: SocketAddr,
    pub dir: tempfile::TempDir,
    options: HostOptions,
    starts: u32,
}

impl HostProcess {
    pub fn start(options: HostOptions) -> HostProcess {
        let mut host = HostProcess {
            child: None,
            terminal_addr: free_loopback_addr(),
            admin_addr: free_loopback_addr(),
            dir: tempfile::tempdir().expect("temp dir"),
            options,
            starts: 0,
        };
        // A port that was free a moment ago can be another process's by the time bursar
        // binds it (the tests run in parallel): then start again on two new ones.
        for _ in 0..3 {
            let earlier_logs = host.logs().len();
            host.spawn();
            match host.ready_or_exit() {
                Ok(()) => return host,
                Err(status) if host.logs()[earlier_logs..].contains("Address already in use") => {
                    eprintln!("bursar exited with {status}, a port in use: new ports");
                    host.terminal_addr = free_loopback_addr();
                    host.admin_addr = free_loopback_addr();
                }
                Err(status) => host.exited_during_start_up(status),
            }
        }
        panic!(
            "bursar found its ports in use three times:\n{}",
            host.logs()
        );
    }

    /// The running process's id.
    pub fn pid(&self) -> u32 {
        self.child.as_ref().expect("bursar is running").id()
    }

    pub fn data_dir(&self) -> PathBuf {
        self.dir.path().join("data")
    }

    pub fn outbox_dir(&self) -> PathBuf {
        self.dir.path().join("outbox")
    }

    pub fn log_path(&self) -> PathBuf {
        self.dir.path().join("bursar.log")
    }

    fn config_path(&self) -> PathBuf {
        self.dir.path().join("bursar.toml")
    }

    fn spawn(&mut self) {
        let config = format!(
            "[admin.tokens]\ne2e = \"{}\"\n\n[ledger]\nsnapshot_every_records = {}\n{}\n",
            demo::ADMIN_TOKEN,
            self.options.snapshot_every_records.unwrap_or(100_000),
            self.options.config
        );
        std::fs::write(self.config_path(), config).expect("write config");
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(self.log_path())
            .expect("log file");
        let mut command = Command::new(bin_path("bursar"));
        command
            .arg("--config")
            .arg(self.config_path())
            .arg("--data-dir")
            .arg(self.data_dir())
            .arg("--outbox-dir")
            .arg(self.outbox_dir())
            .arg("--terminal-addr")
            .arg(self.terminal_addr.to_string())
            .arg("--admin-addr")
            .arg(self.admin_addr.to_string())
            .args(&self.options.extra_args)
            .env("RUST_LOG", "info,sled=warn")
            .env_remove("BURSAR_ADMIN_TOKEN")
            .stdin(Stdio::null())
            .stdout(log.try_clone().expect("log handle"))
            .stderr(log);
        if self.options.demo {
            command.arg("--demo");
        }
        for (key, value) in &self.options.env {
            command.env(key, value);
        }
        self.child = Some(command.spawn().expect("start bursar"));
        self.starts += 1;
    }

    /// Polls /readyz until 200; fails with the log if the process exits or takes too long.
    pub fn wait_ready(&mut self) {
        if let Err(status) = self.ready_or_exit() {
            self.exited_during_start_up(status);
        }
    }

    fn exited_during_start_up(&self, status: std::process::ExitStatus) -> ! {
        panic!(
            "bursar exited during start-up with {status}:\n{}",
            self.logs()
        );
    }

    /// Waits until `/readyz` answers; the exit status if bursar exits first.
    fn ready_or_exit(&mut self) -> Result<(), std::process::ExitStatus> {
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            if let Some(status) = self
                .child
                .as_mut()
                .and_then(|c| c.try_wait().ok().flatten())
            {
                self.child = None;
                return Err(status);
            }
            let ready = ureq::get(&format!("http://{}/readyz", self.admin_addr))
                .timeout(Duration::from_millis(500))
                .call()
                .is_ok();
            if ready {
                return Ok(());
            }
            assert!(
                Instant::now() < deadline,
                "bursar not ready after 60 s:\n{}",
                self.logs()
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// `kill -9`: no chance to flush or say goodbye.
    pub fn kill9(&mut self) {
        if let Some(mut child) = self.child.take() {
            child.kill().expect("SIGKILL");
            let _ = child.wait();
        }
    }

    /// SIGTERM and wait for a clean exit; returns the exit code.
    pub fn terminate(&mut self) -> Option<i32> {
        let mut child = self.child.take()?;
        let _ = Command::new("kill")
            .arg("-TERM")
            .arg(child.id().to_string())
            .status();
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            if let Ok(Some(status)) = child.try_wait() {
                return status.code();
            }
            if Instant::now() > deadline {
                let _ = child.kill();
                panic!(
                    "bursar did not stop within 30 s of SIGTERM:\n{}",
                    self.logs()
                );
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// Replaces the extra TOML for the next (re)start.
    pub fn set_config(&mut self, config: String) {
        self.options.config = config;
    }

    /// Starts again on the same data directory and ports.
    pub fn restart(&mut self) {
        assert!(self.child.is_none(), "stop the host before restarting it");
        self.spawn();
        self.wait_ready();
    }

    pub fn logs(&self) -> String {
        let mut text = String::new();
        if let Ok(mut file) = std::fs::File::open(self.log_path()) {
            let _ = file.read_to_string(&mut text);
        }
        text
    }

    pub fn url(&self, path: &str) -> String {
        format!("http://{}{}", self.admin_addr, path)
    }

    /// An admin API call with the test token: (status, JSON body).
    pub fn api(&self, method: &str, path: &str, body: Option<Value>) -> (u16, Value) {
        self.api_with_token(method, path, body, Some(demo::ADMIN_TOKEN))
    }

    pub fn api_with_token(
        &self,
        method: &str,
        path: &str,
        body: Option<Value>,
        token: Option<&str>,
    ) -> (u16, Value) {
        let mut request = ureq::request(method, &self.url(path)).timeout(Duration::from_secs(30));
        if let Some(token) = token {
            request = request.set("Authorization", &format!("Bearer {token}"));
        }
        let result = match body {
            Some(body) => request.send_json(body),
            None => request.call(),
        };
        let response = match result {
            Ok(response) => response,
            Err(ureq::Error::Status(_, response)) => response,
            Err(error) => panic!("{method} {path} (token {token:?}): {error}"),
        };
        let status = response.status();
        let text = response.into_string().unwrap_or_default();
        let json = serde_json::from_str(&text).unwrap_or(Value::String(text));
        (status, json)
    }

    pub fn metrics(&self) -> String {
        ureq::get(&self.url("/metrics"))
            .call()
            .expect("GET /metrics")
            .into_string()
            .expect("text")
    }

    /// The card's balance in minor units, from the admin API.
    pub fn balance_minor(&self, pan: &str) -> i64 {
        let (status, card) = self.api("GET", &format!("/v1/cards/{pan}"), None);
        assert_eq!(status, 200, "GET card: {card}");
        parse_minor(card["balance"].as_str().expect("balance"))
    }
}

impl Drop for HostProcess {
    fn drop(&mut self) {
        self.kill9();
    }
}

/// `"12.34"` to 1234.
pub fn parse_minor(text: &str) -> i64 {
    let negative = text.starts_with('-');
    let digits: String = text
        .trim_start_matches('-')
        .chars()
        .filter(|c| *c != '.')
        .collect();
    let value: i64 = digits.parse().expect("amount digits");
    if negative {
        -value
    } else {
        value
    }
}
