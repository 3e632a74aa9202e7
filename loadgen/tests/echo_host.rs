//! `loadgen run` against `loadgen echo-host`, both as real processes over loopback: every
//! request of the mix is sent, matched to its response (MACs checked) and counted once.

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};

use serde_json::Value;

struct EchoHost {
    child: Child,
    addr: String,
}

impl EchoHost {
    /// Starts on a port the OS picks and reads the address from its first line.
    fn start() -> EchoHost {
        let mut child = Command::new(env!("CARGO_BIN_EXE_loadgen"))
            .args(["echo-host", "--addr", "127.0.0.1:0", "--threads", "1"])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("start loadgen echo-host");
        let mut line = String::new();
        BufReader::new(child.stderr.take().expect("piped"))
            .read_line(&mut line)
            .expect("read the echo host's first line");
        let addr = line
            .trim()
            .strip_prefix("echo host listening on ")
            .unwrap_or_else(|| panic!("unexpected first line: {line}"))
            .to_owned();
        EchoHost { child, addr }
    }
}

impl Drop for EchoHost {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn run(args: &[&str]) -> Value {
    let output = Command::new(env!("CARGO_BIN_EXE_loadgen"))
        .arg("run")
        .args(args)
        .arg("--json")
        .output()
        .expect("run loadgen");
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(output.status.success(), "loadgen run failed:\n{stderr}");
    serde_json::from_slice(&output.stdout)
        .unwrap_or_else(|e| panic!("the report is JSON ({e}):\n{stderr}"))
}

#[test]
fn every_request_is_answered_and_counted_once() {
    let host = EchoHost::start();
    let report = run(&[
        "--addr",
        &host.addr,
        "--count",
        "200",
        "--terminals",
        "4",
        "--depth",
        "3",
        "--mix",
        "purchase=50,balance=20,refund=10,reversal=10,topup=10",
        "--threads",
        "1",
    ]);
    assert_eq!(report["mode"], "closed");
    assert_eq!(report["sent"], 200, "{report:#}");
    assert_eq!(report["answered"], 200, "{report:#}");
    assert_eq!(
        report["codes"],
        serde_json::json!({"00": 200}),
        "{report:#}"
    );
    assert_eq!(report["errors"], serde_json::json!({}), "{report:#}");
    // Each kind's approvals are exactly the requests of that kind: nothing crossed over.
    let sent = report["sent_by_kind"].as_object().expect("sent_by_kind");
    for kind in ["purchase", "balance", "topup"] {
        assert!(
            sent[kind].as_u64().unwrap_or(0) > 0,
            "some {kind}: {report:#}"
        );
    }
    for (kind, count) in sent {
        assert_eq!(
            report["codes_by_kind"][kind]["00"], *count,
            "{kind}: {report:#}"
        );
    }
    let latency = &report["latency_us"];
    assert!(latency["p50"].as_u64() <= latency["p99"].as_u64());
    assert!(latency["p99"].as_u64() <= latency["max"].as_u64());
}

#[test]
fn open_loop_sends_the_count_it_is_given() {
    let host = EchoHost::start();
    let report = run(&[
        "--addr",
        &host.addr,
        "--count",
        "200",
        "--terminals",
        "10",
        "--rate",
        "2000",
        "--threads",
        "1",
    ]);
    assert_eq!(report["mode"], "open");
    assert_eq!(report["target_rate_per_s"], 2000.0);
    assert_eq!(report["sent"], 200, "{report:#}");
    assert_eq!(report["codes"]["00"], 200, "{report:#}");
    assert_eq!(report["errors"], serde_json::json!({}), "{report:#}");
}

#[test]
fn a_host_that_is_not_there_is_a_clear_error() {
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("a free port")
        .port();
    let output = Command::new(env!("CARGO_BIN_EXE_loadgen"))
        .args([
            "run",
            "--addr",
            &format!("127.0.0.1:{port}"),
            "--count",
            "5",
        ])
        .output()
        .expect("run loadgen");
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("no terminal could connect"), "{stderr}");
}
