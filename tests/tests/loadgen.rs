//! `loadgen run` against the real `bursar`: it provisions its fleet through the admin API,
//! signs its terminals on (half of them MAC terminals) and sends every kind of request with
//! PINs and MACs; the host approves them all except top-ups, which answer `91` while there
//! is no bank link, and the book still balances.

use std::process::Command;

use bursar_e2e::demo::ADMIN_TOKEN;
use bursar_e2e::host::bin_path;
use bursar_e2e::{HostOptions, HostProcess};
use serde_json::{json, Value};

#[test]
fn loadgen_provisions_and_every_request_is_decided() {
    let host = HostProcess::start(HostOptions::default());
    let output = Command::new(bin_path("loadgen"))
        .args(["run", "--addr", &host.terminal_addr.to_string()])
        .args(["--admin-addr", &host.admin_addr.to_string()])
        .args(["--admin-token", ADMIN_TOKEN])
        .args(["--count", "200", "--terminals", "6", "--merchants", "2"])
        .args(["--cards", "10", "--depth", "2", "--threads", "1"])
        .args([
            "--mix",
            "purchase=50,balance=15,refund=10,reversal=10,topup=15",
        ])
        .arg("--json")
        .output()
        .expect("run loadgen");
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        output.status.success(),
        "loadgen failed:\n{stderr}\n{}",
        host.logs()
    );
    let report: Value = serde_json::from_slice(&output.stdout).expect("JSON report");
    assert_eq!(report["sent"], 200, "{report:#}");
    assert_eq!(report["answered"], 200, "{report:#}");
    assert_eq!(report["errors"], json!({}), "{report:#}");
    let sent = report["sent_by_kind"].as_object().expect("sent_by_kind");
    for (kind, count) in sent {
        let expected = if kind == "topup" { "91" } else { "00" };
        assert_eq!(
            report["codes_by_kind"][kind],
            json!({ expected: count }),
            "{kind}: {report:#}"
        );
    }
    assert!(sent["purchase"].as_u64() > Some(0) && sent["topup"].as_u64() > Some(0));

    let (status, check) = host.api("GET", "/v1/ledger/check", None);
    assert_eq!(status, 200);
    assert_eq!(check["balanced"], true, "{check}");
}
