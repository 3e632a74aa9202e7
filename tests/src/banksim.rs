//! The `banksim` process under test: the partner bank's host, steered through its control
//! port.

use std::ffi::OsStr;
use std::io::{BufRead, BufReader, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;

use crate::host::{bin_path, free_loopback_addr};

pub struct BankSim {
    child: Option<Child>,
    pub link_addr: SocketAddr,
    pub control_addr: SocketAddr,
    control: Option<(TcpStream, BufReader<TcpStream>)>,
}

impl BankSim {
    /// Starts banksim on `link_addr` (so a host configured with it can be started first),
    /// checking clearing files in `outbox_dir`; `balances` are `ACCOUNT=MINOR`.
    pub fn start(link_addr: SocketAddr, outbox_dir: &Path, balances: &[&str]) -> BankSim {
        BankSim::start_with(link_addr, outbox_dir, balances, &[])
    }

    /// `start` with more command-line arguments (TLS, say).
    pub fn start_with(
        link_addr: SocketAddr,
        outbox_dir: &Path,
        balances: &[&str],
        args: &[&OsStr],
    ) -> BankSim {
        let control_addr = free_loopback_addr();
        let mut command = Command::new(bin_path("banksim"));
        command
            .arg("--listen")
            .arg(link_addr.to_string())
            .arg("--control")
            .arg(control_addr.to_string())
            .arg("--outbox-dir")
            .arg(outbox_dir)
            .stdin(Stdio::null())
            .stdout(Stdio::null());
        for balance in balances {
            command.arg("--balance").arg(balance);
        }
        command.args(args);
        let child = command.spawn().expect("start banksim");
        let mut sim = BankSim {
            child: Some(child),
            link_addr,
            control_addr,
            control: None,
        };
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            if let Ok(stream) = TcpStream::connect(control_addr) {
                stream
                    .set_read_timeout(Some(Duration::from_secs(10)))
                    .unwrap();
                let reader = BufReader::new(stream.try_clone().unwrap());
                sim.control = Some((stream, reader));
                return sim;
            }
            assert!(Instant::now() < deadline, "banksim did not start");
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// A free loopback address for a banksim started later.
    pub fn free_addr() -> SocketAddr {
        free_loopback_addr()
    }

    /// One control command; its JSON answer.
    pub fn control(&mut self, line: &str) -> Value {
        let (stream, reader) = self.control.as_mut().expect("banksim running");
        stream
            .write_all(format!("{line}\n").as_bytes())
            .expect("control write");
        let mut reply = String::new();
        reader.read_line(&mut reply).expect("control read");
        let value: Value = serde_json::from_str(&reply).expect("control answers JSON");
        assert!(value.get("error").is_none(), "{line}: {value}");
        value
    }

    pub fn stats(&mut self) -> Value {
        self.control("stats")
    }

    /// The requests received with this MTI: (STAN, F90, answered F39).
    pub fn received(&mut self, mti: &str) -> Vec<(u64, Option<String>, Option<String>)> {
        let stats = self.stats();
        stats["received"]
            .as_array()
            .expect("received list")
            .iter()
            .filter(|r| r["mti"] == mti)
            .map(|r| {
                (
                    r["stan"].as_u64().unwrap(),
                    r["original"].as_str().map(str::to_owned),
                    r["answered"].as_str().map(str::to_owned),
                )
            })
            .collect()
    }

    pub fn counter(&mut self, name: &str) -> u64 {
        self.stats()["counters"][name].as_u64().expect("counter")
    }
}

impl Drop for BankSim {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

/// Polls `check` until it holds (or fails after 30 s with `what`): the end-to-end tests wait
/// for outcomes, never for a fixed time.
pub fn wait_until(what: &str, mut check: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(30);
    while !check() {
        assert!(Instant::now() < deadline, "timed out waiting until {what}");
        std::thread::sleep(Duration::from_millis(25));
    }
}
