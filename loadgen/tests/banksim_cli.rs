//! `banksim` as a process: it starts, listens on the ports it is given, and its control
//! port answers. (Also what makes `cargo test --workspace` build the binary for the
//! end-to-end tests in `tests/`.)

use std::io::{BufRead, BufReader, Write};
use std::net::{TcpListener, TcpStream};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

#[test]
fn starts_and_answers_its_control_port() {
    let (link, control) = (free_port(), free_port());
    let mut child = Command::new(env!("CARGO_BIN_EXE_banksim"))
        .args(["--listen", &format!("127.0.0.1:{link}")])
        .args(["--control", &format!("127.0.0.1:{control}")])
        .args(["--balance", "6222020200112233446=500"])
        .stdout(Stdio::null())
        .spawn()
        .expect("start banksim");
    let deadline = Instant::now() + Duration::from_secs(20);
    let stream = loop {
        match TcpStream::connect(("127.0.0.1", control)) {
            Ok(stream) => break stream,
            Err(_) if Instant::now() < deadline => std::thread::sleep(Duration::from_millis(20)),
            Err(error) => panic!("banksim control port: {error}"),
        }
    };
    let mut reader = BufReader::new(stream.try_clone().unwrap());
    let mut ask = |line: &str| {
        (&stream).write_all(format!("{line}\n").as_bytes()).unwrap();
        let mut reply = String::new();
        reader.read_line(&mut reply).unwrap();
        serde_json::from_str::<serde_json::Value>(&reply).unwrap()
    };
    assert_eq!(ask("balance 6222020200112233446")["balance"], 500);
    assert_eq!(ask("balance 6222020200000000001")["balance"], 1_000_000);
    assert!(ask("frobnicate").get("error").is_some());
    assert_eq!(ask("drop 0200 all")["ok"], true);
    assert!(ask("drop 0200 lots").get("error").is_some());
    assert_eq!(ask("stats")["counters"]["sign_ons"], 0);
    assert!(
        TcpStream::connect(("127.0.0.1", link)).is_ok(),
        "link port listens"
    );
    child.kill().unwrap();
    let _ = child.wait();
}
