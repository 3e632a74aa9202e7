//! The `bursar` binary's start-up contract: an invalid configuration is one line naming the
//! key, and exit code 2, before anything listens or touches the data directory.

use std::process::Command;

fn bursar() -> Command {
    Command::new(env!("CARGO_BIN_EXE_bursar"))
}

#[test]
fn an_invalid_address_names_its_key_and_exits_2() {
    let output = bursar()
        .args(["--terminal-addr", "not-an-address"])
        .output()
        .expect("run bursar");
    assert_eq!(output.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(stderr.lines().count(), 1, "one line: {stderr}");
    assert!(stderr.contains("terminal_link.addr"), "{stderr}");
}

#[test]
fn an_unknown_key_in_the_file_is_named() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("bursar.toml");
    std::fs::write(&path, "[ledger]\ngroup_max_evnts = 10\n").unwrap();
    let output = bursar()
        .arg("--config")
        .arg(&path)
        .output()
        .expect("run bursar");
    assert_eq!(output.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("group_max_evnts"), "{stderr}");
}
